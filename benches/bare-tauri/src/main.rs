//! A bare Tauri v2 app: one window with the bundled `dist/index.html` and nothing else (no
//! commands, no plugins, no state). It is the floor `app-startup` compares Sealpost against.

// No console window on Windows in release builds (same as a generated Tauri app).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let result = tauri::Builder::default().run(tauri::generate_context!());
    if let Err(error) = result {
        eprintln!("bare-tauri: {error}");
        std::process::exit(1);
    }
}
