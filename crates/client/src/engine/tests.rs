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
    let vault = Vault::open_with_store(
        &name,
        Box::new(KeyringStore::with_builder(
            keyring::mock::default_credential_builder(),
        )),
    )
    .expect("vault");
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
