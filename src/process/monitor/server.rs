//! The root end: a forked child of gopeek that stays root, holds the
//! ptrace attachment, and does exactly what [`Request`] lists, for one
//! target, one hold at a time. It ends (releasing any hold) on EOF, on a
//! malformed request, or on a request out of order.

use super::wire::{recv, send, Reply, Request};
use super::Verify;
use crate::exit::ExitStatus;
use crate::process::{proc_fs, SeizeOptions, SeizedProcess};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Longest hold the monitor grants, whatever the reader asks.
pub(super) const MAX_PAUSE_CAP: Duration = Duration::from_secs(60);

/// Serves requests until the reader goes away; every hold is released
/// before this returns.
pub(super) fn serve(mut sock: UnixStream, pid: i32, verify: &Verify) {
    let mut held: Option<SeizedProcess> = None;
    while let Ok(frame) = recv(&mut sock) {
        let Some(req) = Request::decode(&frame) else {
            break;
        };
        let reply = match req {
            Request::Hold { max_pause, only } => {
                if held.is_some() {
                    break;
                }
                match hold(pid, max_pause, only, verify) {
                    Ok(s) => {
                        let r = Reply::Held(s.threads().to_vec());
                        held = Some(s);
                        r
                    }
                    Err(reply) => reply,
                }
            }
            Request::Budget => {
                Reply::Budget(held.as_ref().is_some_and(|h| h.check_budget().is_ok()))
            }
            Request::Release => {
                Reply::Released(held.take().map(|h| h.detach()).unwrap_or_default())
            }
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
        max_pause: max_pause.min(MAX_PAUSE_CAP),
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
