//! Gemini API (`…/models/<m>:generateContent` and `:streamGenerateContent?alt=sse`).

use super::http::{self, Sse};
use super::{Facts, Plan, SHELL_TOOLS, pieces};
use serde_json::{Value, json};
use std::io;
use std::net::TcpStream;

pub(crate) fn facts(body: &Value) -> Facts {
    let decls: Vec<Value> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let shell = decls.iter().find_map(|d| {
        let name = d["name"].as_str()?;
        let schema = if d["parametersJsonSchema"].is_object() {
            d["parametersJsonSchema"].clone()
        } else {
            d["parameters"].clone()
        };
        SHELL_TOOLS
            .contains(&name)
            .then(|| (name.to_string(), schema))
    });
    let tool_results = body["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["functionResponse"].is_object())
        .count();
    let gc = &body["generationConfig"];
    let json_schema = [&gc["responseJsonSchema"], &gc["responseSchema"]]
        .into_iter()
        .find(|s| s.is_object())
        .cloned();
    Facts {
        tools: !decls.is_empty(),
        shell,
        tool_results,
        json_schema,
        ..Facts::default()
    }
}

fn chunk(f: &Facts, parts: Vec<Value>, finish: Option<&str>) -> Value {
    let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(r) = finish {
        cand["finishReason"] = json!(r);
    }
    json!({"candidates": [cand],
           "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19},
           "modelVersion": f.model})
}

pub(crate) fn answer(f: &Facts, p: &Plan, w: &mut TcpStream) -> io::Result<()> {
    let call = p
        .call
        .as_ref()
        .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}));
    if !f.stream {
        std::thread::sleep(p.slow);
        let mut parts = Vec::new();
        if !p.text.is_empty() {
            parts.push(json!({"text": p.text}));
        }
        parts.extend(call);
        let body = chunk(f, parts, Some("STOP"));
        return http::respond(
            w,
            false,
            200,
            "application/json",
            body.to_string().as_bytes(),
        );
    }
    let mut s = Sse::start(w)?;
    for (wait, text) in pieces(&p.text, p.slow) {
        std::thread::sleep(wait);
        s.event(
            None,
            &chunk(f, vec![json!({"text": text})], None).to_string(),
        )?;
    }
    let last: Vec<Value> = call.into_iter().collect();
    let last = if last.is_empty() {
        vec![json!({"text": ""})]
    } else {
        last
    };
    s.event(None, &chunk(f, last, Some("STOP")).to_string())?;
    s.finish()
}
