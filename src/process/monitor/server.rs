//! The root end: a forked child of gopeek that stays root, holds the
//! ptrace attachment, and does exactly what [`Request`] lists, for one
//! target, one hold at a time. It ends (releasing any hold) on EOF, on a
//! malformed request, or on a request out of order.
//!
//! One budget bounds every hold of a session together: [`MAX_PAUSE_CAP`]
//! (60 s) of held time in total, whatever the reader asks and however
//! many holds it asks for (`leaks` samples, `sched --interval` readings).
//! Each hold gets at most what is left; once it is spent a hold is
//! refused (exit 6), so the dropped reader can never keep the target
//! stopped for longer in total than one capped hold could.

use super::fds::send_with_fd;
use super::wire::{recv, send, Reply, Request};
use super::Verify;
use crate::exit::ExitStatus;
use crate::process::perf::{open_sampling_event, PerfOptions};
use crate::process::{proc_fs, SeizeOptions, SeizedProcess};
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Longest the monitor holds the target in one session, over all holds
/// together, whatever the reader asks.
pub(super) const MAX_PAUSE_CAP: Duration = Duration::from_secs(60);

/// Serves requests until the reader goes away; every hold is released
/// before this returns.
pub(super) fn serve(mut sock: UnixStream, pid: i32, verify: &Verify, mut perf: Option<PerfGrants>) {
    let mut held: Option<(SeizedProcess, Instant)> = None;
    let mut budget = SessionBudget::default();
    while let Ok(frame) = recv(&mut sock) {
        let Some(req) = Request::decode(&frame) else {
            break;
        };
        let mut fd: Option<OwnedFd> = None;
        let reply = match req {
            Request::OpenPerf {
                tid,
                period_ns,
                stack_bytes,
                kernel,
            } => {
                // Only a profiling session opens events.
                let Some(grants) = perf.as_mut() else {
                    break;
                };
                let asked = Asked {
                    period_ns,
                    stack_bytes,
                    kernel,
                };
                match grants.open(pid, tid, asked, verify) {
                    Ok(f) => {
                        fd = Some(f);
                        Reply::PerfFd
                    }
                    Err(reply) => reply,
                }
            }
            Request::Hold { max_pause, only } => {
                if held.is_some() {
                    break;
                }
                let t0 = Instant::now();
                let granted = match budget.grant(max_pause) {
                    None => Err(spent_reply(pid)),
                    Some(max_pause) => hold(pid, max_pause, only, verify),
                };
                match granted {
                    Ok(s) => {
                        let r = Reply::Held(s.threads().to_vec());
                        held = Some((s, t0));
                        r
                    }
                    Err(reply) => {
                        budget.charge(t0.elapsed());
                        reply
                    }
                }
            }
            Request::Budget => {
                Reply::Budget(held.as_ref().is_some_and(|(h, _)| h.check_budget().is_ok()))
            }
            Request::Release => Reply::Released(match held.take() {
                Some((h, t0)) => {
                    let stats = h.detach();
                    budget.charge(t0.elapsed());
                    stats
                }
                None => Default::default(),
            }),
        };
        let sent = match &fd {
            Some(f) => send_with_fd(&mut sock, &reply.encode(), f.as_raw_fd()),
            None => send(&mut sock, &reply.encode()),
        };
        // The reader has its copy; the monitor keeps none.
        drop(fd);
        if sent.is_err() {
            break;
        }
    }
    drop(held);
}

/// Most perf events the monitor opens in one session.
const MAX_EVENTS: usize = 4096;
/// Shortest sampling period it accepts: 10 kHz, `--rate`'s maximum.
const MIN_PERIOD_NS: u64 = 100_000;
/// Most stack bytes per sample it accepts.
const MAX_STACK_BYTES: u32 = 65_528;

/// What one `OpenPerf` asks for besides the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    period_ns: u64,
    stack_bytes: u32,
    kernel: bool,
}

/// The perf events of a profiling session: the reader opened (as root,
/// before its drop) the events of the threads that existed when the
/// monitor started; the monitor opens one event for each thread created
/// since, at most once per thread, all with the options of the first
/// request. So the dropped reader can never put more than one sampling
/// event on a thread through the monitor, nor raise the rate it started
/// with, nor reach a thread of another process.
#[derive(Debug)]
pub(super) struct PerfGrants {
    /// The target's threads when the monitor started.
    initial: BTreeSet<i32>,
    opened: BTreeSet<i32>,
    asked: Option<Asked>,
}

impl PerfGrants {
    /// Grants for target `pid`, taking its current threads as the ones
    /// the reader opens itself.
    pub(super) fn new(pid: i32) -> PerfGrants {
        PerfGrants {
            initial: proc_fs::thread_ids(pid)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            opened: BTreeSet::new(),
            asked: None,
        }
    }

    /// Whether `tid` may get an event with `asked` (`Err`: why not).
    fn check(&self, tasks: &[i32], tid: i32, asked: Asked) -> Result<(), String> {
        if asked.period_ns < MIN_PERIOD_NS || asked.stack_bytes > MAX_STACK_BYTES {
            return Err(format!(
                "a sampling period of {} ns with {} stack bytes is outside what gopeek asks",
                asked.period_ns, asked.stack_bytes
            ));
        }
        if self.asked.is_some_and(|a| a != asked) {
            return Err("the sampling options changed during the session".into());
        }
        if !tasks.contains(&tid) {
            return Err(format!("thread {tid} is not a thread of the target"));
        }
        if self.initial.contains(&tid) || self.opened.contains(&tid) {
            return Err(format!("thread {tid} already has its event"));
        }
        if self.opened.len() >= MAX_EVENTS {
            return Err(format!("at most {MAX_EVENTS} events per session"));
        }
        Ok(())
    }

    /// Opens the event of `tid`, a thread of `pid` (checked against
    /// `/proc/PID/task` and the policy's re-check).
    fn open(
        &mut self,
        pid: i32,
        tid: i32,
        asked: Asked,
        verify: &Verify,
    ) -> Result<OwnedFd, Reply> {
        let refuse = |errno: i32, why: String| Reply::Error {
            code: crate::exit::PERMISSION,
            message: format!("errno={errno}: {why}"),
        };
        let tasks = proc_fs::thread_ids(pid).unwrap_or_default();
        self.check(&tasks, tid, asked)
            .map_err(|why| refuse(libc::EPERM, why))?;
        verify(pid).map_err(|(_, why)| refuse(libc::EPERM, why))?;
        let opts = PerfOptions {
            period_ns: asked.period_ns,
            stack_bytes: asked.stack_bytes,
            ring_pages: 0,
        };
        let fd = open_sampling_event(&opts, asked.kernel, tid)
            .map_err(|e| refuse(e as i32, format!("perf_event_open: {e}")))?;
        self.asked = Some(asked);
        self.opened.insert(tid);
        Ok(fd)
    }
}

/// Held time of the session so far, each hold counted from before its
/// seize to after its detach (never under-counted), against
/// [`MAX_PAUSE_CAP`].
#[derive(Debug, Default)]
struct SessionBudget {
    spent: Duration,
}

impl SessionBudget {
    /// The budget of the next hold: what was asked, at most what is left;
    /// `None` once nothing is left.
    fn grant(&self, asked: Duration) -> Option<Duration> {
        let left = MAX_PAUSE_CAP.saturating_sub(self.spent);
        (!left.is_zero()).then(|| asked.min(left))
    }

    /// Counts a hold's time.
    fn charge(&mut self, held: Duration) {
        self.spent = self.spent.saturating_add(held);
    }
}

/// Seizes the target (only threads of it: a tid that is not one of its
/// tasks is dropped), then runs the policy's re-check on the held target.
fn hold(
    pid: i32,
    max_pause: Duration,
    only: Option<Vec<i32>>,
    verify: &Verify,
) -> Result<SeizedProcess, Reply> {
    let only = match only {
        None => None,
        Some(tids) => {
            let tasks = proc_fs::thread_ids(pid).unwrap_or_default();
            Some(tids.into_iter().filter(|t| tasks.contains(t)).collect())
        }
    };
    let opts = SeizeOptions {
        max_pause,
        // The monitor ignores job-control signals altogether.
        defer_stop_signals: false,
        only_threads: only,
    };
    let seized = SeizedProcess::seize(pid, &opts).map_err(|e| Reply::Error {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    if let Err((code, message)) = verify(pid) {
        drop(seized);
        return Err(Reply::Error { code, message });
    }
    Ok(seized)
}

/// The refusal once the session's hold budget is spent.
fn spent_reply(pid: i32) -> Reply {
    Reply::Error {
        code: crate::exit::PAUSE_BUDGET,
        message: format!(
            "process {pid}: the root monitor's hold budget for this run ({} s of holds in total) is spent, so the target was not held again; run gopeek again for more readings",
            MAX_PAUSE_CAP.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_events_only_for_new_threads_of_the_target_once_each() {
        let mut g = PerfGrants {
            initial: [10, 11].into_iter().collect(),
            opened: BTreeSet::new(),
            asked: None,
        };
        let a = Asked {
            period_ns: 10_000_000,
            stack_bytes: 16384,
            kernel: true,
        };
        let tasks = [10, 11, 12, 13];
        assert!(g.check(&tasks, 12, a).is_ok());
        // Threads the reader opened before its drop, and strangers.
        assert!(g.check(&tasks, 10, a).unwrap_err().contains("already"));
        assert!(g.check(&tasks, 99, a).unwrap_err().contains("not a thread"));
        // Once per thread, with the first request's options.
        g.opened.insert(12);
        g.asked = Some(a);
        assert!(g.check(&tasks, 12, a).unwrap_err().contains("already"));
        let faster = Asked {
            period_ns: 1_000_000,
            ..a
        };
        assert!(g.check(&tasks, 13, faster).unwrap_err().contains("changed"));
        let wild = Asked {
            period_ns: 1_000,
            ..a
        };
        assert!(g.check(&tasks, 13, wild).is_err());
        assert!(g.check(&tasks, 13, a).is_ok());
    }

    #[test]
    fn holds_share_one_session_budget() {
        let mut b = SessionBudget::default();
        let ms = Duration::from_millis;
        assert_eq!(b.grant(ms(2000)), Some(ms(2000)));
        // Asked for more than the cap: the cap.
        assert_eq!(b.grant(Duration::from_secs(600)), Some(MAX_PAUSE_CAP));
        // Many short holds (sched --interval, leaks) add up...
        for _ in 0..59 {
            b.charge(ms(1000));
        }
        assert_eq!(b.grant(ms(2000)), Some(ms(1000)));
        b.charge(ms(999));
        assert_eq!(b.grant(ms(2000)), Some(ms(1)));
        // ...to the cap, after which nothing more is held.
        b.charge(ms(5));
        assert_eq!(b.grant(ms(2000)), None);
        assert_eq!(b.grant(Duration::ZERO), None);
    }
}
