//! The state Tauri holds for the window: the open profile ([`sealpost_client::App`]) and the
//! pump that carries engine events to the UI, the tray and notifications.
//!
//! The profile is opened at start in the background and, if that fails (a locked keychain, a
//! broken disk), again on the UI's next command: the UI's "Try again" button is a real retry.

use std::sync::Mutex;

use sealpost_client::engine::{ChatView, EngineEvent};
use sealpost_client::{App, AppConfig, EngineConfig};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::commands::CommandError;
use crate::first_screen::FirstScreenSlot;
use crate::launch::LaunchOptions;
use crate::notify::{self, NotificationPreview};
use crate::tray;
use crate::window::MAIN_WINDOW;

/// Tauri state: the launch options, the profile once open, and a pending invite link.
pub struct Shell {
    options: LaunchOptions,
    app: OnceCell<App>,
    pending_invite: Mutex<Option<String>>,
    first_screen: FirstScreenSlot,
}

impl Shell {
    /// State for `options`; nothing is opened yet.
    pub fn new(options: LaunchOptions) -> Self {
        let pending_invite = options
            .invite_link
            .as_ref()
            .map(|link| link.as_str().to_owned());
        Self {
            options,
            app: OnceCell::new(),
            pending_invite: Mutex::new(pending_invite),
            first_screen: FirstScreenSlot::default(),
        }
    }

    /// The open profile, opening it (and starting its event pump) on first use.
    pub async fn app<R: Runtime>(&self, handle: &AppHandle<R>) -> Result<&App, CommandError> {
        self.app
            .get_or_try_init(|| async {
                let mut engine = EngineConfig::new(self.options.profile.clone());
                engine.profiles = self.options.profiles.clone();
                engine.connector.roots.extra_ca_pem = self.options.extra_ca_pem.clone();
                let (app, events) = App::open(AppConfig {
                    engine,
                    local_relay: self.options.local_relay,
                    local_relay_port: self.options.local_relay_port,
                })
                .await?;
                tauri::async_runtime::spawn(pump_events(handle.clone(), events));
                Ok(app)
            })
            .await
    }

    /// Whether the profile is open (without opening it).
    pub fn is_open(&self) -> bool {
        self.app.initialized()
    }

    /// The first screen's data for the page, kept once the profile is open
    /// (`crate::first_screen`).
    pub fn first_screen(&self) -> &FirstScreenSlot {
        &self.first_screen
    }

    /// Keeps a `sealpost:` link until the UI asks for it ([`Shell::take_pending_invite`]).
    pub fn set_pending_invite(&self, text: String) {
        *lock(&self.pending_invite) = Some(text);
    }

    /// The link the app was started with or that arrived before the UI listened, once.
    pub fn take_pending_invite(&self) -> Option<String> {
        lock(&self.pending_invite).take()
    }

    /// Stops the engine and the local relay (called when the app exits).
    pub async fn shutdown(&self) {
        if let Some(app) = self.app.get() {
            app.shutdown().await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forwards every engine event to the window, shows a notification for new messages (1:1 and
/// group texts alike) when the window is not focused, and keeps the tray's unread count
/// current. A burst of events (an offline backlog of thousands) gives one notification and one
/// unread recount, once the burst has been forwarded, not one per message.
async fn pump_events<R: Runtime>(handle: AppHandle<R>, mut events: UnboundedReceiver<EngineEvent>) {
    let mut newest_unnotified: Option<Unnotified> = None;
    let mut unread_stale = false;
    while let Some(event) = events.recv().await {
        match &event {
            EngineEvent::MessageReceived {
                contact_id,
                message,
            } => {
                // A timer change is a system line: no notification. A disappearing message's
                // text never goes into one (it could outlive the message; `docs/engine.md` §
                // Disappearing messages).
                if message.timer_change.is_none() {
                    let text = message
                        .timer_seconds
                        .is_none()
                        .then(|| message.text.clone());
                    newest_unnotified = Some(Unnotified::Chat {
                        contact_id: contact_id.clone(),
                        text,
                    });
                }
                unread_stale = true;
            }
            EngineEvent::GroupMessageReceived { group_id, message } => {
                // As for 1:1 messages, a disappearing text never goes into a notification.
                newest_unnotified = Some(Unnotified::Group {
                    group_id: group_id.clone(),
                    author: message.author_name.clone().unwrap_or_default(),
                    text: message
                        .timer_seconds
                        .is_none()
                        .then(|| message.text.clone()),
                });
                unread_stale = true;
            }
            EngineEvent::ContactUpdated { .. }
            | EngineEvent::GroupRosterChanged { .. }
            | EngineEvent::MessagesExpired { .. }
            | EngineEvent::GroupMessagesExpired { .. } => {
                unread_stale = true;
            }
            _ => {}
        }
        forward(&handle, &event);
        if events.is_empty() {
            match newest_unnotified.take() {
                Some(Unnotified::Chat { contact_id, text }) => {
                    notify_new_message(&handle, &contact_id, text.as_deref()).await;
                }
                Some(Unnotified::Group {
                    group_id,
                    author,
                    text,
                }) => {
                    notify_new_group_message(&handle, &group_id, &author, text.as_deref()).await;
                }
                None => {}
            }
            if std::mem::take(&mut unread_stale) {
                refresh_unread(&handle).await;
            }
        }
    }
}

/// The newest message of a burst, not notified yet.
enum Unnotified {
    /// A 1:1 message (`text` is `None` for a disappearing message: its text never goes into a
    /// notification).
    Chat {
        contact_id: String,
        text: Option<String>,
    },
    /// A group text by `author` (their contact name, if any); `text` is `None` for a
    /// disappearing one.
    Group {
        group_id: String,
        author: String,
        text: Option<String>,
    },
}

async fn notify_new_group_message<R: Runtime>(
    handle: &AppHandle<R>,
    group_id: &str,
    author: &str,
    text: Option<&str>,
) {
    let shell = handle.state::<Shell>();
    let Some(app) = shell.app.get() else { return };
    let name = app
        .engine()
        .get_group(group_id)
        .await
        .map(|group| group.name)
        .unwrap_or_default();
    notify_new_text(handle, &format!("{name} \u{2014} {author}"), text).await;
}

fn forward<R: Runtime>(handle: &AppHandle<R>, event: &EngineEvent) {
    if let Some(name) = event.name() {
        // Names only: payloads hold message text, which never goes to a log.
        tracing::debug!(event = name, "forwarding an engine event to the window");
        if let Err(error) = handle.emit_to(MAIN_WINDOW, name, event) {
            tracing::warn!(%error, event = name, "could not forward an engine event");
        }
    }
}

async fn notify_new_message<R: Runtime>(
    handle: &AppHandle<R>,
    contact_id: &str,
    text: Option<&str>,
) {
    let shell = handle.state::<Shell>();
    let Some(app) = shell.app.get() else { return };
    let chats = app.engine().list_chats().await.unwrap_or_default();
    let name = chats
        .iter()
        .find(|chat| chat.contact_id == contact_id)
        .map(|chat| chat.display_name.clone())
        .unwrap_or_default();
    notify_new_text(handle, &name, text).await;
}

/// Shows a notification for a new message from `sender` unless the window is focused or the
/// user turned notifications off; names and text only when the settings allow it and `text` is
/// given (`None` for a disappearing message).
async fn notify_new_text<R: Runtime>(handle: &AppHandle<R>, sender: &str, text: Option<&str>) {
    let focused = handle
        .get_webview_window(MAIN_WINDOW)
        .and_then(|window| window.is_focused().ok())
        .unwrap_or(false);
    if focused {
        return;
    }
    let shell = handle.state::<Shell>();
    let Some(app) = shell.app.get() else { return };
    let Ok(settings) = app.engine().get_settings().await else {
        return;
    };
    if !settings.notifications.enabled {
        return;
    }
    let preview = if settings.notifications.show_text && text.is_some() {
        NotificationPreview::NameAndText
    } else {
        NotificationPreview::Hidden
    };
    let shown = notify::new_message_text(preview, sender, text.unwrap_or_default());
    if let Err(error) = notify::show_new_message(handle, &shown) {
        tracing::warn!(%error, "could not show a notification");
    }
}

/// Recomputes the unread total (1:1 chats and groups) and shows it in the tray tooltip.
pub async fn refresh_unread<R: Runtime>(handle: &AppHandle<R>) {
    let shell = handle.state::<Shell>();
    let Some(app) = shell.app.get() else { return };
    let chats: Vec<ChatView> = app.engine().list_chats().await.unwrap_or_default();
    let groups = app.engine().list_groups().await.unwrap_or_default();
    let unread = chats.iter().map(|chat| u64::from(chat.unread)).sum::<u64>()
        + groups
            .iter()
            .map(|g| u64::from(g.unread_count))
            .sum::<u64>();
    tray::set_unread(handle, &shell.options, unread);
}
