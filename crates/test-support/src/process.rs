//! Child processes of a test: a helper process whose stdout lines arrive on a channel, and a
//! relay binary on 127.0.0.1:0 that can be killed with SIGKILL and started again on the same
//! address and database, or stopped cleanly; its stderr (its log) can go to a file.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::wait::WAIT;

/// A child process with its stdout lines on a channel (stderr goes to the test's). Killed with
/// SIGKILL when dropped.
pub struct ChildProcess {
    child: Child,
    lines: UnboundedReceiver<String>,
}

impl ChildProcess {
    /// Starts `program` with `args`.
    pub fn spawn<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Self {
        Self::spawn_with_stderr(program, args, Stdio::inherit())
    }

    /// [`ChildProcess::spawn`] with its stderr going to `stderr` (a file, to read its log).
    pub fn spawn_with_stderr<S: AsRef<OsStr>>(
        program: impl AsRef<OsStr>,
        args: &[S],
        stderr: Stdio,
    ) -> Self {
        let program = program.as_ref();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program:?}: {error}"));
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits (at most [`WAIT`]) for a stdout line starting with `prefix` and returns the rest of
    /// it, trimmed; `None` if the process ended first.
    pub async fn line_starting(&mut self, prefix: &str) -> Option<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Some(rest.trim().to_owned());
                    }
                }
                Ok(None) => return None,
                Err(_) => panic!("timed out waiting for {prefix:?} from a helper process"),
            }
        }
    }

    /// The process id (to send it a signal).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGINT (a clean stop, as Ctrl-C), waits for the exit, and returns the stdout lines not
    /// read yet.
    pub async fn interrupt(&mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid} failed");
        let mut rest = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        // The reader thread closes the channel at the end of stdout, when the process exits.
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => rest.push(line),
                Ok(None) => break,
                Err(_) => panic!("the process did not stop after SIGINT"),
            }
        }
        self.child.wait().unwrap();
        rest
    }

    /// SIGKILL (`Child::kill` on Unix), then reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A relay binary as a child process on a database that outlives it. The binary takes
/// `--listen ADDR --database PATH` (after any arguments given at start) and prints
/// `listening on ws://ADDR` once it accepts connections, as `sealpost-relay` does.
pub struct RelayProcess {
    process: Option<ChildProcess>,
    program: PathBuf,
    args: Vec<String>,
    /// Where it listens (kept across restarts).
    pub addr: SocketAddr,
    database: PathBuf,
    /// Where its stderr goes (appended, across restarts), if not to the test's.
    stderr_log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts `program` with `args`, on 127.0.0.1:0 and a database in a temporary directory.
    pub async fn start(program: impl AsRef<Path>, args: &[&str]) -> Self {
        Self::start_with(program, args, None).await
    }

    /// [`RelayProcess::start`] with the process's stderr (its log) appended to `log`.
    pub async fn start_logged(program: impl AsRef<Path>, args: &[&str], log: &Path) -> Self {
        Self::start_with(program, args, Some(log.to_path_buf())).await
    }

    async fn start_with(
        program: impl AsRef<Path>,
        args: &[&str],
        stderr_log: Option<PathBuf>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("relay.db");
        let program = program.as_ref().to_path_buf();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let (process, addr) = Self::spawn(
            &program,
            &args,
            "127.0.0.1:0",
            &database,
            stderr_log.as_deref(),
        )
        .await
        .expect("the relay process ended before it listened");
        Self {
            process: Some(process),
            program,
            args,
            addr,
            database,
            stderr_log,
            _dir: dir,
        }
    }

    async fn spawn(
        program: &Path,
        args: &[String],
        listen: &str,
        database: &Path,
        stderr_log: Option<&Path>,
    ) -> Option<(ChildProcess, SocketAddr)> {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.extend([
            OsStr::new("--listen"),
            OsStr::new(listen),
            OsStr::new("--database"),
            database.as_os_str(),
        ]);
        let stderr = match stderr_log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::inherit(),
        };
        let mut process = ChildProcess::spawn_with_stderr(program, &all, stderr);
        let addr = process.line_starting("listening on ws://").await?;
        Some((process, addr.parse().unwrap()))
    }

    /// `ws://ADDR`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The relay's database file.
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The running process (to send it a signal, or wait for it).
    pub fn process(&mut self) -> Option<&mut ChildProcess> {
        self.process.as_mut()
    }

    /// Stops it cleanly (SIGINT) and returns what it wrote to stdout after `listening on`.
    pub async fn stop_gracefully(&mut self) -> Vec<String> {
        match self.process.take() {
            Some(mut process) => process.interrupt().await,
            None => Vec::new(),
        }
    }

    /// Kills it with SIGKILL: no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
    }

    /// Starts it again on the same address and database (retrying while the port is still held
    /// by the dead process's sockets).
    pub async fn restart(&mut self) {
        self.kill9();
        let listen = self.addr.to_string();
        for _ in 0..100 {
            if let Some((process, _)) = Self::spawn(
                &self.program,
                &self.args,
                &listen,
                &self.database,
                self.stderr_log.as_deref(),
            )
            .await
            {
                self.process = Some(process);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the relay process did not restart on {listen}");
    }
}
