//! Anthropic Messages API (`POST /v1/messages`), streamed (SSE) and not.

use super::http::{self, Sse};
use super::{Facts, Plan, SHELL_TOOLS, next_id, pieces};
use serde_json::{Value, json};
use std::io;
use std::net::TcpStream;

pub(crate) fn facts(body: &Value) -> Facts {
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let shell = tools.iter().find_map(|t| {
        let name = t["name"].as_str()?;
        SHELL_TOOLS
            .contains(&name)
            .then(|| (name.to_string(), t["input_schema"].clone()))
    });
    let tool_results = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .count();
    let json_schema = body["output_format"]["schema"]
        .as_object()
        .map(|o| Value::Object(o.clone()));
    Facts {
        model: body["model"].as_str().unwrap_or("").to_string(),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools: !tools.is_empty(),
        shell,
        tool_results,
        json_schema,
        ..Facts::default()
    }
}

fn usage() -> Value {
    json!({"input_tokens": 12, "output_tokens": 7, "cache_creation_input_tokens": 0,
           "cache_read_input_tokens": 0})
}

pub(crate) fn answer(f: &Facts, p: &Plan, w: &mut TcpStream) -> io::Result<()> {
    let id = next_id("msg_fake");
    let tool_id = next_id("toolu_fake");
    let stop = if p.call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !f.stream {
        std::thread::sleep(p.slow);
        let mut content = Vec::new();
        if !p.text.is_empty() {
            content.push(json!({"type": "text", "text": p.text}));
        }
        if let Some((name, input)) = &p.call {
            content.push(json!({"type": "tool_use", "id": tool_id, "name": name, "input": input}));
        }
        let msg = json!({"id": id, "type": "message", "role": "assistant", "model": f.model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage()});
        return http::respond(
            w,
            false,
            200,
            "application/json",
            msg.to_string().as_bytes(),
        );
    }
    let mut s = Sse::start(w)?;
    let start = json!({"type": "message_start", "message": {"id": id, "type": "message",
        "role": "assistant", "model": f.model, "content": [], "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}});
    s.event(Some("message_start"), &start.to_string())?;
    let mut index = 0;
    let parts = pieces(&p.text, p.slow);
    if !parts.is_empty() {
        let b = json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}});
        s.event(Some("content_block_start"), &b.to_string())?;
        for (wait, text) in parts {
            std::thread::sleep(wait);
            let d = json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": text}});
            s.event(Some("content_block_delta"), &d.to_string())?;
        }
        let e = json!({"type": "content_block_stop", "index": index});
        s.event(Some("content_block_stop"), &e.to_string())?;
        index += 1;
    }
    if let Some((name, input)) = &p.call {
        let b = json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}});
        s.event(Some("content_block_start"), &b.to_string())?;
        let d = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": input.to_string()}});
        s.event(Some("content_block_delta"), &d.to_string())?;
        let e = json!({"type": "content_block_stop", "index": index});
        s.event(Some("content_block_stop"), &e.to_string())?;
    }
    let d = json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": 7}});
    s.event(Some("message_delta"), &d.to_string())?;
    s.event(
        Some("message_stop"),
        &json!({"type": "message_stop"}).to_string(),
    )?;
    s.finish()
}
