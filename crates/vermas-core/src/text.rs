//! Showing stored text safely: titles, bodies and descriptions may hold escape sequences and
//! control characters; a terminal must never interpret them.

/// Characters that change how text around them looks without being seen: bidirectional
/// overrides and isolates (which can make `rm -rf` read as something else), zero-width
/// characters, and the line and paragraph separators some terminals break lines at.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FEFF}'
            | '\u{061C}'
    )
}

/// Replaces control characters (C0, DEL, C1) and invisible formatting characters
/// ([`is_invisible`]) with visible escapes: `\e`, `\t`, `\n`, `\x07`, `\u{202e}`…
/// Printable text, including any other Unicode, is left as it is.
pub fn escape_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control() || is_invisible(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Like [`escape_control`] but keeps newlines and tabs: for multi-line text (descriptions,
/// mail bodies) shown as a block.
pub fn escape_control_multiline(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\t')
                .map(escape_control)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Terminal output as text: escape sequences (colours, cursor moves, OSC titles) removed and
/// carriage-return overwrites resolved to the last write, so a session log reads as lines.
pub fn strip_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    // Overwrite: drop what this line had so far.
                    let start = out.rfind('\n').map(|i| i + 1).unwrap_or(0);
                    out.truncate(start);
                }
            }
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` non-blank lines of terminal output, as text.
pub fn last_lines(output: &str, n: usize) -> String {
    let text = strip_terminal(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kinds of API key that are masked where people write text (titles, descriptions, mail):
/// `(prefix, kind, characters of the key after the prefix, at least)`.
const KEY_SHAPES: &[(&str, &str, usize)] = &[
    ("sk-ant-", "Anthropic", 20),
    ("sk-proj-", "OpenAI", 20),
    ("sk-svcacct-", "OpenAI", 20),
    ("sk-", "OpenAI", 32),
    ("github_pat_", "GitHub", 30),
    ("ghp_", "GitHub", 30),
    ("gho_", "GitHub", 30),
    ("ghu_", "GitHub", 30),
    ("ghs_", "GitHub", 30),
    ("ghr_", "GitHub", 30),
    ("AKIA", "AWS", 16),
    ("ASIA", "AWS", 16),
    ("AIza", "Google", 35),
];

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Replaces strings shaped like a known API key (Anthropic, OpenAI, GitHub, AWS, Google)
/// with their prefix and `…[masked]`; returns the text and the kinds of key found, so the
/// command can say so. A key in a title or a mail body would be kept for good in the log.
pub fn mask_secrets(s: &str) -> (String, Vec<&'static str>) {
    let mut out = String::with_capacity(s.len());
    let mut found = Vec::new();
    let mut i = 0;
    'outer: while i < s.len() {
        // A key starts a word: not in the middle of another identifier.
        let starts_word = i == 0 || !key_char(s[..i].chars().next_back().unwrap_or(' '));
        if starts_word {
            for (prefix, kind, min) in KEY_SHAPES {
                if s[i..].starts_with(prefix) {
                    let rest = &s[i + prefix.len()..];
                    let len = rest.find(|c: char| !key_char(c)).unwrap_or(rest.len());
                    let body = &rest[..len];
                    let shaped = match *kind {
                        "AWS" => {
                            len == *min
                                && body
                                    .chars()
                                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                        }
                        _ => len >= *min && body.chars().any(|c| c.is_ascii_digit()),
                    };
                    if shaped {
                        out.push_str(prefix);
                        out.push_str("…[masked]");
                        found.push(*kind);
                        i += prefix.len() + len;
                        continue 'outer;
                    }
                }
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    (out, found)
}

/// Shortens to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A plain table: left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_shaped_like_api_keys_are_masked() {
        let table = [
            (
                "use sk-ant-api03-AbCdEf0123456789xyzXYZ now",
                "use sk-ant-…[masked] now",
                vec!["Anthropic"],
            ),
            (
                "key=sk-proj-0123456789abcdefghijABCD",
                "key=sk-proj-…[masked]",
                vec!["OpenAI"],
            ),
            (
                "ghp_0123456789abcdefghijklmnopqrstuvwxyz.",
                "ghp_…[masked].",
                vec!["GitHub"],
            ),
            (
                "AKIAIOSFODNN7EXAMPLE and AIzaSyA-0123456789abcdefghijklmnopqrstu",
                "AKIA…[masked] and AIza…[masked]",
                vec!["AWS", "Google"],
            ),
            (
                "a task-ant- thing; sk-short; skip-this",
                "a task-ant- thing; sk-short; skip-this",
                vec![],
            ),
            (
                "mask-sk-ant-api03-AbCdEf0123456789xyzXYZ",
                "mask-sk-ant-api03-AbCdEf0123456789xyzXYZ",
                vec![],
            ),
        ];
        for (input, want, kinds) in table {
            let (got, found) = mask_secrets(input);
            assert_eq!(got, want, "{input}");
            assert_eq!(found, kinds, "{input}");
        }
        // Masking twice changes nothing more.
        let (once, _) = mask_secrets("sk-ant-api03-AbCdEf0123456789xyzXYZ");
        assert_eq!(mask_secrets(&once), (once.clone(), vec![]));
    }

    #[test]
    fn invisible_formatting_is_shown_escaped() {
        assert_eq!(
            escape_control("a\u{202E}b\u{2066}c\u{200B}d\u{2028}e\u{FEFF}"),
            "a\\u{202e}b\\u{2066}c\\u{200b}d\\u{2028}e\\u{feff}"
        );
        assert_eq!(escape_control("naïve 日本"), "naïve 日本");
    }

    #[test]
    fn terminal_output_reads_as_lines() {
        let raw = "\u{1b}]0;title\u{7}\u{1b}[1;31mError:\u{1b}[0m boom\r\nprogress 10%\rprogress 100%\n\n\u{1b}[?25hbye\n";
        assert_eq!(strip_terminal(raw), "Error: boom\nprogress 100%\n\nbye\n");
        assert_eq!(last_lines(raw, 2), "progress 100%\nbye");
    }

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(escape_control("a\x1b[31mred\x07"), "a\\e[31mred\\x07");
        assert_eq!(escape_control("tab\there\nnl"), "tab\\there\\nnl");
        assert_eq!(escape_control("ünïcödé ✓"), "ünïcödé ✓");
        assert_eq!(escape_control("\u{9b}"), "\\x9b");
        assert_eq!(escape_control_multiline("a\x1b\nb\tc"), "a\\e\nb\tc");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "TITLE"],
            &[
                vec!["wo-1".into(), "x".into()],
                vec!["wo-22".into(), "y".into()],
            ],
        );
        assert_eq!(t, "ID     TITLE\nwo-1   x\nwo-22  y\n");
    }
}
