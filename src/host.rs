//! Facts about the host and this process, read from `/proc` and `/etc` where the OS has them.

use std::path::Path;
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

/// Where the cgroup file systems are mounted (v2's unified one, or one folder per v1
/// controller), in containers as on hosts.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The memory limit of this process's control group, if one is set: cgroup v2's
/// `memory.max` or cgroup v1's `memory.limit_in_bytes`, the smallest along the path from the
/// process's own group up to the root (a parent's limit binds its children too). `max`, and
/// the huge numbers v1 writes for "no limit", mean none.
pub fn memory_limit_bytes() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_memory_limit(&membership, Path::new(CGROUP_ROOT))
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

/// The smallest memory limit found in the cgroup files under `root` that `membership` (the
/// text of `/proc/self/cgroup`) points to.
fn cgroup_memory_limit(membership: &str, root: &Path) -> Option<u64> {
    let mut files = Vec::new();
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // v2 has one unified line `0::<path>`; v1 has a line per hierarchy, and the memory
        // controller's is mounted at <root>/memory. (A hybrid host also mounts v2 at
        // <root>/unified, without the memory controller: nothing to read there.)
        let (mount, file) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        // The group and each ancestor. Inside a container the group's path is often one of
        // the host's, which the container's mount does not show: the mount's root is then
        // the container's own group, so the root file is always read too.
        let mut dir = path.trim_matches('/');
        loop {
            files.push(mount.join(dir).join(file));
            match dir.rfind('/') {
                Some(slash) => dir = dir.get(..slash).unwrap_or_default(),
                None if !dir.is_empty() => dir = "",
                None => break,
            }
        }
    }
    files
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
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

    /// The limit found under a fake cgroup mount holding `files` (path under the mount, text).
    fn limit(membership: &str, files: &[(&str, &str)]) -> Result<Option<u64>, std::io::Error> {
        let root = tempfile::tempdir()?;
        for (path, text) in files {
            let path = root.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(cgroup_memory_limit(membership, root.path()))
    }

    #[test]
    fn host_cgroup_v2_limit_is_the_smallest_on_the_path() -> Result<(), std::io::Error> {
        let files = [
            ("kubepods/pod1/c1/memory.max", "max\n"),
            ("kubepods/pod1/memory.max", "536870912\n"),
            ("kubepods/memory.max", "1073741824\n"),
        ];
        assert_eq!(limit("0::/kubepods/pod1/c1\n", &files)?, Some(536_870_912));
        Ok(())
    }

    #[test]
    fn host_cgroup_v2_container_root_file() -> Result<(), std::io::Error> {
        // A container with its own cgroup namespace sees its group as the root.
        assert_eq!(limit("0::/\n", &[("memory.max", "268435456\n")])?, Some(268_435_456));
        assert_eq!(limit("0::/\n", &[("memory.max", "max\n")])?, None);
        // Without a cgroup namespace the path is the host's, absent from the mount.
        assert_eq!(
            limit("0::/system.slice/docker-abc.scope\n", &[("memory.max", "2147483648\n")])?,
            Some(2_147_483_648)
        );
        Ok(())
    }

    #[test]
    fn host_cgroup_v1_limit_and_unlimited() -> Result<(), std::io::Error> {
        let membership = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        // The host's path is not mounted in the container; the mount root is the container's.
        let root_file = [("memory/memory.limit_in_bytes", "1073741824\n")];
        assert_eq!(limit(membership, &root_file)?, Some(1_073_741_824));
        let unlimited = [("memory/memory.limit_in_bytes", "9223372036854771712\n")];
        assert_eq!(limit(membership, &unlimited)?, None);
        let own = [
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/docker/abc/memory.limit_in_bytes", "2147483648"),
        ];
        assert_eq!(limit(membership, &own)?, Some(2_147_483_648));
        Ok(())
    }

    #[test]
    fn host_cgroup_hybrid_reads_v1_memory_not_unified() -> Result<(), std::io::Error> {
        // systemd's hybrid layout: v1 controllers, v2 at <root>/unified without memory.
        let membership = "4:memory:/user.slice\n0::/user.slice\n";
        let files =
            [("memory/user.slice/memory.limit_in_bytes", "805306368\n"), ("unified/user.slice/memory.max", "1")];
        assert_eq!(limit(membership, &files)?, Some(805_306_368));
        Ok(())
    }

    #[test]
    fn host_cgroup_without_memory_controller_has_no_limit() -> Result<(), std::io::Error> {
        assert_eq!(limit("3:cpuset:/\n", &[("memory/memory.limit_in_bytes", "1024")])?, None);
        assert_eq!(limit("", &[])?, None);
        assert_eq!(limit("0::/\n", &[("memory.max", "garbage")])?, None);
        Ok(())
    }
}
