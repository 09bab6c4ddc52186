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
    // Held time of the session so far (each hold from before its seize to
    // after its detach, so never under-counted).
    let mut spent = Duration::ZERO;
    while let Ok(frame) = recv(&mut sock) {
        let Some(req) = Request::decode(&frame) else {
            break;
        };
        let reply = match req {
            Request::Hold { max_pause, only } => {
                if held.is_some() {
                    break;
                }
                let left = MAX_PAUSE_CAP.saturating_sub(spent);
                let t0 = Instant::now();
                let granted = if left.is_zero() {
                    Err(spent_reply(pid))
                } else {
                    hold(pid, max_pause.min(left), only, verify)
                };
                match granted {
                    Ok(s) => {
                        let r = Reply::Held(s.threads().to_vec());
                        held = Some((s, t0));
                        r
                    }
                    Err(reply) => {
                        spent += t0.elapsed();
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
                    spent += t0.elapsed();
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
