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

use super::wire::{recv, send, Reply, Request};
use super::Verify;
use crate::exit::ExitStatus;
use crate::process::{proc_fs, SeizeOptions, SeizedProcess};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Longest the monitor holds the target in one session, over all holds
/// together, whatever the reader asks.
pub(super) const MAX_PAUSE_CAP: Duration = Duration::from_secs(60);

/// Serves requests until the reader goes away; every hold is released
/// before this returns.
pub(super) fn serve(mut sock: UnixStream, pid: i32, verify: &Verify) {
    let mut held: Option<(SeizedProcess, Instant)> = None;
    let mut budget = SessionBudget::default();
    while let Ok(frame) = recv(&mut sock) {
        let Some(req) = Request::decode(&frame) else {
            break;
        };
        let reply = match req {
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
        if send(&mut sock, &reply.encode()).is_err() {
            break;
        }
    }
    drop(held);
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
