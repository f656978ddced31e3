//! Build script: lets tauri-build read `tauri.conf.json`, the capabilities and the icons, and
//! generate the permission files that `tauri::generate_context!` embeds.

fn main() {
    tauri_build::build();
}
