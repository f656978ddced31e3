//! Sealpost's desktop shell: a thin Tauri v2 layer over the `sealpost-client` engine.
//!
//! It owns what only the desktop edge knows: the window, the tray, notifications, single
//! instance per profile, `sealpost:` deep links and the command line. Everything a test would
//! want to check about messaging lives in the engine, not here.
//!
//! Assets: `tauri.conf.json` has no `devUrl`, so `generate_context!` embeds `../ui/dist` in every
//! build, debug and release alike, and the window loads it from `tauri://localhost`. `cargo run -p
//! sealpost` therefore needs no dev server and no `custom-protocol` feature; rebuild the UI
//! (`npm run build` in `ui/`) and the next cargo build re-embeds it.

pub mod commands;
pub mod deep_link;
pub mod file_ipc;
pub mod first_screen;
pub mod launch;
pub mod notify;
pub mod painting;
pub mod shell;
pub mod tray;
pub mod window;

use anyhow::Context as _;
use tauri::Manager as _;
use tauri_plugin_window_state::StateFlags;

use crate::launch::{CommandLine, LaunchOptions};
use crate::shell::Shell;

/// Starts the app for a parsed command line: checks the display, makes the profile directories
/// and runs the event loop until the app quits. `painting` is what `main` chose
/// ([`painting::choose_before_threads`]), logged here.
pub fn start(command_line: CommandLine, painting: painting::Painting) -> anyhow::Result<()> {
    init_logging();
    if painting == painting::Painting::Cpu {
        tracing::info!("no GPU render node: WebKit rasterises on the CPU (src/painting.rs)");
    }
    if !launch::display_available() {
        anyhow::bail!(
            "Sealpost needs a graphical display, but neither DISPLAY nor WAYLAND_DISPLAY is set. \
             Start it from a desktop session (or under `xvfb-run -a` for tests)."
        );
    }
    let options = LaunchOptions::from_command_line(command_line)?;
    tracing::info!(
        profile = %options.profile,
        dir = %options.dirs.profile_dir().display(),
        local_relay = ?options.local_relay,
        "starting"
    );
    run(options)
}

/// Builds the Tauri app (plugins, state, window, tray) and runs it until it quits.
pub fn run(options: LaunchOptions) -> anyhow::Result<()> {
    let context = tauri::generate_context!();
    // One single-instance lock per profile, so that two profiles can run side by side
    // (`docs/engine.md` § Profiles). The profile name was checked to be a valid D-Bus name element.
    let dbus_id = format!("{}.p_{}", context.config().identifier, options.profile);
    // Window geometry per profile, in the app's config directory.
    let window_state_file = format!("window-state.{}.json", options.profile);

    tauri::Builder::default()
        // Single-instance first: a second start must hand over and exit before anything else.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(dbus_id)
                .callback(deep_link::on_second_instance)
                .build(),
        )
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_window_state::Builder::new()
                .with_filename(window_state_file)
                // Never restore "hidden": a window hidden to the tray at quit must still come back.
                .with_state_flags(StateFlags::all() - StateFlags::VISIBLE)
                .build(),
        )
        .manage(Shell::new(options.clone()))
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::onboard,
            commands::get_profile,
            commands::set_display_name,
            commands::list_chats,
            commands::get_messages,
            commands::search_messages,
            commands::set_chat_timer,
            commands::send_message,
            commands::send_attachment,
            commands::get_attachments,
            commands::download_attachment,
            commands::cancel_attachment,
            commands::save_attachment,
            commands::attachment_preview,
            commands::mark_read,
            commands::create_invite,
            commands::list_invites,
            commands::revoke_invite,
            commands::preview_invite,
            commands::accept_invite,
            commands::get_safety_number,
            commands::set_verified,
            commands::accept_key_change,
            commands::reject_key_change,
            commands::block_contact,
            commands::repair_session,
            commands::delete_contact,
            commands::rename_contact,
            commands::take_pending_invite,
            commands::get_settings,
            commands::update_settings,
            commands::set_relay_password,
            commands::set_socks_proxy,
            commands::create_group,
            commands::list_groups,
            commands::get_group,
            commands::get_group_messages,
            commands::send_group_message,
            commands::send_group_attachment,
            commands::get_group_attachments,
            commands::add_group_member,
            commands::remove_group_member,
            commands::promote_group_member,
            commands::rename_group,
            commands::set_group_timer,
            commands::leave_group,
            commands::mark_group_read,
            commands::export_backup,
            commands::restore_backup,
        ])
        .setup(move |app| {
            // Open the profile first, on the async runtime, while this thread builds the window
            // and webview: messages arrive and the local relay runs before the UI asks, and the
            // UI's first command finds it (nearly) open (`docs/benchmarks.md`, Desktop app). A
            // failure here is reported to the UI by its first command, which retries.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let shell = handle.state::<Shell>();
                match shell.app(&handle).await {
                    Ok(opened) => {
                        // For the page, if it has not been asked for yet (`first_screen`).
                        if let Some(data) = first_screen::FirstScreen::read(opened).await {
                            shell.first_screen().put(&data);
                        }
                        // Counted here only for a tray already there: at start the tray (built
                        // later, below) counts once itself, and the UI's first calls do not
                        // queue behind this count.
                        if tray::is_installed(&handle) {
                            shell::refresh_unread(&handle).await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(kind = ?error.kind, message = %error.message, "the profile did not open");
                    }
                }
            });
            deep_link::forward_opened_links(app.handle());
            window::create_main_window(app, &options)?;
            deep_link::forward_startup_link(app.handle(), &options);
            // The tray is built on this (the main) thread, which also serves the UI's files and
            // IPC replies: it waits until the first screen is up (docs/benchmarks.md, Desktop app).
            let handle = app.handle().clone();
            let tray_options = options.clone();
            tauri::async_runtime::spawn(async move {
                tokio::time::sleep(TRAY_DELAY).await;
                let on_main = handle.clone();
                let installed = handle.run_on_main_thread(move || {
                    tray::install(&on_main, &tray_options);
                    // The tray shows the unread count from the start: the profile task above
                    // sets it once the profile is open; this covers a profile open before the tray.
                    if on_main.state::<Shell>().is_open() {
                        tauri::async_runtime::spawn(async move {
                            shell::refresh_unread(&on_main).await;
                        });
                    }
                });
                if let Err(error) = installed {
                    tracing::warn!(%error, "no tray icon: the event loop is gone");
                }
            });
            Ok(())
        })
        .build(context)
        .context("the Sealpost window could not be set up")?
        .run(|handle, event| {
            if let tauri::RunEvent::Exit = event {
                // Commit queued work and hand the local relay over before the process ends.
                tauri::async_runtime::block_on(handle.state::<Shell>().shutdown());
            }
        });
    Ok(())
}

/// How long after start the tray icon is built: after the window's first screen, which needs the
/// main thread (a tray a second late is not noticed; a chat list a tray's build late is).
const TRAY_DELAY: std::time::Duration = std::time::Duration::from_millis(1500);

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests) is harmless, so its error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
