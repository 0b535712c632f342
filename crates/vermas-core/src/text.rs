//! Showing stored text safely: titles, bodies and descriptions may hold escape sequences and
//! control characters; a terminal must never interpret them.

/// Replaces control characters (C0, DEL, C1) with visible escapes: `\e`, `\t`, `\n`, `\x07`…
/// Printable text, including any Unicode, is left as it is.
pub fn escape_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control() => {
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
