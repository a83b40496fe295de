//! Facts about the host and this process, read from `/proc` and `/etc` where the OS has them.

use std::sync::OnceLock;

/// The machine's host name.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| read_trimmed("/etc/hostname"))
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// Total physical memory, if known.
pub fn memory_total_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The OS family as mongod names it (`Linux`, `Darwin`, ...).
pub fn os_type() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "windows" => "Windows",
        other => other,
    }
}

/// The distribution name, from `/etc/os-release`.
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| os_type().to_owned())
}

/// The kernel release.
pub fn kernel_version() -> String {
    read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default()
}

/// Resident and virtual memory of this process in MiB, (0, 0) when unknown.
pub fn process_memory_mb() -> (i64, i64) {
    let Some(statm) = std::fs::read_to_string("/proc/self/statm").ok() else { return (0, 0) };
    let mut pages = statm.split_whitespace().map(|v| v.parse::<i64>().unwrap_or(0));
    let virtual_pages = pages.next().unwrap_or(0);
    let resident_pages = pages.next().unwrap_or(0);
    let to_mb = |pages: i64| pages * 4096 / (1024 * 1024);
    (to_mb(resident_pages), to_mb(virtual_pages))
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
