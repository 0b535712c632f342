//! Runtimes: named recipes for starting an agent CLI (design §6).

/// The built-in presets.
pub const PRESET_NAMES: &[&str] = &["claude", "codex", "gemini", "aider", "opencode", "command"];
