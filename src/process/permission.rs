//! Why the kernel refused to let gopeek trace a process, told as the one
//! thing to change. The kernel only says EPERM; the reasons that differ in
//! their fix are: gopeek lacks CAP_SYS_PTRACE for a target of another user,
//! Yama's `ptrace_scope` forbids non-descendants, the target lives in a user
//! namespace gopeek's capabilities do not reach (a rootless container), or
//! a seccomp profile gopeek was started under (a container runtime's)
//! refuses `ptrace` or `process_vm_readv`. Each is read from `/proc` when the
//! refusal happens; the inherited seccomp state is noted before gopeek
//! installs its own filter ([`note_inherited_seccomp`]), since afterwards
//! `/proc/self/status` shows gopeek's filter too.

use super::proc_fs::{ptrace_scope, read_small};
use std::sync::OnceLock;

/// `CAP_SYS_PTRACE`'s bit in the capability sets.
const CAP_SYS_PTRACE: u32 = 19;

static INHERITED_SECCOMP: OnceLock<Option<bool>> = OnceLock::new();

/// Records whether gopeek was started under a seccomp filter (`Seccomp: 2`
/// in `/proc/self/status`). Call before installing gopeek's own filters;
/// later calls change nothing.
pub fn note_inherited_seccomp() {
    INHERITED_SECCOMP.get_or_init(|| {
        let status = read_small("/proc/self/status").ok()?;
        let mode = status.lines().find_map(|l| l.strip_prefix("Seccomp:"))?;
        Some(mode.trim() == "2")
    });
}

/// What was true when the kernel refused: the inputs of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionFacts {
    /// `/proc/sys/kernel/yama/ptrace_scope`, if Yama is enabled.
    pub ptrace_scope: Option<u32>,
    /// Effective uid of the target, when it could be read.
    pub target_uid: Option<u32>,
    /// Effective uid of gopeek.
    pub our_euid: u32,
    /// Whether gopeek's effective capabilities include CAP_SYS_PTRACE.
    pub cap_sys_ptrace: Option<bool>,
    /// gopeek was started under a seccomp filter (a container's profile),
    /// when known.
    pub inherited_seccomp: Option<bool>,
    /// The target is in another user namespace than gopeek.
    pub other_user_ns: bool,
}

impl PermissionFacts {
    /// Reads the facts about gopeek and target `pid` now.
    pub(crate) fn gather(pid: i32) -> PermissionFacts {
        let ns = |p: String| std::fs::read_link(p).ok();
        PermissionFacts {
            ptrace_scope: ptrace_scope(),
            target_uid: super::proc_fs::process_uid(pid).ok(),
            // SAFETY: geteuid cannot fail and touches no memory.
            our_euid: unsafe { libc::geteuid() },
            cap_sys_ptrace: read_small("/proc/self/status")
                .ok()
                .and_then(|s| has_cap(&s, CAP_SYS_PTRACE)),
            inherited_seccomp: INHERITED_SECCOMP.get().copied().flatten(),
            other_user_ns: match (
                ns("/proc/self/ns/user".into()),
                ns(format!("/proc/{pid}/ns/user")),
            ) {
                (Some(a), Some(b)) => a != b,
                // A target outside gopeek's user namespace may not even
                // show its namespace link: then tell by gopeek's own.
                _ => read_small("/proc/self/uid_map").is_ok_and(|m| !is_initial_uid_map(&m)),
            },
        }
    }
}

/// True for the initial user namespace's map (every uid to itself).
fn is_initial_uid_map(map: &str) -> bool {
    let f: Vec<&str> = map.split_whitespace().collect();
    f == ["0", "0", "4294967295"]
}

/// Whether the `CapEff:` mask of a status text has `bit`.
fn has_cap(status: &str, bit: u32) -> Option<bool> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let mask = u64::from_str_radix(hex.trim(), 16).ok()?;
    Some(mask & (1 << bit) != 0)
}

/// The message for a refused attach to `pid`: each cause that applies,
/// with its fix, most likely first.
pub(crate) fn permission_message(pid: i32, f: &PermissionFacts) -> String {
    let mut causes: Vec<String> = Vec::new();
    let other_user = f.target_uid.is_some_and(|t| t != f.our_euid);
    if f.other_user_ns {
        causes.push(
            "the target is in another user namespace (a rootless or user-namespaced container), \
             where gopeek's capabilities do not apply: run gopeek from the host, or in the \
             target's own user namespace (nsenter -t PID -U -p -- gopeek dump --pid NSPID)"
                .into(),
        );
    }
    if f.cap_sys_ptrace != Some(true) {
        causes.push(
            "gopeek lacks CAP_SYS_PTRACE: run as root or grant CAP_SYS_PTRACE \
             (sudo setcap cap_sys_ptrace+ep \"$(command -v gopeek)\"); in a container add \
             --cap-add=SYS_PTRACE (docker, podman) or securityContext.capabilities.add: \
             [\"SYS_PTRACE\"] (Kubernetes)"
                .into(),
        );
    }
    let scope = match f.ptrace_scope {
        Some(0) => "currently 0".to_string(),
        Some(1) => "currently 1: only descendants may be traced without CAP_SYS_PTRACE; \
                    sudo sysctl kernel.yama.ptrace_scope=0, or grant CAP_SYS_PTRACE"
            .to_string(),
        Some(2) => "currently 2: only CAP_SYS_PTRACE may trace".to_string(),
        Some(k) => format!("currently {k}: tracing is disabled until reboot"),
        None => "not present, Yama is off".to_string(),
    };
    causes.push(format!(
        "check /proc/sys/kernel/yama/ptrace_scope ({scope})"
    ));
    if f.inherited_seccomp == Some(true) && f.cap_sys_ptrace == Some(true) && !f.other_user_ns {
        causes.push(
            "gopeek was started under a seccomp profile (Seccomp: 2 in /proc/self/status before \
             gopeek's own filter) that may refuse ptrace or process_vm_readv: allow them in the \
             profile, or run with --security-opt seccomp=unconfined (docker, podman) or \
             securityContext.seccompProfile.type: Unconfined (Kubernetes)"
                .into(),
        );
    }
    let mut s = format!(
        "permission denied attaching to PID {pid}: {}",
        causes.join("; ")
    );
    if other_user {
        if let Some(t) = f.target_uid {
            s.push_str(&format!(
                " (the target runs as uid {t}, gopeek as uid {})",
                f.our_euid
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PermissionFacts {
        PermissionFacts {
            ptrace_scope: Some(1),
            target_uid: Some(0),
            our_euid: 1000,
            cap_sys_ptrace: Some(false),
            inherited_seccomp: Some(false),
            other_user_ns: false,
        }
    }

    #[test]
    fn no_capability() {
        let m = permission_message(42, &facts());
        assert!(
            m.starts_with("permission denied attaching to PID 42: gopeek lacks CAP_SYS_PTRACE: run as root or grant CAP_SYS_PTRACE"),
            "{m}"
        );
        for fix in [
            "setcap cap_sys_ptrace+ep",
            "--cap-add=SYS_PTRACE",
            "capabilities.add: [\"SYS_PTRACE\"]",
            "ptrace_scope (currently 1",
            "kernel.yama.ptrace_scope=0",
            "uid 0, gopeek as uid 1000",
        ] {
            assert!(m.contains(fix), "{fix}: {m}");
        }
        assert!(!m.contains("seccomp"), "{m}");
        assert!(!m.contains("user namespace"), "{m}");
    }

    #[test]
    fn seccomp_and_user_namespaces() {
        let f = PermissionFacts {
            cap_sys_ptrace: Some(true),
            inherited_seccomp: Some(true),
            ptrace_scope: None,
            target_uid: Some(0),
            our_euid: 0,
            ..facts()
        };
        let m = permission_message(7, &f);
        assert!(m.contains("seccomp=unconfined"), "{m}");
        assert!(m.contains("seccompProfile"), "{m}");
        assert!(m.contains("not present, Yama is off"), "{m}");
        assert!(!m.contains("lacks CAP_SYS_PTRACE"), "{m}");
        assert!(!m.contains("runs as uid"), "{m}");
        let m = permission_message(
            7,
            &PermissionFacts {
                other_user_ns: true,
                ..f
            },
        );
        assert!(m.contains("another user namespace"), "{m}");
        assert!(m.contains("nsenter -t PID -U"), "{m}");
        assert!(!m.contains("seccomp=unconfined"), "{m}");
    }

    #[test]
    fn uid_maps() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map(""));
    }

    #[test]
    fn capability_mask() {
        let s = "Name:\tx\nCapEff:\t000001fffeffffff\n";
        assert_eq!(has_cap(s, CAP_SYS_PTRACE), Some(true));
        assert_eq!(
            has_cap("CapEff:\t0000000000000000\n", CAP_SYS_PTRACE),
            Some(false)
        );
        assert_eq!(has_cap("CapEff:\tzz\n", CAP_SYS_PTRACE), None);
        assert_eq!(has_cap("", CAP_SYS_PTRACE), None);
    }
}
