//! The servers under measurement, each in its own process on a free port: `monarchd` (by
//! default the release build cargo made next to this bench) with its data in a temp dir, or the
//! echo server. Their logs are drained so the pipe never fills, and their warnings kept for the
//! report.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::BenchResult;

/// Log lines kept for the report.
const LOG_LINES_KEPT: usize = 10;

/// A server in its own process on a free port (`monarchd` with its data in a temp dir, or the
/// echo server); stopped with SIGTERM.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) port: u16,
    /// How the server ended, once it has.
    exit: Option<String>,
    /// Whether it stopped with status 0 when the harness sent SIGTERM.
    clean_exit: bool,
    log: Arc<Mutex<LogSummary>>,
    /// Declared last: removed after the server has stopped.
    _dir: Option<tempfile::TempDir>,
}

/// Warning and error lines from the server's log, and its last lines.
#[derive(Debug, Default)]
struct LogSummary {
    notable: u64,
    kept: Vec<String>,
    last: VecDeque<String>,
}

impl ServerProcess {
    /// `monarchd` (`binary`) with `extra` arguments.
    pub(crate) fn monarchd(binary: &Path, extra: &[String]) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(binary);
        command.args(["--port", "0", "--quiet", "--dbpath"]).arg(dir.path());
        // Many servers may run at once: no admin HTTP port unless the caller asks for one.
        if !extra.iter().any(|arg| arg == "--adminPort") {
            command.args(["--adminPort", "disabled"]);
        }
        command.args(extra);
        Self::spawn(command, Some(dir))
    }

    /// This harness, serving the echo floor.
    pub(crate) fn echo() -> BenchResult<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("--echo-server");
        Self::spawn(command, None)
    }

    fn spawn(mut command: Command, dir: Option<tempfile::TempDir>) -> BenchResult<Self> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take();
        let mut server = Self { child, port: 0, exit: None, clean_exit: false, log: Arc::default(), _dir: dir };
        let mut reader = BufReader::new(stdout.ok_or("the server has no stdout")?);
        server.port = read_port(&mut reader)?;
        let log = Arc::clone(&server.log);
        std::thread::spawn(move || drain_log(reader, &log));
        Ok(server)
    }

    /// The exit status if the server has exited on its own.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits for the exit (killing the server after 30 s).
    pub(crate) fn stop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Some(status) = self.exited() {
            self.exit = Some(format!("exited before the harness stopped it: {status}"));
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.clean_exit = status.success();
                    self.exit = Some(format!("stopped by SIGTERM: {status}"));
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exit = Some("did not exit within 30 s of SIGTERM; killed".to_owned());
    }

    pub(crate) fn summary(&self) -> Value {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut summary = json!({
            "exit": self.exit,
            "clean_exit": self.clean_exit,
            "log_warnings_and_errors": log.notable,
            "log_lines": log.kept,
        });
        if !self.clean_exit {
            summary["last_log_lines"] = json!(log.last);
        }
        summary
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the log until the "Waiting for connections" line and returns its port.
fn read_port(reader: &mut BufReader<ChildStdout>) -> BenchResult<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err("the server exited before listening".into());
        }
        if line.contains("\"Waiting for connections\"") {
            let parsed: Value = serde_json::from_str(&line)?;
            let port = parsed["attr"]["port"].as_u64().and_then(|p| u16::try_from(p).ok());
            return port.ok_or_else(|| format!("no port in {line}").into());
        }
    }
}

/// Keeps the pipe flowing and remembers warnings and errors.
fn drain_log(reader: BufReader<ChildStdout>, log: &Mutex<LogSummary>) {
    for line in reader.lines().map_while(Result::ok) {
        let severity = serde_json::from_str::<Value>(&line).ok().and_then(|v| v["s"].as_str().map(str::to_owned));
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(severity.as_deref(), Some("W" | "E" | "F")) {
            log.notable += 1;
            if log.kept.len() < LOG_LINES_KEPT {
                log.kept.push(line.clone());
            }
        }
        if log.last.len() == LOG_LINES_KEPT {
            log.last.pop_front();
        }
        log.last.push_back(line);
    }
}
