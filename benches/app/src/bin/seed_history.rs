//! `seed-history`: makes profile `bench` under `$SEALPOST_DATA_DIR` with one contact and a long
//! message history (default 100,000 messages) in the real encrypted store, for the desktop-app
//! benchmark (`app-startup`, `docs/benchmarks.md` "Desktop app").
//!
//! What is real: both profiles' keys in the OS keychain (the Secret Service of the surrounding
//! D-Bus session), onboarding, the signed invite, X3DH and the first ratchet messages through an
//! in-process relay on 127.0.0.1, and one real message each way. The history itself is written
//! with `sealpost-client`'s public store API in the shapes the engine writes: incoming messages
//! through `commit_received_batch` (with the contact's real session state), outgoing ones through
//! `insert_outgoing_message` → `commit_sealed_batch` → `mark_outbox_sent`, then the peer's read
//! receipts; only the sealed bytes of those outbox rows are filler, and those rows are gone once
//! marked sent. Messages alternate in short runs (60 % incoming), carry timestamps spread over
//! the past months, and all but the last three incoming ones are read.
//!
//! Every store write is a `synchronous=FULL` transaction, so seed on tmpfs and copy the data
//! root afterwards (as `scripts/bench-app.sh` does); the bytes are the same.
//!
//! The relay's database and address are kept in `$SEALPOST_DATA_DIR/bench-relay/` so the
//! benchmark can serve the profile's mailboxes again while the app runs.
//!
//! `seed-history --check` only opens the existing profile and counts its messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use sealpost_app_bench::{BENCH_PROFILE, BenchRelayFiles, PEER_PROFILE};
use sealpost_client::engine::RelayChoice;
use sealpost_client::store::{
    ContactId, ConversationSeq, Direction, EnvelopeId, MessagePosition, ReceiptKind,
    ReceiveOutcome, Received, ReceivedContent, SealedEnvelopeBytes, SealedEnvelopeForRelay,
    SealedOutgoing, SessionStateBytes, Store, UnixMillis,
};
use sealpost_client::{
    Engine, EngineConfig, EngineEvent, ProfileDirs, ProfileName, ProfilesConfig, StoreConfig,
    Vault, open_profile_store,
};
use sealpost_relay::{Relay, RelayConfig, RelayHandle};
use tokio::sync::mpsc::UnboundedReceiver;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "seed-history",
    about = "Creates profile `bench` with a long message history under $SEALPOST_DATA_DIR"
)]
struct Args {
    /// How many history messages to write (besides the two real ones).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Delete an existing `bench` (and `bench_peer`) profile, its keychain entries and the bench
    /// relay first.
    #[arg(long)]
    force: bool,
    /// Only open the existing profile and count its messages.
    #[arg(long, conflicts_with_all = ["messages", "force"])]
    check: bool,
}

/// How long any wait for the other engine lasts.
const WAIT: Duration = Duration::from_secs(60);

/// Unread incoming messages left at the end (the chat list shows the count).
const UNREAD_AT_END: usize = 3;

/// Run lengths of the conversation; runs alternate incoming, outgoing, incoming, … so that 12 of
/// every 20 messages are incoming.
const RUNS: [u64; 10] = [2, 1, 3, 1, 1, 2, 4, 1, 2, 3];

/// Time between two history messages.
const MESSAGE_SPACING_MS: i64 = 90_000;

const WORDS: [&str; 32] = [
    "sure", "see", "you", "at", "the", "station", "tomorrow", "morning", "did", "read", "draft",
    "I", "sent", "sounds", "good", "thanks", "let's", "move", "meeting", "to", "three", "coffee",
    "later", "on", "my", "way", "running", "late", "photos", "from", "weekend", "great",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let data_root = std::env::var_os("SEALPOST_DATA_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .context(
            "SEALPOST_DATA_DIR is not set: point it at the benchmark's data root \
             (this tool never writes into your own Sealpost profiles)",
        )?;
    let files = BenchRelayFiles::under(&data_root);
    let bench = ProfileName::new(BENCH_PROFILE)?;
    let peer = ProfileName::new(PEER_PROFILE)?;

    if args.check {
        let relay = start_relay(&files, Some(files.read_address()?)).await?;
        let summary = check(&data_root, &bench).await?;
        relay.shutdown().await?;
        println!("{summary}");
        return Ok(());
    }

    for profile in [&bench, &peer] {
        let dirs = ProfileDirs::resolve(&profiles_config(&data_root), profile)?;
        if dirs.profile_dir().exists() || Vault::open(profile)?.load_database_key()?.is_some() {
            ensure!(
                args.force,
                "profile {profile} already exists (directory {} or its keychain entries); \
                 run with --force to replace it",
                dirs.profile_dir().display()
            );
            remove_profile(&dirs, profile)?;
        }
    }
    if files.dir().exists() {
        ensure!(
            args.force,
            "{} exists; run with --force",
            files.dir().display()
        );
        std::fs::remove_dir_all(files.dir())
            .with_context(|| format!("remove {}", files.dir().display()))?;
    }
    std::fs::create_dir_all(files.dir())?;

    let started = Instant::now();
    let relay = start_relay(&files, None).await?;
    files.write_address(relay.addr())?;
    let relay_url = format!("ws://{}", relay.addr());
    eprintln!(
        "seed: relay at {relay_url}, data root {}",
        data_root.display()
    );

    let (bench_engine, bench_events) = open_engine(&data_root, &bench, false).await?;
    let (peer_engine, mut peer_events) = open_engine(&data_root, &peer, false).await?;
    let remote = || RelayChoice::Remote {
        url: relay_url.clone(),
        password: None,
    };
    bench_engine.onboard("Bench", remote()).await?;
    peer_engine.onboard("Robin", remote()).await?;

    // A real invite, accepted; the inviter learns of the contact from the Hello.
    let invite = peer_engine.create_invite().await?;
    let chat = bench_engine.accept_invite(&invite.text, "").await?;
    let peer_contact_id = wait_for(WAIT, "the peer sees the new contact", || async {
        Ok(peer_engine
            .list_chats()
            .await?
            .into_iter()
            .next()
            .map(|chat| chat.contact_id))
    })
    .await?;

    // One real message each way, so both sides hold a working session.
    bench_engine
        .send_message(&chat.contact_id, "Hi Robin, it's me.")
        .await?;
    wait_for(WAIT, "the peer receives the first message", || async {
        let page = peer_engine.get_messages(&peer_contact_id, None, 10).await?;
        Ok(page.messages.iter().any(|m| !m.outgoing).then_some(()))
    })
    .await?;
    peer_engine
        .send_message(&peer_contact_id, "Hello! Got your invite.")
        .await?;
    wait_for(WAIT, "the bench profile receives the reply", || async {
        let page = bench_engine
            .get_messages(&chat.contact_id, None, 10)
            .await?;
        Ok(page.messages.iter().any(|m| !m.outgoing).then_some(()))
    })
    .await?;
    wait_for(WAIT, "the bench profile's outbox drains", || async {
        Ok(bench_engine
            .with_store(|store| store.outbox().map(|o| o.is_empty()))?
            .then_some(()))
    })
    .await?;
    // Let delivery receipts (sent 0–20 ms after a message) go out, then stop the peer for good.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while peer_events.try_recv().is_ok() {}
    peer_engine.shutdown().await;
    eprintln!(
        "seed: invite accepted and one message each way in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let contact: ContactId = chat
        .contact_id
        .parse()
        .context("the engine returned a contact id that does not parse")?;
    let seeded = Instant::now();
    let written = bench_engine.with_store(|store| seed(store, contact, args.messages))?;
    eprintln!(
        "seed: wrote {written} history messages in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    drop(bench_events);
    bench_engine.shutdown().await;

    // The peer was only needed for the handshake.
    let peer_dirs = ProfileDirs::resolve(&profiles_config(&data_root), &peer)?;
    remove_profile(&peer_dirs, &peer)?;

    // Check it the way the app will open it (memory security on, as by default).
    let summary = check(&data_root, &bench).await?;
    relay.shutdown().await?;
    println!("{summary}");
    eprintln!("seed: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn profiles_config(data_root: &Path) -> ProfilesConfig {
    ProfilesConfig {
        data_root: Some(data_root.to_path_buf()),
    }
}

fn remove_profile(dirs: &ProfileDirs, profile: &ProfileName) -> anyhow::Result<()> {
    Vault::open(profile)?
        .delete_profile_secrets()
        .with_context(|| format!("delete the keychain entries of {profile}"))?;
    if dirs.profile_dir().exists() {
        std::fs::remove_dir_all(dirs.profile_dir())
            .with_context(|| format!("remove {}", dirs.profile_dir().display()))?;
    }
    Ok(())
}

async fn start_relay(
    files: &BenchRelayFiles,
    address: Option<SocketAddr>,
) -> anyhow::Result<RelayHandle> {
    let listen = address.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    Relay::start(RelayConfig {
        listen,
        database: files.database().into(),
        ..RelayConfig::default()
    })
    .await
    .with_context(|| format!("start the bench relay on {listen}"))
}

async fn open_engine(
    data_root: &Path,
    profile: &ProfileName,
    memory_security: bool,
) -> anyhow::Result<(Engine, UnboundedReceiver<EngineEvent>)> {
    let mut config = EngineConfig::new(profile.clone());
    config.profiles = profiles_config(data_root);
    config.delivery_receipt_delay = (Duration::ZERO, Duration::from_millis(20));
    config.store = StoreConfig {
        memory_security,
        ..StoreConfig::default()
    };
    Engine::open(config).await.with_context(|| {
        format!(
            "open profile {profile} (needs an unlocked Secret Service on the session bus; \
             run under scripts/with-keyring.sh)"
        )
    })
}

/// Polls `probe` every 25 ms until it yields `Some`, for at most `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The text of history message `index`: 3 to 27 words, different from its neighbours.
fn body(index: u64) -> String {
    let words = 3 + (index * 7) % 25;
    let mut text = String::new();
    for word in 0..words {
        if word > 0 {
            text.push(' ');
        }
        let pick = (index.wrapping_mul(31) + word * 17) % WORDS.len() as u64;
        text.push_str(WORDS.get(pick as usize).copied().unwrap_or("ok"));
    }
    text
}

/// Writes `count` history messages into `store` for `contact` (see the module docs).
/// Returns how many were written.
fn seed(store: &mut Store, contact: ContactId, count: u64) -> anyhow::Result<u64> {
    let session: SessionStateBytes = store
        .session_state(contact)?
        .context("the contact has no session after the handshake")?;
    let peer_address = store
        .peer_addresses(contact)?
        .into_iter()
        .next()
        .context("the contact has no relay address")?;
    let mut last_seq = store
        .messages_page(contact, None, 1)?
        .last()
        .map(|m| m.seq.get())
        .unwrap_or(0);
    let now = UnixMillis::now().0;
    let first_at = now - MESSAGE_SPACING_MS * i64::try_from(count)?;
    let at = |index: u64| UnixMillis(first_at + MESSAGE_SPACING_MS * index as i64);

    let mut pending: Vec<Received> = Vec::new();
    let mut incoming_seqs: Vec<u64> = Vec::new();
    let mut index = 0u64;
    let mut run = 0usize;
    let progress = Instant::now();
    while index < count {
        let length = RUNS[run % RUNS.len()].min(count - index);
        let incoming = run.is_multiple_of(2);
        run += 1;
        if incoming {
            for offset in 0..length {
                last_seq += 1;
                let sent_at = at(index + offset);
                pending.push(Received {
                    contact,
                    envelope_id: EnvelopeId::random()?,
                    session_state: session.clone(),
                    content: ReceivedContent::Message {
                        seq: ConversationSeq::new(last_seq).context("seq 0")?,
                        body: body(index + offset),
                        sent_at,
                    },
                    received_at: UnixMillis(sent_at.0 + 2_000),
                });
                incoming_seqs.push(last_seq);
            }
        } else {
            // Our reply comes after what we received: commit it first.
            commit_received(store, &mut pending)?;
            let mut sealed = Vec::new();
            let mut seqs = Vec::new();
            for offset in 0..length {
                let message = store.insert_outgoing_message(
                    contact,
                    &body(index + offset),
                    at(index + offset),
                )?;
                last_seq = message.seq.get();
                seqs.push(message.seq);
                sealed.push(SealedOutgoing {
                    contact,
                    message: Some(message.id),
                    session_state: session.clone(),
                    envelopes: vec![SealedEnvelopeForRelay {
                        relay_url: peer_address.relay_url.clone(),
                        send_id: peer_address.send_id,
                        sealed: SealedEnvelopeBytes::new(vec![0x5e; 64]),
                    }],
                    now: at(index + offset),
                });
            }
            for result in store.commit_sealed_batch(&sealed)? {
                for item in result? {
                    store.mark_outbox_sent(item.id)?;
                }
            }
            // The peer reads them (the receipt travels with its next messages).
            let read_at = at(index + length);
            pending.push(Received {
                contact,
                envelope_id: EnvelopeId::random()?,
                session_state: session.clone(),
                content: ReceivedContent::Receipt {
                    kind: ReceiptKind::Read,
                    seqs,
                },
                received_at: read_at,
            });
        }
        let before = index;
        index += length;
        if before / 10_000 != index / 10_000 {
            eprintln!(
                "seed: {index} of {count} ({:.1} s)",
                progress.elapsed().as_secs_f64()
            );
        }
    }
    commit_received(store, &mut pending)?;

    // Everything read except the newest few incoming messages.
    if let Some(&up_to) = incoming_seqs
        .len()
        .checked_sub(UNREAD_AT_END + 1)
        .and_then(|i| incoming_seqs.get(i))
    {
        store.mark_read(
            contact,
            MessagePosition {
                seq: ConversationSeq::new(up_to).context("seq 0")?,
                direction: Direction::Incoming,
            },
        )?;
    }
    Ok(index)
}

fn commit_received(store: &mut Store, pending: &mut Vec<Received>) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    for outcome in store.commit_received_batch(pending)? {
        match outcome? {
            ReceiveOutcome::Stored(_) | ReceiveOutcome::ReceiptApplied { .. } => {}
            other => bail!("unexpected outcome while seeding: {other:?}"),
        }
    }
    pending.clear();
    Ok(())
}

/// Opens the profile as the app would and counts its messages by paging with `get_messages`.
async fn check(data_root: &Path, profile: &ProfileName) -> anyhow::Result<String> {
    // What the engine's start costs, step by step, on the bare store.
    let dirs = ProfileDirs::resolve(&profiles_config(data_root), profile)?;
    let vault = Vault::open(profile)?;
    let step = Instant::now();
    let store = open_profile_store(&dirs, &vault, &StoreConfig::default())?;
    let store_open_time = step.elapsed();
    let step = Instant::now();
    let awaiting = store.messages_awaiting_seal()?.len();
    let awaiting_time = step.elapsed();
    let step = Instant::now();
    store.chat_list()?;
    let chat_list_time = step.elapsed();
    store.close()?;

    let opened = Instant::now();
    let (engine, _events) = open_engine(data_root, profile, true).await?;
    let open_time = opened.elapsed();
    let listed = Instant::now();
    let chats = engine.list_chats().await?;
    let list_time = listed.elapsed();
    ensure!(chats.len() == 1, "expected one chat, found {}", chats.len());
    let Some(chat) = chats.first() else {
        bail!("no chat");
    };
    let mut total = 0usize;
    let mut outgoing = 0usize;
    let mut before = None;
    let mut first_page_time = None;
    loop {
        let page_started = Instant::now();
        let page = engine.get_messages(&chat.contact_id, before, 500).await?;
        first_page_time.get_or_insert(page_started.elapsed());
        total += page.messages.len();
        outgoing += page.messages.iter().filter(|m| m.outgoing).count();
        let Some(oldest) = page.messages.first() else {
            break;
        };
        before = Some(oldest.seq);
        if !page.has_more {
            break;
        }
    }
    engine.shutdown().await;
    Ok(format!(
        "profile {profile}: 1 chat ({}), {total} messages ({outgoing} outgoing, {} incoming), \
         {} unread; store open {:.0} ms, messages_awaiting_seal {:.0} ms ({awaiting} found), \
         store chat_list {:.1} ms; engine open {:.0} ms, list_chats {:.1} ms, first page of 500 \
         {:.1} ms",
        chat.display_name,
        total - outgoing,
        chat.unread,
        store_open_time.as_secs_f64() * 1e3,
        awaiting_time.as_secs_f64() * 1e3,
        chat_list_time.as_secs_f64() * 1e3,
        open_time.as_secs_f64() * 1e3,
        list_time.as_secs_f64() * 1e3,
        first_page_time.unwrap_or_default().as_secs_f64() * 1e3,
    ))
}
