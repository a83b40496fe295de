//! The server process's own resource use, read from `/proc/self` at scrape time (Linux only;
//! elsewhere every figure is absent).
//!
//! Read by hand rather than through the `prometheus` crate's `process` feature: that feature
//! pulls in `procfs` and its dependency tree for four numbers.

/// Linux reports CPU time in clock ticks of `USER_HZ`, which is 100 on every architecture's
/// user-space ABI (reading `sysconf(_SC_CLK_TCK)` would need `unsafe`, which the crate forbids).
const USER_HZ: f64 = 100.0;

/// Resource figures of this process; `None` where the platform does not tell.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub resident_bytes: Option<u64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// OS threads.
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Reads the current figures (a few small reads of `/proc/self`; blocking).
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        Self {
            resident_bytes: status_field(&status, "VmRSS:").map(|kib| kib * 1024),
            cpu_seconds: cpu_seconds(&stat),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|dir| dir.count() as u64),
            threads: status_field(&status, "Threads:"),
        }
    }
}

/// The number after `name` in `/proc/self/status` (e.g. `VmRSS:   1234 kB`).
fn status_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.get(name.len()..)?.split_whitespace().next()?.parse().ok()
}

/// utime + stime from `/proc/self/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted after its closing parenthesis.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stat_parses_name_with_spaces() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 1000 200";
        assert_eq!(cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn process_status_fields() {
        let status = "Name:\tmonarchd\nVmRSS:\t   2048 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(2048));
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "Missing:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_reads_self() {
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes.is_some_and(|b| b > 0));
        assert!(stats.threads.is_some_and(|t| t >= 1));
        assert!(stats.open_fds.is_some_and(|n| n >= 1));
        assert!(stats.cpu_seconds.is_some());
    }
}
