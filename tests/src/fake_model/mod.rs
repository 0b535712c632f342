//! A fake model server on 127.0.0.1 for running the real agent CLIs hermetically (no API key,
//! no network). It speaks the wire protocols the CLIs use:
//!
//! - Anthropic Messages: `POST /v1/messages` (streamed or not), `/v1/messages/count_tokens`;
//! - OpenAI Responses: `POST /v1/responses` (streamed or not);
//! - OpenAI chat completions: `POST /v1/chat/completions` (streamed or not);
//! - Gemini: `POST …/models/<m>:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens`;
//! - `GET /v1/models` (one answer that fits both the Anthropic and the OpenAI shape), `HEAD /`.
//!
//! It plays a [`Scenario`]: an ordered list of steps, each a shell command the CLI is asked to run
//! through its own shell tool (Claude `Bash`, Codex `exec_command`/`shell`, Gemini
//! `run_shell_command`, OpenCode `bash`), then a final text. The step a request gets is derived
//! from the request alone: the number of tool results already in its conversation. A request
//! that offers no shell tool (title generation, quota checks, next-speaker checks) is a *side
//! call*: it gets a short answer (JSON when the request asks for a JSON schema) and does not
//! advance anything. Aider offers no tools at all; it is recognised by its system prompt and
//! gets the scenario's `edit` steps written in the edit format its prompt asks for (whole file
//! or SEARCH/REPLACE), counted by the assistant messages of this server already in the chat.
//!
//! Every request is logged as one JSON line (see [`LoggedRequest`]) to a file and in memory.
//!
//! ```no_run
//! use vermas_tests::fake_model::{FakeModel, Scenario};
//! let scenario = Scenario::shell(&["co assignment", "co worker done"], "Done.");
//! let model = FakeModel::start(scenario).unwrap();
//! println!("{}", model.base_url()); // http://127.0.0.1:PORT
//! ```

mod anthropic;
mod gemini;
pub mod http;
mod openai;

use serde_json::{Value, json};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A file edit for Aider (which has no tools and answers in its own edit format).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// Relative to the repository root.
    pub path: String,
    /// The file's new whole content (whole-file format), or the REPLACE side (SEARCH/REPLACE).
    pub content: String,
    /// The SEARCH side for SEARCH/REPLACE; empty for a new file.
    pub search: String,
}

/// One step of a scenario: optional text, then a shell command (tool-calling CLIs) and/or a
/// file edit (Aider); a misbehaving model is slow or never answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub shell: Option<String>,
    pub edit: Option<Edit>,
    /// Text said before the tool call.
    pub text: String,
    /// Stream filler text for this long before the real answer (streamed requests; a
    /// non-streamed one just waits).
    pub slow: Duration,
    /// Never answer this step (the connection stays open until the server stops).
    pub hang: bool,
}

/// The final answer (after the last step), with the same misbehaviour options.
#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    pub text: String,
    pub slow: Duration,
    pub hang: bool,
}

/// What the fake model plays.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub steps: Vec<Step>,
    pub final_answer: Final,
    /// The answer to side calls (requests without a shell tool).
    pub side_answer: String,
}

impl Scenario {
    /// Shell steps only, then `final_text`.
    pub fn shell(commands: &[&str], final_text: &str) -> Scenario {
        Scenario {
            steps: commands
                .iter()
                .map(|c| Step {
                    shell: Some(c.to_string()),
                    ..Step::default()
                })
                .collect(),
            final_answer: Final {
                text: final_text.to_string(),
                slow: Duration::ZERO,
                hang: false,
            },
            side_answer: "VerMAS worker".to_string(),
        }
    }

    /// Parses the JSON form:
    /// ```json
    /// {"steps": [{"shell": "co assignment", "text": "Checking.", "slow_seconds": 2},
    ///            {"edit": {"path": "a.txt", "content": "hello\n"}},
    ///            {"hang": true}],
    ///  "final": "Done." | {"text": "Done.", "slow_seconds": 0, "hang": false},
    ///  "side_answer": "VerMAS worker"}
    /// ```
    pub fn from_json(text: &str) -> Result<Scenario, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("scenario: {e}"))?;
        let secs = |v: &Value| {
            Duration::from_secs_f64(v["slow_seconds"].as_f64().unwrap_or(0.0).clamp(0.0, 3600.0))
        };
        let mut steps = Vec::new();
        for (i, s) in v["steps"].as_array().into_iter().flatten().enumerate() {
            let edit = match &s["edit"] {
                Value::Null => None,
                e => Some(Edit {
                    path: e["path"]
                        .as_str()
                        .ok_or(format!("scenario: step {i}: edit without a path"))?
                        .to_string(),
                    content: e["content"].as_str().unwrap_or("").to_string(),
                    search: e["search"].as_str().unwrap_or("").to_string(),
                }),
            };
            steps.push(Step {
                shell: s["shell"].as_str().map(str::to_string),
                edit,
                text: s["text"].as_str().unwrap_or("").to_string(),
                slow: secs(s),
                hang: s["hang"].as_bool().unwrap_or(false),
            });
        }
        let final_answer = match &v["final"] {
            Value::String(t) => Final {
                text: t.clone(),
                slow: Duration::ZERO,
                hang: false,
            },
            f => Final {
                text: f["text"].as_str().unwrap_or("Done.").to_string(),
                slow: secs(f),
                hang: f["hang"].as_bool().unwrap_or(false),
            },
        };
        Ok(Scenario {
            steps,
            final_answer,
            side_answer: v["side_answer"]
                .as_str()
                .unwrap_or("VerMAS worker")
                .to_string(),
        })
    }

    /// The steps a tool-calling CLI plays: those with a shell command or a hang.
    fn tool_steps(&self) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| s.shell.is_some() || (s.hang && s.edit.is_none()))
            .collect()
    }

    /// The steps Aider plays: those with an edit or a hang.
    fn edit_steps(&self) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| s.edit.is_some() || (s.hang && s.shell.is_none()))
            .collect()
    }
}

/// One line of the request log.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub n: u64,
    pub method: String,
    pub path: String,
    /// `anthropic`, `responses`, `chat`, `gemini`, `models`, `other`.
    pub api: String,
    pub model: String,
    pub stream: bool,
    /// Whether the request offered any tools.
    pub tools: bool,
    /// The shell tool's name, when one was offered.
    pub shell_tool: Option<String>,
    /// Tool results (or Aider replies of ours) already in the conversation.
    pub tool_results: usize,
    /// `tool`, `edit`, `final`, `side`, `hang`, `info` (models, counts), `unknown`.
    pub answer: String,
    /// The scenario step answered (for `tool`, `edit`; `final` is `steps.len()`).
    pub step: Option<usize>,
    /// The shell command asked for.
    pub command: Option<String>,
    pub status: u16,
    /// Milliseconds since the server started.
    pub at_ms: u64,
    /// The line as logged.
    pub json: Value,
}

/// How to start a server besides the scenario.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// 0 picks a free port.
    pub port: u16,
    /// The JSON-lines request log (default: a file in a private temp dir of the handle).
    pub log: Option<PathBuf>,
    /// When set, each request's body and each answer are written here (`NNN-req.json`).
    pub dump_dir: Option<PathBuf>,
}

/// What the planner decided for one request.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub kind: &'static str,
    pub step: Option<usize>,
    pub text: String,
    /// (tool name, arguments) for a tool call.
    pub call: Option<(String, Value)>,
    pub command: Option<String>,
    pub slow: Duration,
    pub hang: bool,
}

impl Plan {
    fn side(text: String) -> Plan {
        Plan {
            kind: "side",
            step: None,
            text,
            call: None,
            command: None,
            slow: Duration::ZERO,
            hang: false,
        }
    }
}

/// What an API module tells the planner about one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub model: String,
    pub stream: bool,
    pub tools: bool,
    /// The shell tool: its name and its parameters' JSON schema.
    pub shell: Option<(String, Value)>,
    pub tool_results: usize,
    /// Aider's edit format when the request is Aider's (`whole` or `diff`).
    pub aider_format: Option<&'static str>,
    /// Assistant messages of ours (Aider) already in the conversation.
    pub our_replies: usize,
    /// A JSON schema the answer must follow (side calls that ask for JSON).
    pub json_schema: Option<Value>,
}

/// Marks the fake's Aider replies so later requests can count them.
pub(crate) const AIDER_MARK: &str = "(fake model, step ";

/// The names the CLIs give their shell tool.
pub(crate) const SHELL_TOOLS: &[&str] = &[
    "Bash",
    "bash",
    "exec_command",
    "shell",
    "shell_command",
    "run_shell_command",
    "local_shell",
];

/// The arguments of a shell tool call for `command`, shaped by the tool's JSON schema:
/// `cmd` or `command`, a string or an argv (`["bash", "-lc", command]`).
pub(crate) fn shell_args(schema: &Value, command: &str) -> Value {
    let props = &schema["properties"];
    let mut args = serde_json::Map::new();
    let key = if props.get("cmd").is_some() && props.get("command").is_none() {
        "cmd"
    } else {
        "command"
    };
    let is_array = props[key]["type"] == "array";
    args.insert(
        key.to_string(),
        if is_array {
            json!(["bash", "-lc", command])
        } else {
            json!(command)
        },
    );
    if props.get("description").is_some() {
        args.insert("description".into(), json!("Run a command of the scenario"));
    }
    Value::Object(args)
}

/// A value that follows a JSON schema, for side calls that ask for JSON (Gemini's
/// next-speaker check gets `next_speaker: "user"`, so the turn ends).
pub(crate) fn fill_schema(schema: &Value, text: &str) -> Value {
    match schema["type"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("object") => {
            let mut m = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    let v = if k == "next_speaker" {
                        json!("user")
                    } else {
                        fill_schema(s, text)
                    };
                    m.insert(k.clone(), v);
                }
            }
            Value::Object(m)
        }
        Some("array") => json!([]),
        Some("boolean") => json!(false),
        Some("integer") | Some("number") => json!(0),
        _ => match schema["enum"].as_array().and_then(|e| e.first()) {
            Some(v) => v.clone(),
            None => json!(text),
        },
    }
}

struct Shared {
    scenario: Scenario,
    log_path: PathBuf,
    dump_dir: Option<PathBuf>,
    log: Mutex<Vec<LoggedRequest>>,
    counter: AtomicU64,
    started: Instant,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn plan(&self, f: &Facts) -> Plan {
        let sc = &self.scenario;
        if let Some(format) = f.aider_format {
            let steps = sc.edit_steps();
            let i = f.our_replies;
            return match steps.get(i) {
                Some(s) if s.hang => Plan {
                    kind: "hang",
                    step: Some(i),
                    hang: true,
                    ..Plan::side(String::new())
                },
                Some(s) => {
                    let mut text = format!("{}{AIDER_MARK}{i})\n\n", lead(&s.text));
                    if let Some(e) = &s.edit {
                        text.push_str(&aider_edit(format, e));
                    }
                    Plan {
                        kind: "edit",
                        step: Some(i),
                        text,
                        call: None,
                        command: None,
                        slow: s.slow,
                        hang: false,
                    }
                }
                None => Plan {
                    kind: "final",
                    step: Some(steps.len()),
                    text: format!("{}\n{AIDER_MARK}{i})", sc.final_answer.text),
                    call: None,
                    command: None,
                    slow: sc.final_answer.slow,
                    hang: sc.final_answer.hang,
                },
            };
        }
        let Some((tool, schema)) = &f.shell else {
            let text = match &f.json_schema {
                Some(s) => fill_schema(s, &sc.side_answer).to_string(),
                None => sc.side_answer.clone(),
            };
            return Plan::side(text);
        };
        let steps = sc.tool_steps();
        let i = f.tool_results;
        match steps.get(i) {
            Some(s) if s.hang => Plan {
                kind: "hang",
                step: Some(i),
                hang: true,
                ..Plan::side(String::new())
            },
            Some(s) => {
                let cmd = s.shell.clone().unwrap_or_default();
                Plan {
                    kind: "tool",
                    step: Some(i),
                    text: s.text.clone(),
                    call: Some((tool.clone(), shell_args(schema, &cmd))),
                    command: Some(cmd),
                    slow: s.slow,
                    hang: false,
                }
            }
            None => Plan {
                kind: "final",
                step: Some(steps.len()),
                text: sc.final_answer.text.clone(),
                call: None,
                command: None,
                slow: sc.final_answer.slow,
                hang: sc.final_answer.hang,
            },
        }
    }

    fn record(&self, req: &http::Request, api: &str, f: &Facts, p: &Plan, status: u16) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let at_ms = self.started.elapsed().as_millis() as u64;
        let json = json!({
            "n": n,
            "at_ms": at_ms,
            "method": req.method,
            "path": req.target,
            "api": api,
            "model": f.model,
            "stream": f.stream,
            "tools": f.tools,
            "shell_tool": f.shell.as_ref().map(|s| s.0.clone()),
            "tool_results": if f.aider_format.is_some() { f.our_replies } else { f.tool_results },
            "answer": p.kind,
            "step": p.step,
            "command": p.command,
            "status": status,
        });
        let line = LoggedRequest {
            n,
            method: req.method.clone(),
            path: req.target.clone(),
            api: api.to_string(),
            model: f.model.clone(),
            stream: f.stream,
            tools: f.tools,
            shell_tool: f.shell.as_ref().map(|s| s.0.clone()),
            tool_results: if f.aider_format.is_some() {
                f.our_replies
            } else {
                f.tool_results
            },
            answer: p.kind.to_string(),
            step: p.step,
            command: p.command.clone(),
            status,
            at_ms,
            json: json.clone(),
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
            // Appended under the lock so lines never interleave.
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
            {
                let _ = writeln!(file, "{json}");
            }
        }
        if let Some(d) = &self.dump_dir {
            let _ = std::fs::create_dir_all(d);
            let _ = std::fs::write(d.join(format!("{n:03}-req.json")), &req.body);
        }
        n
    }

    fn dump_answer(&self, n: u64, what: &str) {
        if let Some(d) = &self.dump_dir {
            let _ = std::fs::write(d.join(format!("{n:03}-answer.txt")), what);
        }
    }

    /// Waits until the server stops (a hanging answer).
    fn hang(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A leading text with a blank line after it, or nothing.
fn lead(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{text}\n\n")
    }
}

/// An edit in Aider's edit format: `whole` (path line, fenced whole file) or `diff`
/// (SEARCH/REPLACE block).
fn aider_edit(format: &str, e: &Edit) -> String {
    let fence = if e.content.contains("```") || e.search.contains("```") {
        "````"
    } else {
        "```"
    };
    let nl = |s: &str| {
        if s.is_empty() || s.ends_with('\n') {
            s.to_string()
        } else {
            format!("{s}\n")
        }
    };
    if format == "whole" {
        format!("{}\n{fence}\n{}{fence}\n", e.path, nl(&e.content))
    } else {
        format!(
            "{}\n{fence}\n<<<<<<< SEARCH\n{}=======\n{}>>>>>>> REPLACE\n{fence}\n",
            e.path,
            nl(&e.search),
            nl(&e.content)
        )
    }
}

/// Pieces of text to stream: filler for `slow` (one piece every 250 ms), then `text` in a few
/// pieces. Each piece comes with how long to wait before sending it.
pub(crate) fn pieces(text: &str, slow: Duration) -> Vec<(Duration, String)> {
    let mut out = Vec::new();
    let tick = Duration::from_millis(250);
    let mut spent = Duration::ZERO;
    let filler = ["Still ", "working ", "on ", "it. "];
    let mut k = 0;
    while spent < slow {
        out.push((tick, filler[k % filler.len()].to_string()));
        spent += tick;
        k += 1;
    }
    if !text.is_empty() {
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        for chunk in words.chunks(8) {
            out.push((Duration::ZERO, chunk.concat()));
        }
    }
    out
}

/// A running fake model server; stopped (and its connections closed) on drop.
pub struct FakeModel {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    accept: Option<std::thread::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModel")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeModel {
    /// Starts a server on a free port of 127.0.0.1, logging to a private temp file.
    pub fn start(scenario: Scenario) -> io::Result<FakeModel> {
        Self::start_with(scenario, Options::default())
    }

    pub fn start_with(scenario: Scenario, opts: Options) -> io::Result<FakeModel> {
        let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
        let addr = listener.local_addr()?;
        let (tmp, log_path) = match opts.log {
            Some(p) => (None, p),
            None => {
                let t = tempfile::Builder::new().prefix("fake-model-").tempdir()?;
                let p = t.path().join("requests.jsonl");
                (Some(t), p)
            }
        };
        std::fs::write(&log_path, b"")?;
        let shared = Arc::new(Shared {
            scenario,
            log_path,
            dump_dir: opts.dump_dir,
            log: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            started: Instant::now(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("fake-model-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sh.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if let (Ok(mut conns), Ok(c)) = (sh.conns.lock(), conn.try_clone()) {
                        conns.retain(|c| c.peer_addr().is_ok());
                        conns.push(c);
                    }
                    let sh = sh.clone();
                    let _ = std::thread::Builder::new()
                        .name("fake-model-conn".into())
                        .spawn(move || serve(&sh, conn));
                }
            })?;
        Ok(FakeModel {
            shared,
            addr,
            accept: Some(accept),
            _tmp: tmp,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests so far, in the order they were answered (or began to hang).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The JSON-lines log file.
    pub fn log_path(&self) -> &Path {
        &self.shared.log_path
    }

    /// Stops accepting, closes every connection (ending hanging answers), joins the acceptor.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(conns) = self.shared.conns.lock() {
            for c in conns.iter() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        // Wake the acceptor.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves one connection: requests until the client closes it (or asks to).
fn serve(sh: &Shared, conn: TcpStream) {
    let Ok(write) = conn.try_clone() else { return };
    let mut w = write;
    let mut r = BufReader::new(conn);
    loop {
        let req = match http::read_request(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                if !sh.stop.load(Ordering::SeqCst) && e.kind() == io::ErrorKind::InvalidData {
                    let _ =
                        http::respond(&mut w, false, 400, "text/plain", e.to_string().as_bytes());
                }
                return;
            }
        };
        if sh.stop.load(Ordering::SeqCst) || handle(sh, &req, &mut w).is_err() || req.wants_close()
        {
            return;
        }
    }
}

/// Answers one request.
fn handle(sh: &Shared, req: &http::Request, w: &mut TcpStream) -> io::Result<()> {
    let path = req.path();
    let head = req.method == "HEAD";
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                let f = Facts::default();
                let p = Plan {
                    kind: "unknown",
                    ..Plan::side(String::new())
                };
                sh.record(req, "other", &f, &p, 400);
                let enc = req.header("content-encoding").unwrap_or("none");
                let msg = json!({"error": {"type": "invalid_request_error",
                    "message": format!("fake model: body is not JSON ({e}); content-encoding {enc}")}});
                return http::respond(w, head, 400, "application/json", msg.to_string().as_bytes());
            }
        }
    };
    let info = |api: &str| Plan {
        kind: "info",
        ..Plan::side(api.to_string())
    };
    if req.method == "POST" && path.ends_with("/messages/count_tokens") {
        let f = anthropic::facts(&body);
        sh.record(req, "anthropic", &f, &info("count"), 200);
        let n = (req.body.len() / 4).max(1);
        return http::respond(
            w,
            head,
            200,
            "application/json",
            json!({"input_tokens": n}).to_string().as_bytes(),
        );
    }
    if req.method == "POST" && path.ends_with("/messages") {
        let f = anthropic::facts(&body);
        let p = sh.plan(&f);
        let n = sh.record(req, "anthropic", &f, &p, 200);
        return answer(sh, n, &p, w, |p, w| anthropic::answer(&f, p, w));
    }
    if req.method == "POST" && path.ends_with("/responses") {
        let f = openai::responses_facts(&body);
        let p = sh.plan(&f);
        let n = sh.record(req, "responses", &f, &p, 200);
        return answer(sh, n, &p, w, |p, w| openai::responses_answer(&f, p, w));
    }
    if req.method == "POST" && path.ends_with("/chat/completions") {
        let f = openai::chat_facts(&body);
        let p = sh.plan(&f);
        let n = sh.record(req, "chat", &f, &p, 200);
        return answer(sh, n, &p, w, |p, w| openai::chat_answer(&f, p, w));
    }
    if req.method == "POST" && path.contains(":") && path.contains("/models/") {
        let (model_part, verb) = path.rsplit_once(':').unwrap_or((path, ""));
        let mut f = gemini::facts(&body);
        f.model = model_part.rsplit('/').next().unwrap_or("").to_string();
        match verb {
            "countTokens" => {
                sh.record(req, "gemini", &f, &info("count"), 200);
                let n = (req.body.len() / 4).max(1);
                return http::respond(
                    w,
                    head,
                    200,
                    "application/json",
                    json!({"totalTokens": n}).to_string().as_bytes(),
                );
            }
            "generateContent" | "streamGenerateContent" => {
                f.stream = verb == "streamGenerateContent";
                let p = sh.plan(&f);
                let n = sh.record(req, "gemini", &f, &p, 200);
                return answer(sh, n, &p, w, |p, w| gemini::answer(&f, p, w));
            }
            _ => {}
        }
    }
    if req.method == "GET" && (path.ends_with("/models") || path.contains("/models/")) {
        sh.record(req, "models", &Facts::default(), &info("models"), 200);
        return http::respond(
            w,
            head,
            200,
            "application/json",
            models(path).to_string().as_bytes(),
        );
    }
    if head || (req.method == "GET" && path == "/") {
        sh.record(req, "other", &Facts::default(), &info("root"), 200);
        return http::respond(w, head, 200, "text/plain", b"fake model server\n");
    }
    sh.record(
        req,
        "other",
        &Facts::default(),
        &Plan {
            kind: "unknown",
            ..Plan::side(String::new())
        },
        404,
    );
    let msg = json!({"error": {"type": "not_found_error", "message": format!("fake model: no route for {} {}", req.method, req.target)}});
    http::respond(w, head, 404, "application/json", msg.to_string().as_bytes())
}

/// Runs the API module's answer, or hangs.
fn answer(
    sh: &Shared,
    n: u64,
    p: &Plan,
    w: &mut TcpStream,
    f: impl FnOnce(&Plan, &mut TcpStream) -> io::Result<()>,
) -> io::Result<()> {
    if p.hang {
        sh.dump_answer(n, "(hang)");
        sh.hang();
        return Err(io::Error::other("stopped while hanging"));
    }
    sh.dump_answer(n, &format!("{} {:?} {}", p.kind, p.call, p.text));
    f(p, w)
}

/// The model list, in a shape both Anthropic and OpenAI clients accept (Gemini's too).
fn models(path: &str) -> Value {
    let ids = [
        "claude-sonnet-4-5",
        "claude-opus-4-1",
        "claude-haiku-4-5",
        "gpt-5",
        "gpt-5-codex",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "fake-model",
    ];
    let m = |id: &str| {
        json!({"id": id, "object": "model", "type": "model", "display_name": id,
               "name": format!("models/{id}"), "created": 1_700_000_000u64,
               "created_at": "2025-01-01T00:00:00Z", "owned_by": "fake",
               "supportedGenerationMethods": ["generateContent", "countTokens"]})
    };
    if let Some(id) = path.rsplit_once("/models/").map(|(_, id)| id) {
        return m(id);
    }
    let data: Vec<Value> = ids.iter().map(|id| m(id)).collect();
    json!({"object": "list", "data": data, "models": data, "has_more": false,
           "first_id": ids[0], "last_id": ids[ids.len() - 1]})
}

/// A short random-enough id suffix (unique per process).
pub(crate) fn next_id(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{:x}{n:04x}", std::process::id())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
