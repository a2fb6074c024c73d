//! A container's cgroup statistics read from the cgroup files themselves, for runtimes that
//! have no `events --stats` (crun): the same JSON shape as runc's `data` object (`cpu`,
//! `memory`, `pids`), so that one reader serves every runtime.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Clock ticks per second of `cpuacct.stat` (`USER_HZ`, 100 on every Linux architecture).
const USER_HZ: u64 = 100;

/// One sample of the cgroups of the process `pid` (the container's init), under the cgroup
/// file system mounted at `root` (`/sys/fs/cgroup`).
pub(crate) fn sample(pid: i64, root: &Path) -> std::io::Result<Value> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let dirs = Dirs::parse(&membership, root);
    Ok(match &dirs.unified {
        Some(dir) if dirs.v1.is_empty() => v2(dir),
        _ => v1(&dirs),
    })
}

/// Where each controller of a process is: cgroup v1 (`N:cpu,cpuacct:/path`) or the v2
/// hierarchy (`0::/path`).
struct Dirs {
    v1: Vec<(String, PathBuf)>,
    unified: Option<PathBuf>,
}

impl Dirs {
    fn parse(membership: &str, root: &Path) -> Self {
        let mut v1 = Vec::new();
        let mut unified = None;
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = path.trim_start_matches('/');
            if controllers.is_empty() {
                unified = Some(root.join(path));
                continue;
            }
            // A joint mount (`cpu,cpuacct`) is found under either name or the joint one.
            let mount = std::iter::once(controllers.to_owned())
                .chain(controllers.split(',').map(str::to_owned))
                .map(|m| root.join(m))
                .find(|m| m.is_dir());
            if let Some(mount) = mount {
                for c in controllers.split(',') {
                    v1.push((c.to_owned(), mount.join(path)));
                }
            }
        }
        Self { v1, unified }
    }

    fn of(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p.as_path())
    }
}

fn read(dir: Option<&Path>, file: &str) -> Option<String> {
    std::fs::read_to_string(dir?.join(file)).ok()
}

/// A number file; `max` (no limit) reads as 0, as runc reports an unlimited pids count.
fn number(dir: Option<&Path>, file: &str) -> u64 {
    read(dir, file)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
fn keyed(text: Option<String>) -> serde_json::Map<String, Value> {
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn field(map: &serde_json::Map<String, Value>, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn v1(d: &Dirs) -> Value {
    let cpuacct = d.of("cpuacct");
    let ticks = keyed(read(cpuacct, "cpuacct.stat"));
    let to_ns = |t: u64| t * (1_000_000_000 / USER_HZ);
    let throttling = keyed(read(d.of("cpu"), "cpu.stat"));
    let memory = d.of("memory");
    json!({
        "cpu": {
            "usage": {
                "total": number(cpuacct, "cpuacct.usage"),
                "percpu": read(cpuacct, "cpuacct.usage_percpu")
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|n| n.parse::<u64>().ok())
                    .collect::<Vec<_>>(),
                "kernel": to_ns(field(&ticks, "system")),
                "user": to_ns(field(&ticks, "user")),
            },
            "throttling": {
                "periods": field(&throttling, "nr_periods"),
                "throttledPeriods": field(&throttling, "nr_throttled"),
                "throttledTime": field(&throttling, "throttled_time"),
            },
        },
        "memory": {
            "usage": {
                "usage": number(memory, "memory.usage_in_bytes"),
                "max": number(memory, "memory.max_usage_in_bytes"),
                "limit": number(memory, "memory.limit_in_bytes"),
                "failcnt": number(memory, "memory.failcnt"),
            },
            "raw": keyed(read(memory, "memory.stat")),
        },
        "pids": {
            "current": number(d.of("pids"), "pids.current"),
            "limit": number(d.of("pids"), "pids.max"),
        },
    })
}

fn v2(dir: &Path) -> Value {
    let dir = Some(dir);
    let cpu = keyed(read(dir, "cpu.stat"));
    let us = |k: &str| field(&cpu, k) * 1000;
    json!({
        "cpu": {
            "usage": {
                "total": us("usage_usec"),
                "percpu": [],
                "kernel": us("system_usec"),
                "user": us("user_usec"),
            },
            "throttling": {
                "periods": field(&cpu, "nr_periods"),
                "throttledPeriods": field(&cpu, "nr_throttled"),
                "throttledTime": us("throttled_usec"),
            },
        },
        "memory": {
            "usage": {
                "usage": number(dir, "memory.current"),
                "max": number(dir, "memory.peak"),
                "limit": number(dir, "memory.max"),
            },
            "raw": keyed(read(dir, "memory.stat")),
        },
        "pids": {
            "current": number(dir, "pids.current"),
            "limit": number(dir, "pids.max"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn v1_files_read_as_runc_reports_them() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("cpu,cpuacct/c1"), "cpuacct.usage", "5000\n");
        write(
            &r.join("cpu,cpuacct/c1"),
            "cpuacct.usage_percpu",
            "3000 2000 \n",
        );
        write(
            &r.join("cpu,cpuacct/c1"),
            "cpuacct.stat",
            "user 3\nsystem 1\n",
        );
        write(
            &r.join("cpu,cpuacct/c1"),
            "cpu.stat",
            "nr_periods 7\nnr_throttled 2\nthrottled_time 90\n",
        );
        write(&r.join("memory/c1"), "memory.usage_in_bytes", "4096\n");
        write(&r.join("memory/c1"), "memory.limit_in_bytes", "100663296\n");
        write(&r.join("memory/c1"), "memory.stat", "cache 12\nrss 34\n");
        write(&r.join("pids/c1"), "pids.current", "2\n");
        write(&r.join("pids/c1"), "pids.max", "max\n");
        let membership = "12:pids:/c1\n4:cpu,cpuacct:/c1\n3:memory:/c1\n1:name=systemd:/c1\n";
        let d = v1(&Dirs::parse(membership, r));
        assert_eq!(d["cpu"]["usage"]["total"], 5000);
        assert_eq!(d["cpu"]["usage"]["percpu"], json!([3000, 2000]));
        assert_eq!(d["cpu"]["usage"]["user"], 30_000_000);
        assert_eq!(d["cpu"]["usage"]["kernel"], 10_000_000);
        assert_eq!(d["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(d["memory"]["usage"]["usage"], 4096);
        assert_eq!(d["memory"]["usage"]["limit"], 100663296);
        assert_eq!(d["memory"]["raw"]["rss"], 34);
        assert_eq!(d["pids"]["current"], 2);
        assert_eq!(d["pids"]["limit"], 0, "max: no limit");
    }

    #[test]
    fn v2_files_read_as_runc_reports_them() {
        let root = tempfile::tempdir().unwrap();
        let c = root.path().join("system.slice/c2");
        write(&c, "cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n");
        write(&c, "memory.current", "8192\n");
        write(&c, "memory.max", "50331648\n");
        write(&c, "pids.current", "3\n");
        write(&c, "pids.max", "50\n");
        let dirs = Dirs::parse("0::/system.slice/c2\n", root.path());
        assert!(dirs.v1.is_empty());
        let d = v2(dirs.unified.as_deref().unwrap());
        assert_eq!(d["cpu"]["usage"]["total"], 7000);
        assert_eq!(d["cpu"]["usage"]["user"], 5000);
        assert_eq!(d["memory"]["usage"]["usage"], 8192);
        assert_eq!(d["memory"]["usage"]["limit"], 50331648);
        assert_eq!(d["pids"]["limit"], 50);
    }
}
