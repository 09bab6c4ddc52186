//! Privilege separation under sudo, as OpenSSH splits its daemon: a tiny
//! root *monitor* that opens nothing and parses nothing of the target, and
//! only seizes, reports registers, and releases on request; and the rest of
//! gopeek, dropped to the invoking user, which reads the target through
//! the `/proc/PID/mem` descriptor root opened and asks the monitor for each
//! hold. The reader can then read while the target runs, as the default
//! mode does without sudo, and take several snapshots (`leaks`) or hold
//! only the running threads (`--nonblocking`).
//!
//! The monitor is forked by [`Monitor::spawn`] while gopeek is still root
//! and still one thread (a fork of a multi-threaded process could inherit
//! a held lock). It leaves the terminal's session and ignores job-control
//! and terminal signals; the invoking user cannot signal or ptrace a root
//! process, so it cannot be stopped with a target held, and its own
//! `--max-pause` deadline (capped by what is left of 60 s of holds per
//! session, all holds together) releases a hold whatever the reader does. It serves one target (the pid the policy allowed), one
//! hold at a time, drops tids that are not that target's threads, re-runs
//! the policy's check on every held target, and ends on EOF or on any
//! malformed or out-of-order request, releasing what it holds. If it dies,
//! the kernel detaches its tracees; if the reader dies, the monitor sees
//! EOF and releases.

mod fds;
mod server;
mod wire;

use super::perf::{Opener, PerfOptions};
use super::{PauseStats, ProcessError, ThreadState};
use nix::errno::Errno;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wire::{recv, send, Reply, Request};

/// The policy's re-check, run by the monitor (as root) on each held
/// target: `Err((exit code, message))` refuses the hold.
pub type Verify = dyn Fn(i32) -> Result<(), (u8, String)> + Send + Sync;

/// The reader's end of the monitor.
pub struct Monitor {
    pid: i32,
    child: libc::pid_t,
    sock: Mutex<UnixStream>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("pid", &self.pid)
            .field("child", &self.child)
            .finish()
    }
}

/// Threads of this process, from `/proc/self/status`.
fn own_threads() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

impl Monitor {
    /// Forks the root monitor for target `pid`. Must be called while
    /// gopeek is root and has a single thread.
    pub fn spawn(pid: i32, verify: Box<Verify>) -> Result<Monitor, ProcessError> {
        Self::spawn_for(pid, verify, false)
    }

    /// [`Monitor::spawn`] for a profiling session (`record`, `top`): the
    /// monitor also opens a sampling perf event, on request, for each
    /// thread the target creates after the monitor started (once per
    /// thread, only the target's), and passes its descriptor to the
    /// reader. Its seccomp filter then admits `perf_event_open` in the
    /// per-thread form only, as `record`'s own.
    pub fn spawn_profiling(pid: i32, verify: Box<Verify>) -> Result<Monitor, ProcessError> {
        Self::spawn_for(pid, verify, true)
    }

    fn spawn_for(pid: i32, verify: Box<Verify>, profiling: bool) -> Result<Monitor, ProcessError> {
        let fail = |what: String| {
            ProcessError::TracerThread(format!("cannot start the root monitor: {what}"))
        };
        match own_threads() {
            Some(1) => {}
            n => return Err(fail(format!("gopeek runs {n:?} threads already"))),
        }
        let (ours, theirs) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
        // SAFETY: gopeek is single-threaded here (checked above), so the
        // child is a full copy that may allocate and spawn threads.
        match unsafe { libc::fork() } {
            -1 => Err(fail(std::io::Error::last_os_error().to_string())),
            0 => {
                drop(ours);
                // Never return into the parent's frames: whatever happens,
                // the child ends here.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    child_main(theirs, pid, &*verify, profiling)
                }));
                // SAFETY: _exit ends the child without running the
                // parent's destructors (its audit session, its files).
                unsafe { libc::_exit(if r.is_ok() { 0 } else { 1 }) }
            }
            child => Ok(Monitor {
                pid,
                child,
                sock: Mutex::new(ours),
            }),
        }
    }

    /// The target it serves.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The monitor's process id (for tests and messages).
    pub fn monitor_pid(&self) -> i32 {
        self.child
    }

    fn call(&self, req: Request) -> Result<Reply, ProcessError> {
        let gone = |e: std::io::Error| {
            ProcessError::TracerThread(format!(
                "the root monitor is gone ({e}); the target was released"
            ))
        };
        let mut s = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        send(&mut *s, &req.encode()).map_err(gone)?;
        let frame = recv(&mut *s).map_err(gone)?;
        let reply = Reply::decode(&frame).ok_or_else(|| {
            ProcessError::TracerThread("the root monitor sent a malformed reply".into())
        })?;
        match reply {
            Reply::Error { code, message } => Err(ProcessError::Monitor { code, message }),
            r => Ok(r),
        }
    }

    /// Stops every thread of the target, or those named, for at most
    /// `max_pause`; the stopped threads and their registers.
    pub fn hold(
        &self,
        only: Option<Vec<i32>>,
        max_pause: Duration,
    ) -> Result<Vec<ThreadState>, ProcessError> {
        match self.call(Request::Hold { max_pause, only })? {
            Reply::Held(t) => Ok(t),
            _ => Err(ProcessError::TracerThread(
                "the root monitor answered out of turn".into(),
            )),
        }
    }

    /// Whether the current hold is still within its budget.
    pub fn within_budget(&self) -> bool {
        matches!(self.call(Request::Budget), Ok(Reply::Budget(true)))
    }

    /// A sampling perf event on `tid`, a thread the target created after
    /// the monitor started, opened by the monitor (as root) with the one
    /// attribute gopeek uses; refusals come back as EPERM.
    pub fn open_perf(&self, tid: i32, opts: &PerfOptions, kernel: bool) -> Result<OwnedFd, Errno> {
        let req = Request::OpenPerf {
            tid,
            period_ns: opts.period_ns,
            stack_bytes: opts.stack_bytes,
            kernel,
        };
        let mut s = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        send(&mut *s, &req.encode()).map_err(|_| Errno::EPIPE)?;
        let (frame, fd) = fds::recv_with_fd(&mut s).map_err(|_| Errno::EPIPE)?;
        match (Reply::decode(&frame), fd) {
            (Some(Reply::PerfFd), Some(fd)) => Ok(fd),
            (Some(Reply::Error { message, .. }), _) => Err(message
                .strip_prefix("errno=")
                .and_then(|m| m.split(':').next())
                .and_then(|n| n.parse().ok())
                .map_or(Errno::EPERM, Errno::from_raw)),
            _ => Err(Errno::EPROTO),
        }
    }

    /// [`Monitor::open_perf`] as a perf sampler's opener.
    pub fn perf_opener(self: &Arc<Self>) -> Opener {
        let m = Arc::clone(self);
        Box::new(move |tid, opts, kernel| m.open_perf(tid, opts, kernel))
    }

    /// Releases the current hold.
    pub fn release(&self) -> Result<PauseStats, ProcessError> {
        match self.call(Request::Release)? {
            Reply::Released(s) => Ok(s),
            _ => Err(ProcessError::TracerThread(
                "the root monitor answered out of turn".into(),
            )),
        }
    }
}

impl Drop for Monitor {
    /// Closes the socket (the monitor releases and exits) and reaps it.
    fn drop(&mut self) {
        let s = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = s.shutdown(std::net::Shutdown::Both);
        drop(s);
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(self.child, &mut status, 0) };
    }
}

/// The monitor process: out of the terminal's reach, stdin and stdout
/// closed (a pipe reading gopeek's output must not wait for it), the
/// read-only seccomp filters on, then the request loop.
fn child_main(sock: UnixStream, pid: i32, verify: &Verify, profiling: bool) {
    // The target's threads now: the reader opens their events itself.
    let perf = profiling.then(|| server::PerfGrants::new(pid));
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::setsid();
        for sig in [
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    let filter = if profiling {
        super::seccomp::install_sampling_filter()
    } else {
        super::seccomp::install_read_only_filter()
    };
    if filter.is_err() || super::seccomp::forbid_open_for_write().is_err() {
        return;
    }
    server::serve(sock, pid, verify, perf);
}
