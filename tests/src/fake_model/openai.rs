//! OpenAI Responses (`POST /v1/responses`) and chat completions (`POST /v1/chat/completions`).

use super::http::{self, Sse};
use super::{AIDER_MARK, Facts, Plan, SHELL_TOOLS, next_id, pieces};
use serde_json::{Value, json};
use std::io;
use std::net::TcpStream;

/// The text of a message's `content`: a string, or an array of parts with `text`.
fn content_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn find_shell(tools: &[Value]) -> Option<(String, Value)> {
    tools.iter().find_map(|t| {
        // Responses: {"type":"function","name":…,"parameters":…}; chat: {"type":"function",
        // "function":{"name":…,"parameters":…}}; Codex's built-in {"type":"local_shell"}.
        let (name, params) = if t["function"].is_object() {
            (
                t["function"]["name"].as_str()?,
                &t["function"]["parameters"],
            )
        } else if t["type"] == "local_shell" {
            ("local_shell", &Value::Null)
        } else {
            (t["name"].as_str()?, &t["parameters"])
        };
        SHELL_TOOLS
            .contains(&name)
            .then(|| (name.to_string(), params.clone()))
    })
}

pub(crate) fn responses_facts(body: &Value) -> Facts {
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let tool_results = body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("_call_output"))
        })
        .count();
    let json_schema = body["text"]["format"]["schema"]
        .as_object()
        .map(|o| Value::Object(o.clone()));
    Facts {
        model: body["model"].as_str().unwrap_or("").to_string(),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools: !tools.is_empty(),
        shell: find_shell(&tools),
        tool_results,
        json_schema,
        ..Facts::default()
    }
}

fn usage() -> Value {
    json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": 19})
}

pub(crate) fn responses_answer(f: &Facts, p: &Plan, w: &mut TcpStream) -> io::Result<()> {
    let resp_id = next_id("resp_fake");
    let msg_id = next_id("msg_fake");
    let call_id = next_id("call_fake");
    let mut output = Vec::new();
    if !p.text.is_empty() {
        output.push(
            json!({"type": "message", "id": msg_id, "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": p.text, "annotations": []}]}),
        );
    }
    if let Some((name, args)) = &p.call {
        if name == "local_shell" {
            output.push(
                json!({"type": "local_shell_call", "id": next_id("lsh_fake"),
                "call_id": call_id, "status": "completed",
                "action": {"type": "exec", "command": args["command"], "env": {}}}),
            );
        } else {
            output.push(json!({"type": "function_call", "id": next_id("fc_fake"),
                "call_id": call_id, "name": name, "arguments": args.to_string(),
                "status": "completed"}));
        }
    }
    let response = |status: &str, output: &Value| {
        json!({"id": resp_id, "object": "response", "created_at": 1_700_000_000u64,
               "status": status, "model": f.model, "output": output, "usage": usage(),
               "error": null, "incomplete_details": null})
    };
    if !f.stream {
        std::thread::sleep(p.slow);
        let body = response("completed", &Value::Array(output));
        return http::respond(
            w,
            false,
            200,
            "application/json",
            body.to_string().as_bytes(),
        );
    }
    let mut s = Sse::start(w)?;
    let mut seq = 0u64;
    let mut ev = |s: &mut Sse, name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        s.event(Some(name), &data.to_string())
    };
    ev(
        &mut s,
        "response.created",
        json!({"response": response("in_progress", &json!([]))}),
    )?;
    ev(
        &mut s,
        "response.in_progress",
        json!({"response": response("in_progress", &json!([]))}),
    )?;
    let mut index = 0;
    let parts = pieces(&p.text, p.slow);
    if !parts.is_empty() {
        ev(
            &mut s,
            "response.output_item.added",
            json!({"output_index": index,
            "item": {"type": "message", "id": msg_id, "status": "in_progress",
                     "role": "assistant", "content": []}}),
        )?;
        ev(
            &mut s,
            "response.content_part.added",
            json!({"item_id": msg_id,
            "output_index": index, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        )?;
        let mut said = String::new();
        for (wait, text) in parts {
            std::thread::sleep(wait);
            said.push_str(&text);
            ev(
                &mut s,
                "response.output_text.delta",
                json!({"item_id": msg_id,
                "output_index": index, "content_index": 0, "delta": text}),
            )?;
        }
        ev(
            &mut s,
            "response.output_text.done",
            json!({"item_id": msg_id,
            "output_index": index, "content_index": 0, "text": said}),
        )?;
        ev(
            &mut s,
            "response.content_part.done",
            json!({"item_id": msg_id,
            "output_index": index, "content_index": 0,
            "part": {"type": "output_text", "text": said, "annotations": []}}),
        )?;
        // The item as streamed (with filler, when slow).
        let item = json!({"type": "message", "id": msg_id, "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": said, "annotations": []}]});
        ev(
            &mut s,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        )?;
        index += 1;
    }
    for item in output.iter().filter(|i| i["type"] != "message") {
        ev(
            &mut s,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        )?;
        ev(
            &mut s,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        )?;
        index += 1;
    }
    ev(
        &mut s,
        "response.completed",
        json!({"response": response("completed", &Value::Array(output))}),
    )?;
    s.finish()
}

pub(crate) fn chat_facts(body: &Value) -> Facts {
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let tool_results = messages.iter().filter(|m| m["role"] == "tool").count();
    let system: String = messages
        .iter()
        .filter(|m| m["role"] == "system")
        .map(|m| content_text(&m["content"]))
        .collect::<Vec<_>>()
        .join("\n");
    // Aider: no tools; its system prompt names its edit format.
    let aider_format = if !tools.is_empty() {
        None
    } else if system.contains("SEARCH/REPLACE") {
        Some("diff")
    } else if system.contains("file listing") {
        Some("whole")
    } else {
        None
    };
    let our_replies = messages
        .iter()
        .filter(|m| m["role"] == "assistant" && content_text(&m["content"]).contains(AIDER_MARK))
        .count();
    let json_schema = body["response_format"]["json_schema"]["schema"]
        .as_object()
        .map(|o| Value::Object(o.clone()));
    Facts {
        model: body["model"].as_str().unwrap_or("").to_string(),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools: !tools.is_empty(),
        shell: find_shell(&tools),
        tool_results,
        aider_format,
        our_replies,
        json_schema,
    }
}

pub(crate) fn chat_answer(f: &Facts, p: &Plan, w: &mut TcpStream) -> io::Result<()> {
    let id = next_id("chatcmpl-fake");
    let call_id = next_id("call_fake");
    let finish = if p.call.is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19});
    let calls = p.call.as_ref().map(|(name, args)| {
        json!([{"id": call_id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}])
    });
    if !f.stream {
        std::thread::sleep(p.slow);
        let mut msg = json!({"role": "assistant", "content": p.text});
        if let Some(c) = &calls {
            msg["tool_calls"] = c.clone();
        }
        let body = json!({"id": id, "object": "chat.completion", "created": 1_700_000_000u64,
            "model": f.model, "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": usage});
        return http::respond(
            w,
            false,
            200,
            "application/json",
            body.to_string().as_bytes(),
        );
    }
    let mut s = Sse::start(w)?;
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
               "model": f.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    s.event(
        None,
        &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )?;
    for (wait, text) in pieces(&p.text, p.slow) {
        std::thread::sleep(wait);
        s.event(None, &chunk(json!({"content": text}), Value::Null))?;
    }
    if let Some((name, args)) = &p.call {
        let d = json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]});
        s.event(None, &chunk(d, Value::Null))?;
    }
    s.event(None, &chunk(json!({}), json!(finish)))?;
    let u = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                   "model": f.model, "choices": [], "usage": usage});
    s.event(None, &u.to_string())?;
    s.event(None, "[DONE]")?;
    s.finish()
}
