//! Thin, raw syscall wrappers used by the rest of `process`.
//!
//! `ptrace` and `waitpid` are called through `libc::syscall`/`libc::waitpid`
//! directly rather than through nix: nix's `detach` only takes the standard
//! `Signal` enum (a real-time signal could not be re-injected) and its
//! `WaitStatus` decoding fails on real-time stop signals. Raw numbers keep
//! every signal representable. Only *reading* requests have wrappers here,
//! plus SEIZE/INTERRUPT/DETACH; there is deliberately no wrapper for any
//! request that writes the target.

use nix::errno::Errno;

#[cfg(target_arch = "x86_64")]
pub(crate) const PTRACE_GETREGS: u32 = 12;
pub(crate) const PTRACE_DETACH: u32 = 17;
#[cfg(target_arch = "aarch64")]
pub(crate) const PTRACE_GETREGSET: u32 = 0x4204;
pub(crate) const PTRACE_SEIZE: u32 = 0x4206;
pub(crate) const PTRACE_INTERRUPT: u32 = 0x4207;
/// `status >> 16` of a stop caused by PTRACE_INTERRUPT or by a group-stop of
/// a PTRACE_SEIZE'd tracee.
pub(crate) const PTRACE_EVENT_STOP: i32 = 128;

/// Issues `ptrace(req, tid, addr, data)` and maps -1 to the errno.
///
/// # Safety
/// `addr`/`data` must be valid for `req` (a pointer to a buffer of the
/// right size where the request writes into our memory).
pub(crate) unsafe fn ptrace(
    req: u32,
    tid: i32,
    addr: usize,
    data: usize,
) -> Result<libc::c_long, Errno> {
    Errno::clear();
    let r = libc::syscall(
        libc::SYS_ptrace,
        req as libc::c_long,
        tid as libc::c_long,
        addr,
        data,
    );
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// `waitpid(pid, &status, flags)`; `Ok(None)` for WNOHANG with nothing ready.
pub(crate) fn waitpid(pid: i32, flags: i32) -> Result<Option<(i32, i32)>, Errno> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer for the duration of the call.
    let r = unsafe { libc::waitpid(pid, &mut status, flags) };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        tid => Ok(Some((tid, status))),
    }
}

/// Decoded `waitpid` status, limited to what a tracer of seized threads sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitEvent {
    /// The thread is gone (exited or killed).
    Gone,
    /// A ptrace-stop: the stop signal and the PTRACE_EVENT_* in bits 16..24.
    Stopped { sig: i32, event: i32 },
    /// Anything else (WIFCONTINUED and the like): not a state change we track.
    Other,
}

pub(crate) fn decode_status(status: i32) -> WaitEvent {
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        WaitEvent::Gone
    } else if libc::WIFSTOPPED(status) {
        WaitEvent::Stopped {
            sig: libc::WSTOPSIG(status),
            event: (status >> 16) & 0xff,
        }
    } else {
        WaitEvent::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_stop_statuses() {
        // PTRACE_INTERRUPT stop: SIGTRAP | PTRACE_EVENT_STOP << 8, in the "stopped" encoding.
        let st = ((libc::SIGTRAP | (PTRACE_EVENT_STOP << 8)) << 8) | 0x7f;
        assert_eq!(
            decode_status(st),
            WaitEvent::Stopped {
                sig: libc::SIGTRAP,
                event: PTRACE_EVENT_STOP
            }
        );
        // Signal-delivery-stop of a real-time signal.
        let rt = 40;
        assert_eq!(
            decode_status((rt << 8) | 0x7f),
            WaitEvent::Stopped { sig: rt, event: 0 }
        );
        // exit(3) and death by SIGKILL.
        assert_eq!(decode_status(3 << 8), WaitEvent::Gone);
        assert_eq!(decode_status(libc::SIGKILL), WaitEvent::Gone);
        assert_eq!(decode_status(0xffff), WaitEvent::Other);
    }
}
