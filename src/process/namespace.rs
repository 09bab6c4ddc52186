//! Where a target lives: the pid it has inside its own pid namespace
//! (`NSpid`), the container its cgroup names, and whether gopeek shares its
//! namespaces. A process in a container is known by a different pid inside
//! it; an engineer comparing `gopeek ps` with the container's own `ps` needs
//! both, and the container id to know which pod or container it is.
//!
//! Everything here is read from `/proc` text the kernel writes (bounded,
//! lossily decoded); cgroup paths are chosen by container runtimes, so the
//! id is recognised by shape, never trusted to be one.

use super::proc_fs::read_small;
use std::io;

/// The process's pid in each nested pid namespace, outermost (the one
/// gopeek's `/proc` shows) first: the `NSpid:` line of `/proc/PID/status`.
/// A kernel older than 4.1 has no such line: then only the pid gopeek sees
/// is known.
pub fn nspids(pid: i32) -> io::Result<Vec<i32>> {
    let status = read_small(&format!("/proc/{pid}/status"))?;
    Ok(parse_nspid(&status).unwrap_or_else(|| vec![pid]))
}

/// The pid the target has inside its innermost pid namespace (what its
/// own `ps` or `os.Getpid()` says); equal to `pid` outside containers.
pub fn inner_pid(pid: i32) -> io::Result<i32> {
    Ok(*nspids(pid)?.last().unwrap_or(&pid))
}

/// The `NSpid:` numbers of a status file's text.
fn parse_nspid(status: &str) -> Option<Vec<i32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Vec<i32> = line
        .split_whitespace()
        .map_while(|t| t.parse().ok())
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// The container the process runs in, as its runtime names it in the
/// cgroup path (docker, containerd and CRI-O under Kubernetes, podman):
/// the 64-hex-digit id, or `None` for a process outside any container (or
/// when `/proc/PID/cgroup` is unreadable).
pub fn container_id(pid: i32) -> Option<String> {
    let text = read_small(&format!("/proc/{pid}/cgroup")).ok()?;
    container_id_in(&text)
}

/// The container id named by the text of a `/proc/PID/cgroup` file: the
/// last path component, on any line, that is (or ends in, after a runtime
/// prefix such as `docker-`, `cri-containerd-`, `crio-` or `libpod-`, and
/// before a `.scope` suffix) 64 hexadecimal digits.
pub(crate) fn container_id_in(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        // hierarchy-ID:controllers:path
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').rev().find_map(id_of_component)
    })
}

/// One cgroup path component as a container id, if it is one.
fn id_of_component(c: &str) -> Option<String> {
    let c = c.strip_suffix(".scope").unwrap_or(c);
    let id = match c.rfind(['-', ':']) {
        Some(i) => &c[i + 1..],
        None => c,
    };
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// True when `pid` lives in another mount namespace than gopeek: a path
/// that process uses names another file here, so its executable must be
/// read through `/proc/PID/exe` (which gopeek always does) and any other
/// file through `/proc/PID/root`.
pub fn other_mount_namespace(pid: i32) -> bool {
    let ns = |p: &str| std::fs::read_link(p).ok();
    match (ns("/proc/self/ns/mnt"), ns(&format!("/proc/{pid}/ns/mnt"))) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c0a9e6b2d4c8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

    #[test]
    fn nspid_lines() {
        assert_eq!(
            parse_nspid("Name:\tx\nNSpid:\t4242\t17\t1\nNSpgid:\t1\n"),
            Some(vec![4242, 17, 1])
        );
        assert_eq!(parse_nspid("NSpid:\t77\n"), Some(vec![77]));
        assert_eq!(parse_nspid("Pid:\t77\n"), None);
        assert_eq!(parse_nspid("NSpid:\tx\n"), None);
    }

    #[test]
    fn container_ids_of_each_runtime() {
        for text in [
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("12:pids:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-{ID}.scope\n"),
            format!("0::/kubepods/besteffort/pod0e2c/{ID}\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("0::/kubepods.slice/crio-{ID}.scope\n"),
            format!("0::/system.slice/containerd.service/kubepods-besteffort-pod1.slice:cri-containerd:{ID}\n"),
        ] {
            assert_eq!(container_id_in(&text).as_deref(), Some(ID), "{text}");
        }
        assert_eq!(
            container_id_in(&format!("0::/x/docker-{}.scope\n", ID.to_uppercase())).as_deref(),
            Some(ID)
        );
        for text in [
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/\n",
            "garbage",
            "",
            &format!("0::/docker-{}.scope\n", &ID[1..]),
            &format!("0::/docker-{}z.scope\n", &ID[1..]),
        ] {
            assert_eq!(container_id_in(text), None, "{text}");
        }
    }

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        let ids = nspids(me).unwrap();
        assert_eq!(ids[0], me);
        assert!(!other_mount_namespace(me));
    }
}
