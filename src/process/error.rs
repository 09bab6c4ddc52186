//! [`ProcessError`]: every way attaching to or reading a live process can
//! fail, each worded so that the user learns what to do next.

use super::permission::{permission_message, PermissionFacts};
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Why gopeek could not attach to, or keep reading, a live process.
///
/// The messages are shown to users as-is, so each says what happened and
/// what to try (the design requires bad input to end in "a message that says
/// what happened and what to try").
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The PID does not exist (never did, or exited and was reaped).
    #[error("no such process: PID {pid} does not exist (it may have exited already); check the PID with `ps -p {pid}`")]
    NoSuchProcess {
        /// The PID that was asked for.
        pid: i32,
    },

    /// The process has exited but its parent has not reaped it yet: there is
    /// no address space left to read.
    #[error("process {pid} is a zombie (exited, not yet reaped): there is nothing left to inspect; its parent must reap it")]
    Zombie {
        /// The zombie process.
        pid: i32,
    },

    /// The process exited while gopeek was attaching to or reading it.
    #[error("process {pid} exited while gopeek was attaching to it; nothing was captured")]
    Exited {
        /// The process that exited.
        pid: i32,
    },

    /// The kernel refused PTRACE_SEIZE (EPERM) and nobody else traces the
    /// target: a privilege problem.
    #[error("{}", permission_message(*pid, facts))]
    PermissionDenied {
        /// The process gopeek was refused.
        pid: i32,
        /// What was true about gopeek and the target when it was refused
        /// (capabilities, Yama, namespaces, seccomp): the message's inputs.
        facts: Box<PermissionFacts>,
    },

    /// Another tracer (a debugger, strace, another gopeek) holds the target;
    /// Linux allows only one tracer per thread.
    #[error(
        "process {pid} is already traced by PID {tracer} ({tracer_comm}): only one tracer can attach at a time; \
         quit that debugger or tracer (gdb, dlv, strace, another gopeek) and retry"
    )]
    AlreadyTraced {
        /// The process gopeek wanted.
        pid: i32,
        /// The process that traces it (resolved from the tracer thread).
        tracer: i32,
        /// The tracer's command name, so the user knows what to quit.
        tracer_comm: String,
    },

    /// Holding the target would have exceeded `--max-pause`; gopeek detached
    /// (the target is running) and gives up rather than pause it longer.
    #[error(
        "gave up on process {pid} after {} ms: the pause budget (--max-pause {} ms) was reached while {phase}; \
         the target was detached and is running; retry, raise --max-pause, or use --nonblocking",
        elapsed.as_millis(), budget.as_millis()
    )]
    PauseBudgetExceeded {
        /// The process that was (briefly) held.
        pid: i32,
        /// The `--max-pause` budget.
        budget: Duration,
        /// How long it had been held when gopeek gave up.
        elapsed: Duration,
        /// What gopeek was doing ("stopping its threads", "copying memory").
        phase: &'static str,
    },

    /// gopeek was asked to attach to itself (or one of its own threads).
    #[error("PID {pid} is gopeek itself; pass the PID of the Go program to inspect")]
    SelfAttach {
        /// gopeek's own PID.
        pid: i32,
    },

    /// gopeek runs on, or the target was built for, an architecture the live
    /// reader does not support.
    #[error("live attach is not supported for {arch}: gopeek reads linux/amd64 and linux/arm64 processes of its own architecture")]
    UnsupportedArchitecture {
        /// What is unsupported, in words.
        arch: String,
    },

    /// A `/proc` file could not be read for a reason other than the process
    /// being gone.
    #[error("cannot read {}: {source}", path.display())]
    Proc {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// The executable of the process is not among its mappings, so the load
    /// bias cannot be computed (the process may be exec'ing).
    #[error("cannot find the executable of process {pid} in /proc/{pid}/maps (is it in the middle of exec?); retry")]
    ExeNotMapped {
        /// The process whose executable is missing from its maps.
        pid: i32,
    },

    /// An unexpected ptrace failure (not a permission or vanished-thread one).
    #[error("ptrace {op} on thread {tid} of process {pid} failed: {errno}")]
    Ptrace {
        /// The process.
        pid: i32,
        /// The thread the request was for (-1 for `waitpid(-1)`).
        tid: i32,
        /// The request ("SEIZE", "INTERRUPT", "GETREGS", "waitpid").
        op: &'static str,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },

    /// The helper thread that holds the ptrace attachment could not be
    /// started or died.
    #[error("cannot run the tracer thread: {0}")]
    TracerThread(String),

    /// The root monitor (privilege separation under sudo) refused a hold
    /// or failed; `code` is the exit code of the error it met.
    #[error("{message}")]
    Monitor {
        /// The exit code of the monitor's error.
        code: u8,
        /// The monitor's error, as it said it.
        message: String,
    },

    /// Installing a seccomp filter on gopeek itself failed.
    #[error("cannot install the {what} seccomp filter on gopeek: {errno} (needs Linux 3.17+ with CONFIG_SECCOMP_FILTER)")]
    Seccomp {
        /// Which filter ("read-only", "no-write-open").
        what: &'static str,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_message_says_what_to_do() {
        let e = ProcessError::PermissionDenied {
            pid: 42,
            facts: Box::new(PermissionFacts {
                ptrace_scope: Some(1),
                target_uid: Some(0),
                our_euid: 1000,
                ..PermissionFacts::default()
            }),
        };
        let m = e.to_string();
        assert!(
            m.starts_with("permission denied attaching to PID 42: gopeek lacks CAP_SYS_PTRACE"),
            "{m}"
        );
        assert!(m.contains("ptrace_scope (currently 1"), "{m}");
        assert!(m.contains("uid 0, gopeek as uid 1000"), "{m}");
    }

    #[test]
    fn zombie_and_tracer_messages() {
        assert_eq!(
            ProcessError::Zombie { pid: 7 }.to_string(),
            "process 7 is a zombie (exited, not yet reaped): there is nothing left to inspect; its parent must reap it"
        );
        let m = ProcessError::AlreadyTraced {
            pid: 7,
            tracer: 99,
            tracer_comm: "dlv".into(),
        }
        .to_string();
        assert!(m.contains("already traced by PID 99 (dlv)"), "{m}");
    }
}
