//! The IPC commands the UI calls (`ui/src/api/commands.ts` has one typed wrapper per command).
//!
//! Empty on purpose until the engine (`sealpost-client`) has its command API. Each command will be
//! three to five lines: take the engine from Tauri state, call it, map its error to
//! [`CommandError`]. Register them in `lib.rs` with
//! `.invoke_handler(tauri::generate_handler![commands::app_status, ...])`.
//!
//! Rules for what goes here:
//! - No secret crosses IPC (BRIEF §3a.11): never return seeds, private keys, session state or the
//!   database key. Invite text, safety numbers and message text may cross.
//! - Command names are snake_case and match the wrappers in `ui/src/api/commands.ts`.
//! - Keep commands in this module: a `#[tauri::command] pub fn` at the crate root collides with
//!   the `__cmd__` item that Tauri generates (E0255).

use serde::Serialize;

/// The error every command rejects with; the UI reads it as `EngineError { kind, message }`
/// (`ui/src/api/types.ts`). `kind` is a stable snake_case code the UI turns into words;
/// `message` is detail for logs, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    /// Stable machine-readable code, e.g. `invite_used`.
    pub kind: String,
    /// Detail for logs and bug reports.
    pub message: String,
}

impl CommandError {
    /// An error of `kind` with a detail `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_ui_expects() {
        let json = serde_json::to_value(CommandError::new("invite_used", "detail")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "kind": "invite_used", "message": "detail" })
        );
    }
}
