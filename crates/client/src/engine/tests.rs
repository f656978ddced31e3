//! Engine tests that need an open engine but neither a relay nor the OS keychain (the keyring
//! mock stands in for it): where store and crypto work runs (`docs/engine.md` § Threads).

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex as StdMutex};
use std::thread;
use std::time::Duration;

use super::state::{Inner, lock};
use super::{Engine, EngineConfig, RelayChoice};
use crate::profile::{ProfileName, ProfilesConfig};
use crate::vault::{KeyringStore, Vault};

/// How long the thread holding the store lock waits for the other task before it gives up and
/// lets go (only reached when the test fails: the engine blocked the runtime).
const GIVE_UP: Duration = Duration::from_secs(5);

/// Opens an onboarded engine on a current-thread runtime (the engine's tasks and the test's share
/// its one thread). The relay URL is never dialled: nothing here makes a mailbox.
fn open(runtime: &tokio::runtime::Runtime, root: &std::path::Path) -> Engine {
    let name = ProfileName::new("threads").expect("name");
    let vault = Vault::open_with_store(&name, Box::new(KeyringStore::in_memory())).expect("vault");
    let mut config = EngineConfig::new(name);
    config.profiles = ProfilesConfig {
        data_root: Some(root.to_path_buf()),
    };
    config.vault = Some(vault);
    runtime.block_on(async {
        let (engine, events) = Engine::open(config).await.expect("open");
        drop(events);
        engine
            .onboard(
                "Ann",
                RelayChoice::Remote {
                    url: "ws://127.0.0.1:9".into(),
                    password: None,
                },
            )
            .await
            .expect("onboard");
        engine
    })
}

/// Holds the store lock on a plain thread and, meanwhile, starts `call` on the runtime with
/// another task queued behind it. Returns whether that other task ran while the lock was still
/// held, i.e. while `call` waited for the store: it cannot when `call` waits on the runtime's
/// only thread.
fn other_task_ran_while_the_store_was_held<Fut>(
    runtime: &tokio::runtime::Runtime,
    inner: &Arc<Inner>,
    call: Fut,
) -> bool
where
    Fut: Future,
{
    let (locked_tx, locked_rx) = std_mpsc::channel::<()>();
    let (ran_tx, ran_rx) = std_mpsc::channel::<()>();
    let held = Arc::clone(inner);
    let holder = thread::spawn(move || {
        let store = lock(&held.store);
        let _ = locked_tx.send(());
        let ran = ran_rx.recv_timeout(GIVE_UP).is_ok();
        drop(store);
        ran
    });
    locked_rx.recv().expect("the holder took the lock");
    let ran_tx = StdMutex::new(Some(ran_tx));
    runtime.block_on(async {
        tokio::spawn(async move {
            if let Some(tx) = ran_tx.lock().ok().and_then(|mut tx| tx.take()) {
                let _ = tx.send(());
            }
        });
        // Polled first: it reaches the store before the task above runs.
        let _ = call.await;
    });
    holder.join().expect("holder")
}

#[test]
fn commands_wait_for_the_store_off_the_runtime_thread() {
    let root = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = open(&runtime, root.path());
    let inner = Arc::clone(&engine.inner);
    let contact = "00000000000000000000000000000001";
    assert!(
        other_task_ran_while_the_store_was_held(
            &runtime,
            &inner,
            engine.send_message(contact, "hi")
        ),
        "send_message"
    );
    assert!(
        other_task_ran_while_the_store_was_held(&runtime, &inner, engine.mark_read(contact, 1)),
        "mark_read"
    );
    assert!(
        other_task_ran_while_the_store_was_held(&runtime, &inner, engine.list_chats()),
        "list_chats"
    );
    assert!(
        other_task_ran_while_the_store_was_held(
            &runtime,
            &inner,
            engine.get_messages(contact, None, 50)
        ),
        "get_messages"
    );
    assert!(
        other_task_ran_while_the_store_was_held(&runtime, &inner, engine.refresh_signed_prekey()),
        "refresh_signed_prekey"
    );
    assert!(
        other_task_ran_while_the_store_was_held(&runtime, &inner, engine.get_settings()),
        "get_settings"
    );
    runtime.block_on(engine.shutdown());
}

/// The engine's modules in layer order (`docs/engine.md` § Module map); a module may use only
/// the ones before it.
const LAYERS: &[&str] = &[
    "error",
    "sequence",
    "views",
    "receive_step",
    "state",
    "settings",
    "seal",
    "envelope",
    "receipts",
    "prekeys",
    "secure",
    "restart",
    "groups",
    "first_contact",
    "receive_run",
    "inbound",
    "mailboxes",
    "conversations",
    "search",
    "disappearing",
    "invites",
    "contacts",
    "outbox",
    "attachments",
    "profile",
    "backup",
    "lifecycle",
];

/// No engine module names (`super::<module>::…`, in code) a module of its own or a higher layer,
/// so the modules cannot form an import cycle. Every module file is in [`LAYERS`]. (Calls of
/// `Inner`/`Engine` methods defined in another module are not seen here; `docs/engine.md`
/// § Module map states the same rule for them.)
#[test]
fn engine_modules_use_only_lower_layers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("engine dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        if name == "mod" || name == "tests" {
            continue;
        }
        let position = LAYERS
            .iter()
            .position(|layer| *layer == name)
            .unwrap_or_else(|| panic!("engine/{name}.rs is not in LAYERS (docs/engine.md)"));
        let source = std::fs::read_to_string(&path).expect("source");
        // Code only: a doc link to a higher module is no dependency.
        let code: String = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for used in code.split("super::").skip(1) {
            let module: String = used
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !used[module.len()..].starts_with("::") {
                continue;
            }
            if let Some(used_at) = LAYERS.iter().position(|layer| *layer == module) {
                assert!(
                    used_at < position,
                    "engine/{name}.rs uses super::{module}, which is not below it"
                );
            }
        }
        seen.push(name);
    }
    assert_eq!(
        seen.len(),
        LAYERS.len(),
        "every layer has its file: {seen:?}"
    );
}
