//! Generates Tauri's build-time context (configuration, icons, capabilities).

fn main() {
    tauri_build::build();
}
