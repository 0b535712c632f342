//! The fake model server against hand-written requests of each wire protocol.

use super::*;
use std::io::{BufRead, Read};

/// Sends one raw request on `conn` and reads one whole response (length or chunked).
fn exchange(conn: &mut TcpStream, raw: &[u8]) -> (u16, String) {
    conn.write_all(raw).unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = None;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        if k.eq_ignore_ascii_case("content-length") {
            len = Some(v.trim().parse::<usize>().unwrap());
        }
        if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if raw.starts_with(b"HEAD ") {
        // No body, whatever the length says.
    } else if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(len.unwrap_or(0), 0);
        r.read_exact(&mut body).unwrap();
    }
    (status, String::from_utf8(body).unwrap())
}

fn post(m: &FakeModel, path: &str, body: &Value) -> (u16, String) {
    let mut c = TcpStream::connect(m.addr).unwrap();
    let b = body.to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    );
    exchange(&mut c, raw.as_bytes())
}

fn scenario() -> Scenario {
    Scenario::from_json(
        r#"{"steps": [{"shell": "co assignment", "text": "Checking."},
                      {"shell": "git commit -am x", "edit": {"path": "a.txt", "content": "hi\n"}},
                      {"shell": "co worker done"}],
            "final": "All done."}"#,
    )
    .unwrap()
}

/// The `data:` payloads of an SSE body, parsed (`[DONE]` left out).
fn sse(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn bash_tool() -> Value {
    json!([{"name": "Bash", "input_schema": {"type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}])
}

#[test]
fn anthropic_steps_follow_the_tool_results_and_side_calls_do_not_count() {
    let m = FakeModel::start(scenario()).unwrap();
    let (st, body) = post(
        &m,
        "/v1/messages?beta=true",
        &json!({"model": "m", "tools": bash_tool(), "messages": [{"role": "user", "content": "go"}]}),
    );
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][1]["input"]["command"], "co assignment");
    // A side call (no tools) answers plainly.
    let (_, side) = post(
        &m,
        "/v1/messages",
        &json!({"model": "m", "messages": [{"role": "user", "content": "title?"}]}),
    );
    let side: Value = serde_json::from_str(&side).unwrap();
    assert_eq!(side["content"][0]["text"], "VerMAS worker");
    assert_eq!(side["stop_reason"], "end_turn");
    // Two tool results: step 2, streamed.
    let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]});
    let (_, body) = post(
        &m,
        "/v1/messages",
        &json!({"model": "m", "stream": true, "tools": bash_tool(),
                "messages": [{"role": "user", "content": "go"}, result, result]}),
    );
    let events = sse(&body);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(types.last(), Some(&"message_stop"));
    let json_delta = events
        .iter()
        .find(|e| e["delta"]["type"] == "input_json_delta")
        .unwrap();
    let input: Value =
        serde_json::from_str(json_delta["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input["command"], "co worker done");
    // Three: the final answer.
    let (_, body) = post(
        &m,
        "/v1/messages",
        &json!({"model": "m", "tools": bash_tool(), "messages": [result, result, result]}),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["content"][0]["text"], "All done.");
    assert_eq!(v["stop_reason"], "end_turn");

    let log: Vec<(String, Option<usize>)> = m
        .requests()
        .iter()
        .map(|r| (r.answer.clone(), r.step))
        .collect();
    assert_eq!(
        log,
        vec![
            ("tool".into(), Some(0)),
            ("side".into(), None),
            ("tool".into(), Some(2)),
            ("final".into(), Some(3))
        ]
    );
    let file = std::fs::read_to_string(m.log_path()).unwrap();
    assert_eq!(file.lines().count(), 4);
    let first: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(first["tools"], true);
    assert_eq!(first["command"], "co assignment");
}

#[test]
fn openai_responses_call_exec_command_with_cmd() {
    let m = FakeModel::start(scenario()).unwrap();
    let tools = json!([{"type": "function", "name": "exec_command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}, "login": {"type": "boolean"}}}}]);
    let (_, body) = post(
        &m,
        "/v1/responses",
        &json!({"model": "m", "stream": true, "tools": tools, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}]}),
    );
    let events = sse(&body);
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    let call = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done" && e["item"]["type"] == "function_call")
        .unwrap();
    assert_eq!(call["item"]["name"], "exec_command");
    let args: Value = serde_json::from_str(call["item"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": "git commit -am x"}));
}

#[test]
fn chat_completions_tools_and_aider_edit_formats() {
    let m = FakeModel::start(scenario()).unwrap();
    let tools = json!([{"type": "function", "function": {"name": "bash",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}}]);
    let (_, body) = post(
        &m,
        "/v1/chat/completions",
        &json!({"model": "m", "stream": true, "tools": tools,
                "messages": [{"role": "user", "content": "go"}]}),
    );
    let chunks = sse(&body);
    let call = chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .unwrap();
    let f = &call["choices"][0]["delta"]["tool_calls"][0]["function"];
    assert_eq!(f["name"], "bash");
    assert!(f["arguments"].as_str().unwrap().contains("co assignment"));
    assert!(body.trim_end().ends_with("data: [DONE]"));
    // Aider, diff format: the first edit step as a SEARCH/REPLACE block.
    let sys = json!({"role": "system", "content": "Use *SEARCH/REPLACE block* to edit"});
    let (_, body) = post(
        &m,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [sys, {"role": "user", "content": "go"}]}),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.contains("a.txt\n```\n<<<<<<< SEARCH\n=======\nhi\n>>>>>>> REPLACE\n```"),
        "{text}"
    );
    // Our reply in the history: the final answer next.
    let (_, body) = post(
        &m,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [sys, {"role": "user", "content": "go"},
            {"role": "assistant", "content": text}, {"role": "user", "content": "more"}]}),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("All done.")
    );
    // Whole-file format.
    let (_, body) = post(
        &m,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "system", "content": "return the file listing"},
            {"role": "user", "content": "go"}]}),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("a.txt\n```\nhi\n```\n")
    );
}

#[test]
fn gemini_function_calls_and_json_side_calls() {
    let m = FakeModel::start(scenario()).unwrap();
    let tools = json!([{"functionDeclarations": [{"name": "run_shell_command",
        "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}]}]);
    let (_, body) = post(
        &m,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        &json!({"contents": [{"role": "user", "parts": [{"text": "go"}]}], "tools": tools}),
    );
    let chunks = sse(&body);
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    let call = &last["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "run_shell_command");
    assert_eq!(call["args"]["command"], "co assignment");
    let (_, body) = post(
        &m,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &json!({"contents": [], "generationConfig": {"responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object", "properties": {
                "reasoning": {"type": "string"}, "next_speaker": {"type": "string", "enum": ["model", "user"]}}}}}),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let answer: Value = serde_json::from_str(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["next_speaker"], "user");
    assert_eq!(m.requests()[0].model, "gemini-2.5-pro");
}

#[test]
fn keep_alive_chunked_bodies_head_and_models() {
    let m = FakeModel::start(scenario()).unwrap();
    let mut c = TcpStream::connect(m.addr).unwrap();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}).to_string();
    let (a, b) = body.split_at(10);
    let raw = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (st, text) = exchange(&mut c, raw.as_bytes());
    assert_eq!(st, 200, "{text}");
    let (st, text) = exchange(&mut c, b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["data"].as_array().unwrap().len() > 1);
    let (st, text) = exchange(&mut c, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((st, text.as_str()), (200, ""));
    let (st, _) = exchange(&mut c, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 404);
    assert_eq!(m.requests().len(), 4);
}

#[test]
fn a_slow_step_streams_filler_and_a_hanging_one_never_answers() {
    let sc = Scenario::from_json(
        r#"{"steps": [{"shell": "true", "slow_seconds": 0.6}, {"hang": true}], "final": "x"}"#,
    )
    .unwrap();
    let mut m = FakeModel::start(sc).unwrap();
    let t = Instant::now();
    let (_, body) = post(
        &m,
        "/v1/messages",
        &json!({"model": "m", "stream": true, "tools": bash_tool(), "messages": []}),
    );
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(body.contains("Still "), "{body}");
    // Step 1 hangs: nothing within a second, then the connection closes when the server stops.
    let mut c = TcpStream::connect(m.addr).unwrap();
    let b = json!({"model": "m", "tools": bash_tool(),
        "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]})
    .to_string();
    c.write_all(
        format!(
            "POST /v1/messages HTTP/1.1\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(c.read(&mut buf).is_err(), "a hanging step answers nothing");
    assert_eq!(m.requests().last().unwrap().answer, "hang");
    m.stop();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "closed on stop");
}

#[test]
fn scenario_json_errors_and_defaults() {
    assert!(Scenario::from_json("{").is_err());
    assert!(Scenario::from_json(r#"{"steps": [{"edit": {"content": "x"}}]}"#).is_err());
    let s = Scenario::from_json(r#"{"steps": [{"shell": "ls"}]}"#).unwrap();
    assert_eq!(s.final_answer.text, "Done.");
    assert_eq!(s.side_answer, "VerMAS worker");
    assert_eq!(
        shell_args(&json!({"properties": {"command": {"type": "array"}}}), "ls"),
        json!({"command": ["bash", "-lc", "ls"]})
    );
}
