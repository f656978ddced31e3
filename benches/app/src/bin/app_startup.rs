//! `app-startup`: cold start to interactive UI and idle memory of the Sealpost app against a bare
//! Tauri app (issue 5; `docs/benchmarks.md` "Desktop app").
//!
//! For each of `--runs` rounds it launches both apps one after the other (which one goes first
//! alternates every round), each through a fresh `tauri-driver` (and so a fresh
//! `WebKitWebDriver`) started by this process in its own process group:
//!
//! 1. **Start to interactive**: the clock starts just before the WebDriver new-session request
//!    (which makes WebKitWebDriver launch the app) and stops when a `find elements` for the app's
//!    selector first returns an element (polled every 10 ms; each poll is a WebDriver round trip
//!    of a few ms). Sealpost: a chat row inside the chat list, which exists only after the UI
//!    has called `list_chats` on the 100k-message profile and rendered it; the bare app: its
//!    `<h1 id="hello">`.
//! 2. **Launch to window** (process view): the app's process start time from
//!    `/proc/PID/stat` (10 ms ticks), placed on the same clock through `/proc/uptime` read at
//!    the start; reported as process start → session ready (the webview exists and WebDriver is
//!    attached) and process start → interactive.
//! 3. **Idle memory**: after `--idle-secs` (default 10) of doing nothing, the sum of `Pss` from
//!    `/proc/PID/smaps_rollup` over the app process and all its descendants (WebKitWebProcess,
//!    WebKitNetworkProcess, …). The drivers are not counted.
//! 4. **The page's milestones**: then the page's own clock is read (Navigation Timing, paint
//!    timing and the UI's `performance` marks, `ui/src/main.tsx`) and placed on the launch clock
//!    through `performance.timeOrigin`, to show where between the page's request and the
//!    selector the time goes.
//!
//! Then the session is closed (which closes the app), the process group is ended and every pid
//! seen in the app's tree is waited for (and killed by pid after 10 s), so no run sees the last
//! one's processes. One extra warm-up launch per app comes first and is not counted ("cold"
//! means a fresh process and fresh driver, with the OS file cache warm).
//!
//! If `$SEALPOST_DATA_DIR/bench-relay/address` exists (written by `seed-history`), the relay the
//! profile was seeded on is served again from this process on the same address and database, so
//! the app's subscriptions at start meet a live relay as they would in real use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use sealpost_app_bench::proc::{
    TICKS_PER_SECOND, descendants, executable, is_alive, process_table, pss_kib, uptime_seconds,
};
use sealpost_app_bench::stats::{median, percentile};
use sealpost_app_bench::{BENCH_PROFILE, BenchRelayFiles};
use serde_json::json;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "app-startup",
    about = "Cold start and idle memory of Sealpost vs a bare Tauri app, through tauri-driver"
)]
struct Args {
    /// The Sealpost binary (release build). Without it only the bare app is measured.
    #[arg(long)]
    app: Option<PathBuf>,
    /// The bare Tauri app binary (benches/bare-tauri, release build).
    #[arg(long)]
    bare: PathBuf,
    /// Profile Sealpost is started with.
    #[arg(long, default_value = BENCH_PROFILE)]
    profile: String,
    /// Measured launches per app.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Uncounted warm-up launches per app.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seconds of idling before memory is read.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Seconds a launch may take before the run fails.
    #[arg(long, default_value_t = 90)]
    timeout_secs: u64,
    /// Selector that means "Sealpost is interactive".
    #[arg(
        long,
        default_value = r#"[data-testid="chat-list"] [data-testid="chat-row"]"#
    )]
    app_selector: String,
    /// Selector that means "the bare app is interactive".
    #[arg(long, default_value = "#hello")]
    bare_selector: String,
    /// The tauri-driver binary.
    #[arg(long, default_value = "tauri-driver")]
    tauri_driver: PathBuf,
    /// Where driver logs (and a screenshot on a timeout) go.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// One app under test.
#[derive(Debug, Clone)]
struct AppSpec {
    label: &'static str,
    binary: PathBuf,
    args: Vec<String>,
    selector: String,
}

/// What one launch measured.
#[derive(Debug, Clone)]
struct Sample {
    /// Session request → selector present.
    interactive: Duration,
    /// Session request → new-session answered.
    session: Duration,
    /// Session request → the app's process started (10 ms resolution; may be slightly negative
    /// through rounding).
    process_start_s: f64,
    /// PSS of the app's tree after idling, KiB.
    pss_kib: u64,
    /// PSS per process name, KiB (summed over processes of the same name).
    by_name: BTreeMap<String, u64>,
    /// How many processes the app's tree had.
    processes: usize,
    /// Load average (1 min) when the launch began.
    load: f64,
    /// The page's own milestones (Navigation and Resource Timing, the UI's marks), in ms after
    /// the session request; empty when the page could not be asked.
    timeline: BTreeMap<String, f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("sealpost-app-bench"));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("create {}", log_dir.display()))?;

    let mut apps = Vec::new();
    if let Some(app) = &args.app {
        apps.push(AppSpec {
            label: "sealpost",
            binary: canonical(app)?,
            args: vec!["--profile".to_owned(), args.profile.clone()],
            selector: args.app_selector.clone(),
        });
    }
    apps.push(AppSpec {
        label: "bare-tauri",
        binary: canonical(&args.bare)?,
        args: Vec::new(),
        selector: args.bare_selector.clone(),
    });

    // Serve the seeded profile's relay again, if there is one.
    let _relay = match std::env::var_os("SEALPOST_DATA_DIR").filter(|d| !d.is_empty()) {
        Some(root)
            if BenchRelayFiles::under(Path::new(&root))
                .address_file()
                .exists() =>
        {
            let files = BenchRelayFiles::under(Path::new(&root));
            let address = files.read_address()?;
            let relay = sealpost_relay::Relay::start(sealpost_relay::RelayConfig {
                listen: address,
                database: files.database().into(),
                ..sealpost_relay::RelayConfig::default()
            })
            .await
            .with_context(|| format!("serve the bench relay again on {address}"))?;
            eprintln!("app-startup: bench relay serving on ws://{address}");
            Some(relay)
        }
        _ => None,
    };

    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    let mut sequence = 0usize;
    let total_rounds = args.warmup + args.runs;
    for round in 0..total_rounds {
        let warm_up = round < args.warmup;
        let mut order: Vec<&AppSpec> = apps.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for app in order {
            sequence += 1;
            let sample = launch_once(app, &args, &log_dir, sequence)
                .await
                .with_context(|| format!("launch {} (round {round})", app.label))?;
            eprintln!(
                "app-startup: {}{} round {round}: interactive {:.0} ms (session {:.0} ms, process \
                 start {:+.0} ms), idle PSS {:.1} MiB over {} processes, load {:.2}",
                app.label,
                if warm_up { " (warm-up)" } else { "" },
                ms(sample.interactive),
                ms(sample.session),
                sample.process_start_s * 1e3,
                mib(sample.pss_kib),
                sample.processes,
                sample.load,
            );
            if !warm_up {
                samples.entry(app.label).or_default().push(sample);
            }
        }
    }
    report(&samples, &args);
    Ok(())
}

fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("{} does not exist (build it first)", path.display()))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A tauri-driver in its own process group, ended (group and stragglers) on drop.
struct Driver {
    child: Child,
    seen: Vec<u32>,
    stopped: bool,
}

impl Driver {
    fn start(binary: &Path, port: u16, native_port: u16, log: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let child = Command::new(binary)
            .arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "start {} (cargo install tauri-driver --locked)",
                    binary.display()
                )
            })?;
        Ok(Self {
            child,
            seen: Vec::new(),
            stopped: false,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Remembers every process currently below the driver, to make sure they end.
    fn remember_tree(&mut self) {
        let table = process_table();
        self.seen.extend(descendants(&table, self.pid()));
        self.seen.sort_unstable();
        self.seen.dedup();
    }

    /// Ends the process group, then waits up to 10 s for every remembered pid and kills (by pid)
    /// whatever is left.
    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.remember_tree();
        let group = self.pid();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let _ = self.child.try_wait();
            let alive: Vec<u32> = self.seen.iter().copied().filter(|&p| is_alive(p)).collect();
            if alive.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for pid in alive {
                    eprintln!("app-startup: process {pid} outlived its driver; killing it");
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("tauri-driver did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The app's process below the driver: the descendant whose executable is the app's binary.
fn find_app_pid(driver_pid: u32, binary: &Path) -> Option<u32> {
    let table = process_table();
    descendants(&table, driver_pid)
        .into_iter()
        .find(|&pid| executable(pid).is_some_and(|exe| exe == binary))
}

async fn launch_once(
    app: &AppSpec,
    args: &Args,
    log_dir: &Path,
    sequence: usize,
) -> anyhow::Result<Sample> {
    let port = free_port()?;
    let native_port = free_port()?;
    let log = log_dir.join(format!("driver-{sequence:03}-{}.log", app.label));
    let mut driver = Driver::start(&args.tauri_driver, port, native_port, &log)?;
    wait_for_port(port, Duration::from_secs(20)).await?;
    // Let tauri-driver's own start (and WebKitWebDriver's) settle out of the measurement.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".to_owned(), json!("wry"));
    capabilities.insert(
        "tauri:options".to_owned(),
        json!({ "application": app.binary, "args": app.args }),
    );
    let load = load_average();
    let uptime_at_start = uptime_seconds().context("read /proc/uptime")?;
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .with_context(|| format!("start a WebDriver session (driver log: {})", log.display()))?;
    let session = started.elapsed();

    let timeout = Duration::from_secs(args.timeout_secs);
    let interactive = loop {
        let found = client
            .find_all(Locator::Css(&app.selector))
            .await
            .with_context(|| format!("find {}", app.selector))?;
        if !found.is_empty() {
            break started.elapsed();
        }
        if started.elapsed() >= timeout {
            let shot = log_dir.join(format!("timeout-{sequence:03}-{}.png", app.label));
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(&shot, png);
            }
            bail!(
                "{} did not show {} within {timeout:?} (screenshot {}, driver log {})",
                app.label,
                app.selector,
                shot.display(),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let app_pid = find_app_pid(driver.pid(), &app.binary).with_context(|| {
        format!(
            "no process running {} below tauri-driver {}",
            app.binary.display(),
            driver.pid()
        )
    })?;
    let table = process_table();
    let process_start_s = table
        .iter()
        .find(|p| p.pid == app_pid)
        .map(|p| p.start_ticks as f64 / TICKS_PER_SECOND - uptime_at_start)
        .unwrap_or(f64::NAN);

    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let table = process_table();
    let mut tree = vec![app_pid];
    tree.extend(descendants(&table, app_pid));
    let mut pss_total = 0u64;
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for pid in &tree {
        let Some(pss) = pss_kib(*pid) else { continue };
        pss_total += pss;
        let name = table
            .iter()
            .find(|p| p.pid == *pid)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("pid {pid}"));
        *by_name.entry(name).or_default() += pss;
    }
    let timeline = page_timeline(&client, started_wall).await;
    driver.remember_tree();

    if let Err(error) = client.close().await {
        eprintln!("app-startup: closing the session failed ({error}); ending the processes");
    }
    driver.stop();
    Ok(Sample {
        interactive,
        session,
        process_start_s,
        pss_kib: pss_total,
        by_name,
        processes: tree.len(),
        load,
        timeline,
    })
}

/// What the page's own clock saw, read once the launch is measured: Navigation Timing, the
/// responses of every resource it fetched and the UI's `performance.mark`s (`ui/src/main.tsx`).
const TIMELINE_SCRIPT: &str = r#"
const out = { origin: performance.timeOrigin, entries: [] };
const nav = performance.getEntriesByType("navigation")[0];
if (nav) {
  out.entries.push(["page: request", nav.requestStart]);
  out.entries.push(["page: html received", nav.responseEnd]);
  out.entries.push(["page: DOM interactive", nav.domInteractive]);
  out.entries.push(["page: DOMContentLoaded end", nav.domContentLoadedEventEnd]);
  out.entries.push(["page: load end", nav.loadEventEnd]);
}
for (const r of performance.getEntriesByType("resource")) {
  const name = r.name.replace(/^.*\//, "").replace(/-[A-Za-z0-9_-]{8}\./, ".");
  if (r.initiatorType === "fetch" || r.initiatorType === "xmlhttprequest") continue;
  out.entries.push(["fetched " + name, r.responseEnd]);
}
for (const m of performance.getEntriesByType("mark")) out.entries.push(["mark " + m.name, m.startTime]);
const paints = performance.getEntriesByType("paint");
for (const p of paints) out.entries.push(["paint " + p.name, p.startTime]);
return out;
"#;

/// Runs [`TIMELINE_SCRIPT`] and places its entries on the launch clock (ms after the session
/// request), through the page's `timeOrigin` and the wall clock at the request.
async fn page_timeline(
    client: &fantoccini::Client,
    started_wall: SystemTime,
) -> BTreeMap<String, f64> {
    let mut timeline = BTreeMap::new();
    let answer = match client.execute(TIMELINE_SCRIPT, Vec::new()).await {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("app-startup: the page's timeline could not be read ({error})");
            return timeline;
        }
    };
    let started_ms = started_wall
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(f64::NAN);
    let Some(origin) = answer.get("origin").and_then(serde_json::Value::as_f64) else {
        return timeline;
    };
    let offset = origin - started_ms;
    timeline.insert("page: time origin".to_owned(), offset);
    for entry in answer
        .get("entries")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(at)) = (
            entry.get(0).and_then(serde_json::Value::as_str),
            entry.get(1).and_then(serde_json::Value::as_f64),
        ) else {
            continue;
        };
        if at > 0.0 {
            timeline.insert(name.to_owned(), offset + at);
        }
    }
    timeline
}

/// Median and p90 of one figure.
struct Summary {
    median: f64,
    p90: f64,
}

fn summarize(values: &[f64]) -> Summary {
    Summary {
        median: median(values).unwrap_or(f64::NAN),
        p90: percentile(values, 90.0).unwrap_or(f64::NAN),
    }
}

fn report(samples: &BTreeMap<&'static str, Vec<Sample>>, args: &Args) {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!();
    println!(
        "## app-startup: {} measured launches per app, {} s idle before memory, {nproc} CPUs",
        args.runs, args.idle_secs
    );
    println!();
    println!(
        "| app | start → interactive, median / p90 (ms) | session ready (ms) | process start → session ready (ms) | process start → interactive (ms) | idle PSS, median / p90 (MiB) | load avg (1 min) at launch |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut interactive_medians = BTreeMap::new();
    let mut pss_summaries = BTreeMap::new();
    for (label, runs) in samples {
        let interactive = summarize(&runs.iter().map(|s| ms(s.interactive)).collect::<Vec<_>>());
        let session = summarize(&runs.iter().map(|s| ms(s.session)).collect::<Vec<_>>());
        let to_session = summarize(
            &runs
                .iter()
                .map(|s| ms(s.session) - s.process_start_s * 1e3)
                .collect::<Vec<_>>(),
        );
        let to_interactive = summarize(
            &runs
                .iter()
                .map(|s| ms(s.interactive) - s.process_start_s * 1e3)
                .collect::<Vec<_>>(),
        );
        let pss = summarize(&runs.iter().map(|s| mib(s.pss_kib)).collect::<Vec<_>>());
        let loads: Vec<f64> = runs.iter().map(|s| s.load).collect();
        let low = loads.iter().copied().fold(f64::INFINITY, f64::min);
        let high = loads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {label} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} / {:.1} | {low:.1}–{high:.1} |",
            interactive.median,
            interactive.p90,
            session.median,
            session.p90,
            to_session.median,
            to_session.p90,
            to_interactive.median,
            to_interactive.p90,
            pss.median,
            pss.p90,
        );
        interactive_medians.insert(*label, interactive);
        pss_summaries.insert(*label, pss);
    }
    println!();
    println!("Idle PSS by process (median over runs, MiB):");
    println!();
    for (label, runs) in samples {
        let mut names: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for sample in runs {
            for (name, kib) in &sample.by_name {
                names.entry(name.as_str()).or_default().push(mib(*kib));
            }
        }
        let parts: Vec<String> = names
            .iter()
            .map(|(name, values)| format!("{name} {:.1}", median(values).unwrap_or(f64::NAN)))
            .collect();
        println!("- {label}: {}", parts.join(", "));
    }
    println!();
    println!("The page's own milestones (median over runs, ms after the session request):");
    for (label, runs) in samples {
        let mut names: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for sample in runs {
            for (name, at) in &sample.timeline {
                names.entry(name.as_str()).or_default().push(*at);
            }
        }
        let mut rows: Vec<(f64, &str, usize)> = names
            .iter()
            .map(|(name, values)| (median(values).unwrap_or(f64::NAN), *name, values.len()))
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let interactive = summarize(&runs.iter().map(|s| ms(s.interactive)).collect::<Vec<_>>());
        rows.push((
            interactive.median,
            "selector found (interactive)",
            runs.len(),
        ));
        println!();
        println!("- {label}:");
        for (at, name, count) in rows {
            println!("  - {at:.0} ms {name} ({count} runs)");
        }
    }
    if let (Some(app_time), Some(bare_time), Some(app_pss), Some(bare_pss)) = (
        interactive_medians.get("sealpost"),
        interactive_medians.get("bare-tauri"),
        pss_summaries.get("sealpost"),
        pss_summaries.get("bare-tauri"),
    ) {
        let time_ratio = app_time.median / bare_time.median;
        let time_ratio_p90 = app_time.p90 / bare_time.p90;
        let pss_ratio = app_pss.median / bare_pss.median;
        let pss_ratio_p90 = app_pss.p90 / bare_pss.p90;
        // Issue 11's targets (docs/benchmarks.md § Desktop app): start ≤ 1.2x, idle memory ≤ 1.15x.
        let verdict = |ratio: f64, target: f64| if ratio <= target { "met" } else { "MISSED" };
        println!();
        println!("| ratio sealpost / bare | median | p90 | target (median) | |");
        println!("|---|---|---|---|---|");
        println!(
            "| start → interactive | {time_ratio:.2}x | {time_ratio_p90:.2}x | ≤ 1.2x | {} |",
            verdict(time_ratio, 1.2)
        );
        println!(
            "| idle PSS | {pss_ratio:.2}x | {pss_ratio_p90:.2}x | ≤ 1.15x | {} |",
            verdict(pss_ratio, 1.15)
        );
    }
}
