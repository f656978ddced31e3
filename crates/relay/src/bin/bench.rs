//! `sealpost-relay-bench`: load benchmark of a relay running in its own process.
//!
//! Starts the `sealpost-relay` binary (the one built beside this one, or `--relay-bin`) on a
//! fresh database in a temporary directory (or on `--database postgres://…`), then drives it
//! over loopback from this process:
//!
//! * `throughput`: N senders pipeline SENDs as fast as the relay answers; M subscribers hold K
//!   mailboxes each and ACK every delivery (unsigned on the subscribing connection, protocol
//!   version 4; `--signed-acks` signs every ACK as version 3 did). Reports envelopes/s durably stored (SEND answered
//!   `Ok`) and delivered (MESSAGE received), and latency percentiles.
//! * `latency`: the same, but senders are paced to a fixed total rate (moderate load).
//! * `idle`: opens many connections that only read HELLO and measures the relay's RSS.
//! * `drain`: stores a backlog in one mailbox (`--backlog`, default 10 000), then one subscriber
//!   subscribes and ACKs as it reads; reports the time from SUBSCRIBE to the last ACK's `Ok`.
//!
//! Mailboxes are secured to a sender key, as the app does after first contact, so every SEND
//! carries the sender authentication an app's SEND carries (`--unsecured` for the old shape).
//! Every load run reports the relay process's CPU time per delivered envelope (utime + stime of
//! the relay over the measured interval, from `/proc/PID/stat`), which depends much less on
//! what else runs on the machine than envelopes per second do.
//!
//! Timing: send→OK starts just before the sender encodes the SEND frame (the start instant is
//! also written into the envelope) and stops when the sender's reader has decoded the `Ok`
//! reply. Send→deliver starts at the same instant and stops when the subscriber has decoded the
//! MESSAGE frame. Both include client-side encode/decode and the loopback round trips; the
//! clients share the machine's cores with the relay. Not run in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use sealpost_wire::{
    ClientFrame, MessageId, Nonce, OwnerCommand, PROTOCOL_VERSION, ReceiveId, Request, Response,
    SendId, SendSecret, create_signature_input, decode_relay_frame, encode_client_frame,
    owner_signature_input, public_key, requests, sign,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Load benchmark for sealpost-relay.
#[derive(Debug, Parser, Clone)]
struct Args {
    /// What to run: throughput, latency, drain, idle, idle-tcp (diagnostic) or all.
    #[arg(long, default_value = "all")]
    mode: String,
    /// Path of the relay binary (default: `sealpost-relay` beside this executable).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Sender connections.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// Subscriber connections.
    #[arg(long, default_value_t = 4)]
    subscribers: usize,
    /// Mailboxes per subscriber.
    #[arg(long, default_value_t = 8)]
    mailboxes_per_subscriber: usize,
    /// SENDs each sender keeps in flight (pipelining).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Envelope size in bytes.
    #[arg(long, default_value_t = 1024)]
    envelope_bytes: usize,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Total SENDs per second in latency mode.
    #[arg(long, default_value_t = 2000)]
    latency_rate: u64,
    /// Log filter passed to the relay process.
    #[arg(long, default_value = "warn")]
    relay_log: String,
    /// Extra `key = value` lines for the relay's `[limits]` table (`;` separates lines).
    #[arg(long, default_value = "")]
    relay_limits: String,
    /// Store of the relay under test: a postgres:// URL of an empty database (each run of
    /// `--mode all` then shares it); default a fresh SQLite file per run.
    #[arg(long)]
    database: Option<String>,
    /// Connections for the idle-memory run.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Leave the mailboxes unsecured: SENDs carry no sender authentication.
    #[arg(long)]
    unsecured: bool,
    /// Envelopes stored before the subscriber of the drain run subscribes.
    #[arg(long, default_value_t = 10_000)]
    backlog: usize,
    /// Sign every ACK, as before protocol version 4 (by default a subscriber's ACKs on its
    /// subscribing connection carry no signature).
    #[arg(long)]
    signed_acks: bool,
}

struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_relay(args: &Args) -> Result<RelayProcess> {
    let binary = match &args.relay_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("sealpost-relay"),
    };
    static RUN: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sealpost-relay-bench-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\n[limits]\nmailbox_max_envelopes = 10000000\n\
         mailbox_max_bytes = 100000000000\nmax_connections = 30000\n\
         rate_per_connection = {{ per_second = 10000000, burst = 10000000 }}\n\
         rate_per_ip = {{ per_second = 10000000, burst = 10000000 }}\n\
         create_rate_per_ip = {{ per_second = 100000, burst = 100000 }}\n\
         connect_rate_per_ip = {{ per_second = 100000, burst = 100000 }}\n",
        args.database
            .clone()
            .unwrap_or_else(|| dir.join("relay.db").display().to_string())
    ) + &args.relay_limits.replace(';', "\n")
        + "\n";
    let config_path = dir.join("relay.toml");
    std::fs::write(&config_path, config)?;
    let mut child = Command::new(&binary)
        .arg("--config")
        .arg(&config_path)
        .arg("--log")
        .arg(&args.relay_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .context("listening line")?
        .parse()?;
    Ok(RelayProcess { child, addr, dir })
}

async fn connect(addr: SocketAddr) -> Result<(Ws, Nonce)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                let frame = decode_relay_frame(&bytes)?;
                if let Response::Hello { nonce, .. } = frame.body {
                    return Ok((ws, nonce));
                }
                bail!("expected Hello");
            }
            Some(Ok(_)) => continue,
            _ => bail!("closed before Hello"),
        }
    }
}

fn frame(id: u64, body: Request) -> Message {
    let bytes = encode_client_frame(&ClientFrame {
        v: PROTOCOL_VERSION,
        id,
        body,
    })
    .unwrap();
    Message::Binary(bytes.into())
}

async fn reply(ws: &mut Ws) -> Result<Response> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                let frame = decode_relay_frame(&bytes)?;
                if frame.id != 0 {
                    return Ok(frame.body);
                }
            }
            Some(Ok(_)) => continue,
            _ => bail!("closed"),
        }
    }
}

#[derive(Clone)]
struct BenchMailbox {
    auth: SigningKey,
    receive_id: ReceiveId,
    send_id: SendId,
    secret: [u8; 32],
    /// The key the mailbox is secured to; `None` with `--unsecured`.
    sender: Option<SigningKey>,
}

fn random_key() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

async fn create_mailboxes(
    addr: SocketAddr,
    count: usize,
    secured: bool,
) -> Result<Vec<BenchMailbox>> {
    let (mut ws, nonce) = connect(addr).await?;
    let mut mailboxes = Vec::with_capacity(count);
    for index in 0..count {
        let auth = random_key()?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("{e}"))?;
        let auth_key = public_key(&auth);
        let request = Request::Create {
            auth_key,
            send_secret: SendSecret::new(secret),
            password: None,
            signature: sign(&auth, &create_signature_input(&nonce, &auth_key)),
        };
        ws.send(frame(2 * index as u64 + 1, request)).await?;
        let (receive_id, send_id) = match reply(&mut ws).await? {
            Response::Created {
                receive_id,
                send_id,
            } => (receive_id, send_id),
            other => bail!("create failed: {other:?}"),
        };
        let sender = if secured {
            let sender = random_key()?;
            let request = requests::secure(&nonce, &auth, receive_id, public_key(&sender));
            ws.send(frame(2 * index as u64 + 2, request)).await?;
            match reply(&mut ws).await? {
                Response::Ok {} => Some(sender),
                other => bail!("secure failed: {other:?}"),
            }
        } else {
            None
        };
        mailboxes.push(BenchMailbox {
            auth,
            receive_id,
            send_id,
            secret,
            sender,
        });
    }
    Ok(mailboxes)
}

/// One SENDER-SESSION per secured mailbox on this connection (protocol version 3): after it,
/// SENDs to those mailboxes carry no signature.
async fn open_sender_sessions(
    ws: &mut Ws,
    nonce: &Nonce,
    mailboxes: &[BenchMailbox],
) -> Result<()> {
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let Some(sender) = &mailbox.sender else {
            continue;
        };
        let request = requests::sender_session(
            nonce,
            mailbox.send_id,
            SendSecret::new(mailbox.secret),
            sender,
        );
        ws.send(frame(u64::MAX - index as u64, request)).await?;
        match reply(ws).await? {
            Response::Ok {} => {}
            other => bail!("sender session refused: {other:?}"),
        }
    }
    Ok(())
}

#[derive(Default)]
struct Stats {
    stored: AtomicU64,
    delivered: AtomicU64,
    send_to_ok_us: Mutex<Vec<u64>>,
    send_to_deliver_us: Mutex<Vec<u64>>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// An ACK of `message_ids` on the connection that subscribes the mailbox: unsigned (protocol
/// version 4), or signed over `nonce` with `--signed-acks`.
fn ack_request(
    signed: bool,
    nonce: &Nonce,
    mailbox: &BenchMailbox,
    message_ids: Vec<MessageId>,
) -> Request {
    if signed {
        requests::ack(nonce, &mailbox.auth, mailbox.receive_id, message_ids)
    } else {
        requests::ack_subscribed(mailbox.receive_id, message_ids)
    }
}

async fn subscriber(
    addr: SocketAddr,
    mailboxes: Vec<BenchMailbox>,
    signed_acks: bool,
    epoch: Instant,
    stats: Arc<Stats>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let (mut ws, nonce) = connect(addr).await?;
    let by_id: HashMap<ReceiveId, BenchMailbox> = mailboxes
        .iter()
        .map(|m| (m.receive_id, m.clone()))
        .collect();
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let signature = sign(
            &mailbox.auth,
            &owner_signature_input(&nonce, OwnerCommand::Subscribe, &mailbox.receive_id),
        );
        let request = Request::Subscribe {
            receive_id: mailbox.receive_id,
            signature,
        };
        ws.send(frame(index as u64 + 1, request)).await?;
    }
    let mut next_id = 1_000_000u64;
    // Delivered ids waiting for their ACK: one ACK per mailbox covers all of them (protocol
    // version 2), sent once no further frame is ready on the socket.
    let mut unacked: HashMap<ReceiveId, Vec<MessageId>> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let ready = if unacked.is_empty() {
            match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Ok(next) => Some(next),
                Err(_) => continue,
            }
        } else {
            futures_util::FutureExt::now_or_never(ws.next())
        };
        let Some(next) = ready else {
            for (receive_id, message_ids) in unacked.drain() {
                let request = ack_request(signed_acks, &nonce, &by_id[&receive_id], message_ids);
                next_id += 1;
                ws.feed(frame(next_id, request)).await?;
            }
            ws.flush().await?;
            continue;
        };
        let message = match next {
            Some(Ok(message)) => message,
            _ => break,
        };
        let Message::Binary(bytes) = message else {
            continue;
        };
        let frame_in = decode_relay_frame(&bytes)?;
        if let Response::Message {
            receive_id,
            message_id,
            envelope,
            ..
        } = frame_in.body
        {
            let now = epoch.elapsed().as_micros() as u64;
            let sent = u64::from_be_bytes(envelope[..8].try_into()?);
            if measuring.load(Ordering::Relaxed) {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                stats
                    .send_to_deliver_us
                    .lock()
                    .unwrap()
                    .push(now.saturating_sub(sent));
            }
            unacked.entry(receive_id).or_default().push(message_id);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn sender(
    addr: SocketAddr,
    mailboxes: Vec<BenchMailbox>,
    args: Args,
    pace: Option<Duration>,
    epoch: Instant,
    stats: Arc<Stats>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let (mut ws, nonce) = connect(addr).await?;
    open_sender_sessions(&mut ws, &nonce, &mailboxes).await?;
    let (mut sink, mut source) = ws.split();
    let permits = Arc::new(tokio::sync::Semaphore::new(args.in_flight));
    let started: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let reader = {
        let permits = permits.clone();
        let started = started.clone();
        let stats = stats.clone();
        let measuring = measuring.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = source.next().await {
                let Message::Binary(bytes) = message else {
                    continue;
                };
                let Ok(frame_in) = decode_relay_frame(&bytes) else {
                    continue;
                };
                let now = epoch.elapsed().as_micros() as u64;
                let start = started.lock().unwrap().remove(&frame_in.id);
                if let (Response::Ok {}, Some(start)) = (&frame_in.body, start) {
                    if measuring.load(Ordering::Relaxed) {
                        stats.stored.fetch_add(1, Ordering::Relaxed);
                        stats.send_to_ok_us.lock().unwrap().push(now - start);
                    }
                } else if !matches!(frame_in.body, Response::Ok {}) {
                    eprintln!("send failed: {:?}", frame_in.body);
                }
                permits.add_permits(1);
            }
        })
    };
    let mut id = 0u64;
    let mut next_at = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(pace) = pace {
            next_at += pace;
            tokio::time::sleep_until(next_at).await;
        }
        let permit = permits.acquire().await?;
        permit.forget();
        id += 1;
        let mailbox = &mailboxes[(id as usize) % mailboxes.len()];
        let start = epoch.elapsed().as_micros() as u64;
        let mut envelope = vec![0xa5u8; args.envelope_bytes.max(8)];
        envelope[..8].copy_from_slice(&start.to_be_bytes());
        let request = requests::send(mailbox.send_id, SendSecret::new(mailbox.secret), envelope);
        started.lock().unwrap().insert(id, start);
        sink.send(frame(id, request)).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();
    Ok(())
}

async fn load_run(args: &Args, paced: bool) -> Result<()> {
    let relay = start_relay(args)?;
    let total = args.subscribers * args.mailboxes_per_subscriber;
    let mailboxes = create_mailboxes(relay.addr, total, !args.unsecured).await?;
    let stats = Arc::new(Stats::default());
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for chunk in mailboxes.chunks(args.mailboxes_per_subscriber) {
        tasks.push(tokio::spawn(subscriber(
            relay.addr,
            chunk.to_vec(),
            args.signed_acks,
            epoch,
            stats.clone(),
            measuring.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pace = paced
        .then(|| Duration::from_secs_f64(args.senders as f64 / args.latency_rate.max(1) as f64));
    for _ in 0..args.senders {
        tasks.push(tokio::spawn(sender(
            relay.addr,
            mailboxes.clone(),
            args.clone(),
            pace,
            epoch,
            stats.clone(),
            measuring.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_before = process_cpu_ticks(relay.child.id());
    let measured_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = measured_from.elapsed().as_secs_f64();
    let cpu_after = process_cpu_ticks(relay.child.id());
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        if let Err(error) = task.await? {
            eprintln!("task error: {error:#}");
        }
    }
    let mut ok = stats.send_to_ok_us.lock().unwrap().clone();
    let mut deliver = stats.send_to_deliver_us.lock().unwrap().clone();
    ok.sort_unstable();
    deliver.sort_unstable();
    let rss = rss_kib(relay.child.id());
    println!(
        "{}: senders={} in_flight={} subscribers={} mailboxes={} envelope={}B{}",
        if paced { "latency" } else { "throughput" },
        args.senders,
        args.in_flight,
        args.subscribers,
        total,
        args.envelope_bytes,
        if paced {
            format!(" target_rate={}/s", args.latency_rate)
        } else {
            String::new()
        },
    );
    println!(
        "  stored (SEND→Ok, durable) {:.0} env/s; delivered {:.0} env/s over {:.1} s",
        stats.stored.load(Ordering::Relaxed) as f64 / elapsed,
        stats.delivered.load(Ordering::Relaxed) as f64 / elapsed,
        elapsed
    );
    println!(
        "  send→OK      p50 {:.2} ms  p99 {:.2} ms  (n={})",
        percentile(&ok, 0.50) as f64 / 1000.0,
        percentile(&ok, 0.99) as f64 / 1000.0,
        ok.len()
    );
    println!(
        "  send→deliver p50 {:.2} ms  p99 {:.2} ms  (n={})",
        percentile(&deliver, 0.50) as f64 / 1000.0,
        percentile(&deliver, 0.99) as f64 / 1000.0,
        deliver.len()
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let delivered = stats.delivered.load(Ordering::Relaxed).max(1);
        println!(
            "  relay CPU {:.0}% of one core, {:.1} µs per delivered envelope; relay RSS {} KiB",
            (after - before) as f64 / 100.0 / elapsed * 100.0,
            (after - before) as f64 * 10_000.0 / delivered as f64,
            rss.unwrap_or(0)
        );
    }
    println!("  load: {}", load_average());
    Ok(())
}

/// The machine's load average, as `uptime` shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|line| {
            line.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime in clock ticks (assumes 100 Hz, the Linux default).
fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Stores `--backlog` envelopes in one mailbox, then times one subscriber draining it: from
/// SUBSCRIBE until the `Ok` of the ACK that covers the last envelope.
async fn drain_run(args: &Args) -> Result<()> {
    let relay = start_relay(args)?;
    let mailbox = create_mailboxes(relay.addr, 1, !args.unsecured)
        .await?
        .remove(0);
    let (mut ws, nonce) = connect(relay.addr).await?;
    open_sender_sessions(&mut ws, &nonce, std::slice::from_ref(&mailbox)).await?;
    let (mut sink, mut source) = ws.split();
    let backlog = args.backlog;
    let fill_started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut answered = 0usize;
        while answered < backlog {
            match source.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    let frame_in = decode_relay_frame(&bytes)?;
                    if frame_in.id == 0 {
                        continue;
                    }
                    if !matches!(frame_in.body, Response::Ok {}) {
                        bail!("send failed: {:?}", frame_in.body);
                    }
                    answered += 1;
                }
                Some(Ok(_)) => continue,
                _ => bail!("closed while filling"),
            }
        }
        Ok(source)
    });
    for index in 0..backlog {
        let mut envelope = vec![0xa5u8; args.envelope_bytes.max(8)];
        envelope[..8].copy_from_slice(&(index as u64).to_be_bytes());
        let request = requests::send(mailbox.send_id, SendSecret::new(mailbox.secret), envelope);
        sink.feed(frame(index as u64 + 1, request)).await?;
        if index % 64 == 63 {
            sink.flush().await?;
        }
    }
    sink.flush().await?;
    let _source = reader.await??;
    let filled_in = fill_started.elapsed();
    let (mut ws, nonce) = connect(relay.addr).await?;
    let cpu_before = process_cpu_ticks(relay.child.id());
    let started = Instant::now();
    ws.send(frame(
        1,
        requests::subscribe(&nonce, &mailbox.auth, mailbox.receive_id),
    ))
    .await?;
    let mut delivered = 0usize;
    let mut acked = 0usize;
    let mut acks_answered = 0usize;
    let mut acks_sent = 0usize;
    let mut unacked: Vec<MessageId> = Vec::new();
    let mut next_id = 1u64;
    while acked < backlog || acks_answered < acks_sent {
        let ready = if unacked.is_empty() {
            Some(ws.next().await)
        } else {
            futures_util::FutureExt::now_or_never(ws.next())
        };
        let Some(next) = ready else {
            acked += unacked.len();
            next_id += 1;
            let request = ack_request(
                args.signed_acks,
                &nonce,
                &mailbox,
                std::mem::take(&mut unacked),
            );
            ws.send(frame(next_id, request)).await?;
            acks_sent += 1;
            continue;
        };
        let Some(Ok(Message::Binary(bytes))) = next else {
            match next {
                Some(Ok(_)) => continue,
                _ => bail!("closed while draining"),
            }
        };
        let frame_in = decode_relay_frame(&bytes)?;
        match frame_in.body {
            Response::Message { message_id, .. } => {
                delivered += 1;
                unacked.push(message_id);
            }
            Response::Ok {} if frame_in.id > 1 => acks_answered += 1,
            Response::Ok {} => {}
            other => bail!("drain: unexpected {other:?}"),
        }
    }
    let took = started.elapsed();
    let cpu_after = process_cpu_ticks(relay.child.id());
    println!(
        "drain: {} envelopes of {} B stored in {:.2} s; drained (SUBSCRIBE → last ACK Ok) in \
         {:.2} s, {:.0} env/s, {} ACK frames; window {}",
        delivered,
        args.envelope_bytes,
        filled_in.as_secs_f64(),
        took.as_secs_f64(),
        delivered as f64 / took.as_secs_f64(),
        acks_sent,
        hello_window(relay.addr).await.unwrap_or(0),
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        println!(
            "  relay CPU during the drain {:.2} s ({:.1} µs per envelope)",
            (after - before) as f64 / 100.0,
            (after - before) as f64 * 10_000.0 / delivered.max(1) as f64
        );
    }
    println!("  load: {}", load_average());
    Ok(())
}

/// The push window a relay announces in HELLO.
async fn hello_window(addr: SocketAddr) -> Result<u16> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(bytes) = message
            && let Response::Hello { window, .. } = decode_relay_frame(&bytes)?.body
        {
            return Ok(window);
        }
    }
    bail!("no HELLO")
}

async fn idle_run(args: &Args) -> Result<()> {
    let relay = start_relay(args)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_kib(relay.child.id()).unwrap_or(0);
    if args.mode == "idle-tcp" {
        // Diagnostic: plain TCP connections that never start the WebSocket handshake.
        let mut streams = Vec::with_capacity(args.idle_connections);
        for _ in 0..args.idle_connections {
            streams.push(TcpStream::connect(relay.addr).await?);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = rss_kib(relay.child.id()).unwrap_or(0);
        println!(
            "idle-tcp: {} TCP connections before any handshake; relay RSS {} KiB before, {} KiB \
             with them ({:.2} KiB per connection)",
            streams.len(),
            baseline,
            loaded,
            (loaded.saturating_sub(baseline)) as f64 / streams.len().max(1) as f64
        );
        return Ok(());
    }
    let mut connections = Vec::with_capacity(args.idle_connections);
    let started = Instant::now();
    for _ in 0..args.idle_connections {
        match connect(relay.addr).await {
            Ok((ws, _)) => connections.push(ws),
            Err(error) => {
                eprintln!(
                    "connection {} failed: {error:#} (raise `ulimit -n`?)",
                    connections.len()
                );
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = rss_kib(relay.child.id()).unwrap_or(0);
    println!(
        "idle: {} connections open (in {:.1} s); relay RSS {} KiB before, {} KiB with them \
         ({:.1} MB total, {:.2} KiB per connection)",
        connections.len(),
        started.elapsed().as_secs_f64(),
        baseline,
        loaded,
        loaded as f64 / 1024.0,
        (loaded.saturating_sub(baseline)) as f64 / connections.len().max(1) as f64
    );
    drop(connections);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.mode.as_str() {
        "throughput" => load_run(&args, false).await?,
        "latency" => load_run(&args, true).await?,
        "idle" | "idle-tcp" => idle_run(&args).await?,
        "drain" => drain_run(&args).await?,
        "all" => {
            load_run(&args, false).await?;
            load_run(&args, true).await?;
            drain_run(&args).await?;
            idle_run(&args).await?;
        }
        other => bail!("unknown mode {other}"),
    }
    let _ = MessageId(0);
    Ok(())
}
