//! One inspection through `sudo gopeek`: policy check, audit trail and
//! privilege drop put together, so that `main.rs` needs only a few calls.
//!
//! The order, for `gopeek dump --pid PID` under sudo:
//!
//! 1. [`SudoSession::begin`] (root): connect to the system log, load the
//!    policy ([`crate::sudo::policy`]), read what it matches on from `/proc`,
//!    decide; log the refusal (and stop, exit 4) or the permission. No
//!    audit trail, no attach.
//! 2. [`SudoSession::start_monitor`] (root, single-threaded) forks the
//!    root monitor (`process::monitor`); the command creates the `-o`
//!    file as the invoking user ([`crate::sudo::privilege::create_output`])
//!    and installs the seccomp filters.
//! 3. The command opens the executable and `/proc/PID/mem` as root
//!    (`snapshot::LiveTarget::open`), then [`SudoSession::drop_privileges`]
//!    drops for good ([`crate::sudo::privilege::drop_to`]) and forbids
//!    `ptrace`. The memory is read and decoded as the invoking user; each
//!    hold is asked of the monitor, which re-reads the facts on the held
//!    target (an `exec` or a recycled pid since 1 is refused). `dump`,
//!    `leaks`, `sched`, `threads` and `print` all take this one path.
//! 4. [`SudoSession::finish`] logs the outcome. Every exit path writes
//!    exactly one outcome line: a session dropped without `finish` (an
//!    early `?` in `main`, a failed seccomp install, a panic) logs a
//!    failure from its `Drop`, and `finish` after `finish` logs nothing.

use crate::exit::ExitStatus;
use crate::process::monitor::Monitor;
use crate::process::ProcessError;
use crate::sudo::audit::{AttachRecord, AuditError, AuditLog, Severity};
use crate::sudo::policy::{Decision, Policy, PolicyError, TargetFacts};
use crate::sudo::privilege::{drop_to, PrivilegeError, SudoContext};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Why `sudo gopeek` refused to go on. Exit code 4, except
/// [`SudoError::Process`] (no such process: 5).
#[derive(Debug, Error)]
pub enum SudoError {
    /// The policy refused the target, or is unusable.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The system log could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Dropping privileges failed.
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    /// The target does not exist.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// An allowed inspection under sudo.
#[derive(Debug)]
pub struct SudoSession {
    ctx: SudoContext,
    facts: TargetFacts,
    decision: Decision,
    audit: Mutex<Audit>,
    record: AttachRecord,
}

/// The connection to the system log and whether the outcome line was
/// written, under one lock so that two outcome lines cannot race.
#[derive(Debug)]
struct Audit {
    log: AuditLog,
    outcome_written: bool,
}

/// The outcome logged for a session dropped without [`SudoSession::finish`].
const EXITED_EARLY: &str = "gopeek exited before the snapshot finished";
/// The same, when the drop is part of a panic's unwinding.
const PANICKED: &str = "gopeek panicked before the snapshot finished";

impl SudoSession {
    /// Checks `pid` against the policy and writes the decision to the
    /// system log. `Err` means: do not attach (the refusal is logged when
    /// the log is reachable).
    pub fn begin(ctx: &SudoContext, pid: i32) -> Result<Arc<SudoSession>, SudoError> {
        Self::begin_for(ctx, pid, false)
    }

    /// [`SudoSession::begin`] for `record` and `top`: the target must also
    /// be one the policy allows to profile (`profile = true`), else the
    /// refusal is logged and nothing is opened.
    pub fn begin_profiling(ctx: &SudoContext, pid: i32) -> Result<Arc<SudoSession>, SudoError> {
        Self::begin_for(ctx, pid, true)
    }

    fn begin_for(
        ctx: &SudoContext,
        pid: i32,
        profiling: bool,
    ) -> Result<Arc<SudoSession>, SudoError> {
        let mut record = AttachRecord {
            user: ctx.user.clone(),
            uid: ctx.uid,
            pid,
            target_uid: None,
            exe: None,
            command: std::env::args_os().collect(),
        };
        let audit = AuditLog::connect();
        let decided = Policy::load_system().map_err(Some).and_then(|policy| {
            let facts = match TargetFacts::read(pid) {
                Err(PolicyError::Target { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Err(None);
                }
                r => r.map_err(Some)?,
            };
            Ok((
                facts.clone(),
                policy.decide(&facts, ctx.uid).map_err(|e| (e, facts)),
            ))
        });
        let (facts, decision) = match decided {
            Ok((facts, Ok(d))) => (facts, d),
            Ok((_, Err((e, facts)))) => {
                record.target_uid = Some(facts.euid());
                record.exe = Some(facts.exe.clone());
                return Err(refuse(audit, &record, e.into()));
            }
            Err(Some(e)) => return Err(refuse(audit, &record, e.into())),
            Err(None) => {
                let e = ProcessError::NoSuchProcess { pid };
                return Err(refuse(audit, &record, e.into()));
            }
        };
        record.target_uid = Some(facts.euid());
        record.exe = Some(facts.exe.clone());
        if profiling && !decision.profile {
            let e = PolicyError::Refused {
                pid,
                exe: facts.exe.clone(),
                uid: facts.euid(),
                why: format!(
                    "profiling (gopeek record, gopeek top) is not allowed by {}; an administrator can set profile = true in the matching [[allow]] rule of {}",
                    decision.reason,
                    crate::sudo::policy::POLICY_PATH
                ),
            };
            return Err(refuse(audit, &record, e.into()));
        }
        let mut audit = audit?;
        audit.send(
            Severity::Notice,
            &record,
            &format!(
                "allowed by {}; show_memory={}{}",
                decision.reason,
                decision.show_memory,
                if profiling { "; profile=true" } else { "" }
            ),
        )?;
        Ok(Arc::new(SudoSession {
            ctx: ctx.clone(),
            facts,
            decision,
            audit: Mutex::new(Audit {
                log: audit,
                outcome_written: false,
            }),
            record,
        }))
    }

    /// The policy's decision (whether memory contents may be shown, and why
    /// the target is allowed).
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Forks the root monitor that holds the target on request (the
    /// privilege separation of `process::monitor`); it re-checks, as
    /// root, that every held target is still the one the policy allowed.
    /// Call right after [`SudoSession::begin`], while gopeek is root and
    /// single-threaded, then open the target and
    /// [`SudoSession::drop_privileges`].
    pub fn start_monitor(&self) -> Result<Arc<Monitor>, SudoError> {
        self.start_monitor_for(false)
    }

    /// [`SudoSession::start_monitor`] for `record` and `top` (a session
    /// begun with [`SudoSession::begin_profiling`]): the monitor also
    /// opens the perf events of threads the target creates after the drop
    /// (`Monitor::spawn_profiling`).
    pub fn start_profiling_monitor(&self) -> Result<Arc<Monitor>, SudoError> {
        self.start_monitor_for(self.decision.profile)
    }

    fn start_monitor_for(&self, profiling: bool) -> Result<Arc<Monitor>, SudoError> {
        let facts = self.facts.clone();
        let verify = Box::new(move |pid: i32| -> Result<(), (u8, String)> {
            let now = TargetFacts::read(pid).map_err(|e| (e.exit_code(), e.to_string()))?;
            match changed(&facts, &now) {
                None => Ok(()),
                Some(what) => {
                    let e = PolicyError::TargetChanged { pid, what };
                    Err((e.exit_code(), e.to_string()))
                }
            }
        });
        let m = if profiling {
            Monitor::spawn_profiling(self.facts.pid, verify)?
        } else {
            Monitor::spawn(self.facts.pid, verify)?
        };
        Ok(Arc::new(m))
    }

    /// Drops to the invoking user for good (see
    /// [`crate::sudo::privilege::drop_to`]) and makes `ptrace` fail for
    /// the rest of gopeek's life: from here on only the root monitor
    /// holds the target.
    pub fn drop_privileges(&self) -> Result<(), SudoError> {
        drop_to(&self.ctx)?;
        crate::process::seccomp::install_no_ptrace_filter()?;
        Ok(())
    }

    /// Logs how the inspection ended (`Ok`: a summary, `Err`: the error).
    /// Only the first call writes a line; dropping the session without
    /// calling this logs a failure instead. A failure to log is reported
    /// on stderr: the attach itself was already logged.
    pub fn finish(&self, outcome: Result<String, String>) {
        let mut audit = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if audit.outcome_written {
            return;
        }
        audit.outcome_written = true;
        let (sev, text) = match outcome {
            Ok(s) => (Severity::Notice, format!("ok: {s}")),
            Err(e) => (Severity::Warning, format!("failed: {e}")),
        };
        if let Err(e) = audit.log.send(sev, &self.record, &text) {
            eprintln!("gopeek: warning: {e}");
        }
    }
}

impl Drop for SudoSession {
    /// The guard behind "one outcome line per allowed inspection": if
    /// `main` left before [`SudoSession::finish`] (an error returned with
    /// `?` between `begin` and the snapshot, or a panic), the audit trail
    /// still says the inspection failed rather than ending at "allowed".
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            PANICKED
        } else {
            EXITED_EARLY
        };
        self.finish(Err(why.to_string()));
    }
}

/// What changed between the facts the policy decided on and the facts of
/// the seized target (`None`: the same target, as far as the policy can
/// tell).
fn changed(before: &TargetFacts, now: &TargetFacts) -> Option<String> {
    if now.uids != before.uids {
        Some(format!("uids {:?} became {:?}", before.uids, now.uids))
    } else if now.exe != before.exe {
        Some(format!("executable {} became {}", before.exe, now.exe))
    } else if now.cgroup != before.cgroup {
        Some("its cgroup changed".to_string())
    } else {
        None
    }
}

/// Logs a refusal (best effort: the refusal stands even if the log is
/// unreachable) and returns it.
fn refuse(audit: Result<AuditLog, AuditError>, record: &AttachRecord, e: SudoError) -> SudoError {
    match audit {
        Ok(mut a) => {
            if let Err(le) = a.send(Severity::Warning, record, &format!("refused: {e}")) {
                eprintln!("gopeek: warning: {le}");
            }
        }
        Err(le) => eprintln!("gopeek: warning: {le}"),
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// An allowed session whose audit lines go to the returned socket.
    fn session() -> (SudoSession, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let s = SudoSession {
            ctx: SudoContext {
                uid: 1000,
                gid: 1000,
                user: "alice".into(),
            },
            facts: TargetFacts {
                pid: 7,
                uids: [1000; 4],
                exe: "/usr/bin/app".into(),
                cgroup: None,
            },
            decision: Decision {
                show_memory: true,
                profile: true,
                reason: "test".into(),
            },
            audit: Mutex::new(Audit {
                log: AuditLog::from_datagram(ours),
                outcome_written: false,
            }),
            record: AttachRecord {
                user: "alice".into(),
                uid: 1000,
                pid: 7,
                target_uid: Some(1000),
                exe: Some("/usr/bin/app".into()),
                command: vec!["gopeek".into()],
            },
        };
        (s, theirs)
    }

    fn lines(sock: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn a_session_dropped_without_finish_logs_one_failure() {
        let (s, log) = session();
        drop(s);
        let l = lines(&log);
        assert_eq!(l.len(), 1, "{l:#?}");
        assert!(l[0].starts_with("<84>"), "{}", l[0]);
        assert!(
            l[0].contains("outcome=\"failed: gopeek exited before the snapshot finished\""),
            "{}",
            l[0]
        );
    }

    #[test]
    fn finish_writes_exactly_one_outcome_line() {
        let (s, log) = session();
        s.finish(Ok("pause_us=1 goroutines=2".into()));
        s.finish(Err("late".into()));
        drop(s);
        let l = lines(&log);
        assert_eq!(l.len(), 1, "{l:#?}");
        assert!(l[0].starts_with("<85>"), "{}", l[0]);
        assert!(
            l[0].contains("outcome=\"ok: pause_us=1 goroutines=2\""),
            "{}",
            l[0]
        );
    }

    #[test]
    fn a_panic_after_begin_still_logs_the_outcome() {
        let (s, log) = session();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _s = s;
            panic!("boom");
        }));
        assert!(r.is_err());
        let l = lines(&log);
        assert_eq!(l.len(), 1, "{l:#?}");
        assert!(l[0].contains("failed: gopeek panicked before"), "{}", l[0]);
    }

    #[test]
    fn a_target_that_changed_since_the_check_is_noticed() {
        let before = TargetFacts {
            pid: 7,
            uids: [1000; 4],
            exe: "/usr/bin/app".into(),
            cgroup: Some("/system.slice/app.service".into()),
        };
        assert_eq!(changed(&before, &before.clone()), None);
        // exec of a set-uid program: the saved and effective uids change.
        let mut setuid = before.clone();
        setuid.uids = [1000, 0, 0, 0];
        assert!(changed(&before, &setuid).unwrap().contains("uids"));
        let mut exec = before.clone();
        exec.exe = "/usr/bin/other".into();
        assert!(changed(&before, &exec).unwrap().contains("/usr/bin/other"));
        let mut moved = before.clone();
        moved.cgroup = Some("/user.slice".into());
        assert!(changed(&before, &moved).unwrap().contains("cgroup"));
        let e = PolicyError::TargetChanged {
            pid: 7,
            what: changed(&before, &exec).unwrap(),
        };
        assert!(
            e.to_string().contains("changed while gopeek attached"),
            "{e}"
        );
    }
}
