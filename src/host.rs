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

/// The memory limit of this process's control group, if one is set: cgroup v2's
/// `memory.max` or cgroup v1's `memory.limit_in_bytes`, the smallest along the path from the
/// process's own group up to the root (a parent's limit binds its children too). `max`, and
/// the huge numbers v1 writes for "no limit", mean none.
pub fn memory_limit_bytes() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_memory_limit(&membership, |path| std::fs::read_to_string(path).ok())
}

/// The memory this process may use: the smaller of physical memory and the cgroup limit (as
/// mongod's `memLimitMB`, on which it sizes its cache).
pub fn memory_available_bytes() -> Option<u64> {
    match (memory_total_bytes(), memory_limit_bytes()) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// Limits at or above this are "unlimited" (cgroup v1 writes `PAGE_COUNTER_MAX` pages, about
/// 2^63 bytes, when no limit is set).
const UNLIMITED_BYTES: u64 = 1 << 62;

/// The smallest memory limit found in the cgroup files that `membership` (the text of
/// `/proc/self/cgroup`) points to, reading each file with `read`.
fn cgroup_memory_limit(membership: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let mut files = Vec::new();
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // v2 has one unified line `0::<path>`; v1 has a line per hierarchy, and the memory
        // controller's is mounted at /sys/fs/cgroup/memory.
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        // The group and each ancestor. Inside a container the group's path is often one of
        // the host's, which the container's mount does not show: the mount's root is then
        // the container's own group, so the root file is always read too.
        let mut dir = path.trim_end_matches('/');
        loop {
            files.push(format!("{root}{dir}/{file}"));
            match dir.rfind('/') {
                Some(slash) => dir = dir.get(..slash).unwrap_or_default(),
                None => break,
            }
        }
    }
    files
        .iter()
        .filter_map(|path| read(path))
        .filter_map(|text| text.trim().parse::<u64>().ok())
        .filter(|&bytes| bytes < UNLIMITED_BYTES)
        .min()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(membership: &str, files: &[(&str, &str)]) -> Option<u64> {
        cgroup_memory_limit(membership, |path| {
            files.iter().find(|(name, _)| *name == path).map(|(_, text)| (*text).to_owned())
        })
    }

    #[test]
    fn host_cgroup_v2_limit_is_the_smallest_on_the_path() {
        let membership = "0::/kubepods/pod1/c1\n";
        let files = [
            ("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n"),
            ("/sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n"),
            ("/sys/fs/cgroup/kubepods/memory.max", "1073741824\n"),
        ];
        assert_eq!(limit(membership, &files), Some(536_870_912));
    }

    #[test]
    fn host_cgroup_v2_container_root_file() {
        // A container with its own cgroup namespace sees its group as the root.
        assert_eq!(limit("0::/\n", &[("/sys/fs/cgroup/memory.max", "268435456\n")]), Some(268_435_456));
        assert_eq!(limit("0::/\n", &[("/sys/fs/cgroup/memory.max", "max\n")]), None);
    }

    #[test]
    fn host_cgroup_v1_limit_and_unlimited() {
        let membership = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        // The host's path is not mounted in the container; the mount root is the container's.
        let files = [("/sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n")];
        assert_eq!(limit(membership, &files), Some(1_073_741_824));
        let unlimited = [("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")];
        assert_eq!(limit(membership, &unlimited), None);
        let own = [("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "2147483648")];
        assert_eq!(limit(membership, &own), Some(2_147_483_648));
    }

    #[test]
    fn host_cgroup_without_memory_controller_has_no_limit() {
        assert_eq!(limit("3:cpuset:/\n", &[("/sys/fs/cgroup/memory/memory.limit_in_bytes", "1024")]), None);
        assert_eq!(limit("", &[]), None);
    }
}
