//! What happens to a held target when gopeek itself gets a signal.
//!
//! # Design: let the kernel detach
//!
//! gopeek installs **no** handler for SIGINT, SIGTERM, SIGHUP or SIGPIPE.
//! When one of them kills gopeek while it holds a target, the kernel
//! detaches every tracee of the exiting tracer thread (`exit_ptrace`):
//! threads held in a PTRACE_INTERRUPT stop resume, threads that were in a
//! group-stop before gopeek came go back to it, and because gopeek never
//! sets `PTRACE_O_EXITKILL` nothing is killed. The same path covers
//! `kill -9`, which no handler could catch anyway, and `panic = "abort"`.
//! A panic with unwinding (the release profile keeps `panic = "unwind"`)
//! runs `Drop` for [`super::SeizedProcess`], which detaches explicitly; a
//! panic hook is therefore not needed.
//!
//! Rust programs start with SIGPIPE ignored: a write to a closed pipe
//! returns EPIPE, which ends in an error and thus in `Drop` (and gopeek
//! writes its output only after detach anyway). If SIGPIPE is at its
//! default (killing) disposition, the kernel path above applies.
//!
//! Verified on Linux 6.18 x86_64 by `tests/process_attach.rs`, which
//! seizes a Go target from a helper process (the test binary re-run) and
//! then:
//!
//! * sends the helper SIGKILL, SIGINT, SIGTERM, SIGHUP, or SIGPIPE at its
//!   default disposition: the helper dies of it, every target thread leaves
//!   the `t` state, `TracerPid` drops to 0 and the heartbeat resumes;
//! * sends SIGPIPE as Rust leaves it (ignored): the helper keeps holding,
//!   then detaches normally;
//! * kills the helper with SIGKILL while the target was already stopped by
//!   SIGSTOP: the target stays in `T` (group-stop), untraced, and runs
//!   again on SIGCONT;
//! * sends SIGTSTP to a helper that defers it: the helper does not stop
//!   while holding; it stops right after detaching, with the target running;
//! * panics while holding (in the test process itself, caught): the target
//!   is released during unwinding while the process lives on.
//!
//! # The one signal that needs help: SIGTSTP
//!
//! A *stopped* gopeek does not exit, so the kernel does not detach, and a
//! target held at that moment would stay stopped as long as gopeek does.
//! Ctrl-Z (SIGTSTP) is the realistic way for that to happen, so
//! `StopSignalDeferral` catches SIGTSTP while a target is held and
//! re-raises it after detach; gopeek then stops as asked, with the target
//! running. SIGSTOP cannot be caught: `kill -STOP` of gopeek during the
//! (short) hold keeps the target stopped until gopeek is
//! continued (`kill -CONT`) or killed (any signal that kills it, including
//! `kill -9`, resumes the target). SIGTTIN/SIGTTOU are not deferred: they
//! arise only from terminal I/O by a background gopeek, which does no
//! terminal I/O while it holds a target, and catching them would turn such
//! I/O into a busy loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static PENDING_TSTP: AtomicBool = AtomicBool::new(false);

struct DeferState {
    users: usize,
    saved: Option<libc::sigaction>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, a mask and
// flags); moving it between threads is fine.
unsafe impl Send for DeferState {}

static DEFER: Mutex<DeferState> = Mutex::new(DeferState {
    users: 0,
    saved: None,
});

extern "C" fn on_tstp(_sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    PENDING_TSTP.store(true, Ordering::SeqCst);
}

/// While at least one of these guards lives, SIGTSTP sent to gopeek is
/// recorded instead of stopping it; when the last guard is dropped the
/// previous disposition is restored and a recorded SIGTSTP is raised again
/// (unless it was ignored before), so Ctrl-Z takes effect right after the
/// target was released. [`super::SeizedProcess`] holds one when
/// [`super::SeizeOptions::defer_stop_signals`] is set.
#[derive(Debug)]
pub(crate) struct StopSignalDeferral {
    _private: (),
}

impl StopSignalDeferral {
    /// Starts deferring SIGTSTP (process-wide; nested guards share one
    /// handler).
    pub fn new() -> Self {
        let mut st = DEFER.lock().unwrap_or_else(|e| e.into_inner());
        if st.users == 0 {
            // SAFETY: sigaction structs are plain data; zeroed is a valid
            // starting point and every field we rely on is set below.
            unsafe {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_tstp as *const () as libc::sighandler_t;
                new.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGTSTP, &new, &mut old) == 0 {
                    st.saved = Some(old);
                }
            }
        }
        st.users += 1;
        StopSignalDeferral { _private: () }
    }
}

impl Drop for StopSignalDeferral {
    fn drop(&mut self) {
        let mut st = DEFER.lock().unwrap_or_else(|e| e.into_inner());
        st.users = st.users.saturating_sub(1);
        if st.users > 0 {
            return;
        }
        if let Some(old) = st.saved.take() {
            // SAFETY: restores the disposition saved by `new`.
            unsafe { libc::sigaction(libc::SIGTSTP, &old, std::ptr::null_mut()) };
            if PENDING_TSTP.swap(false, Ordering::SeqCst) && old.sa_sigaction != libc::SIG_IGN {
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGTSTP) };
            }
        }
    }
}

/// The termination signals (SIGINT, SIGTERM, SIGHUP, SIGPIPE) that have a
/// *handler* installed in this process. The design above relies on them
/// being default (killing: the kernel detaches) or ignored; a handler that
/// does not lead to `Drop` of the [`super::SeizedProcess`] would delay the
/// release until the `max_pause` deadline. `tests/process_attach.rs`
/// asserts that there is none, so a handler added later is noticed.
pub fn termination_signals_with_handlers() -> Vec<i32> {
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE]
        .into_iter()
        .filter(|&sig| {
            // SAFETY: querying (null new action) only fills `old`.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction != libc::SIG_DFL
                    && old.sa_sigaction != libc::SIG_IGN
            }
        })
        .collect()
}
