//! A progress line for the command-line tools, on standard error and only when it is a
//! terminal (a pipe or a log file gets the final summary alone).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_millis(500);

/// A count of documents shown as it grows.
pub struct Progress {
    verb: &'static str,
    shown_at: Option<Instant>,
}

impl Progress {
    /// A progress line for documents `verb` ("exported", "imported"); silent when standard
    /// error is not a terminal.
    pub fn new(verb: &'static str) -> Self {
        Self { verb, shown_at: std::io::stderr().is_terminal().then(Instant::now) }
    }

    /// Redraws the line with `count`, at most every half second.
    pub fn advance(&mut self, count: u64) {
        let Some(shown_at) = self.shown_at else { return };
        if shown_at.elapsed() >= EVERY {
            eprint!("\r{count} documents {}", self.verb);
            let _ = std::io::stderr().flush();
            self.shown_at = Some(Instant::now());
        }
    }

    /// Ends the line with the final `count`.
    pub fn finish(&mut self, count: u64) {
        if self.shown_at.take().is_some() {
            eprintln!("\r{count} documents {}", self.verb);
        }
    }
}
