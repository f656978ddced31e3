//! Child processes of a test: a helper process whose stdout lines arrive on a channel, and a
//! relay binary on 127.0.0.1:0 that can be killed with SIGKILL and started again on the same
//! address and database.

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
        let program = program.as_ref();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts `program` with `args`, on 127.0.0.1:0 and a database in a temporary directory.
    pub async fn start(program: impl AsRef<Path>, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("relay.db");
        let program = program.as_ref().to_path_buf();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let (process, addr) = Self::spawn(&program, &args, "127.0.0.1:0", &database)
            .await
            .expect("the relay process ended before it listened");
        Self {
            process: Some(process),
            program,
            args,
            addr,
            database,
            _dir: dir,
        }
    }

    async fn spawn(
        program: &Path,
        args: &[String],
        listen: &str,
        database: &Path,
    ) -> Option<(ChildProcess, SocketAddr)> {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.extend([
            OsStr::new("--listen"),
            OsStr::new(listen),
            OsStr::new("--database"),
            database.as_os_str(),
        ]);
        let mut process = ChildProcess::spawn(program, &all);
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
            if let Some((process, _)) =
                Self::spawn(&self.program, &self.args, &listen, &self.database).await
            {
                self.process = Some(process);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the relay process did not restart on {listen}");
    }
}
