//! A root watchdog that keeps "never left stopped" true after the
//! privilege drop.
//!
//! Under sudo, gopeek drops to the invoking user while it still holds the
//! target (the memory is read after the drop). From that moment the
//! invoking user may signal gopeek, and `kill -STOP` would freeze gopeek's
//! tracer thread too, so `--max-pause` could no longer release the target:
//! the user could keep a process they are only allowed to *inspect*
//! stopped for as long as they like.
//!
//! [`Watchdog::arm`] therefore forks, while gopeek is still root, a tiny
//! child that stays root (the invoking user cannot signal or ptrace it).
//! It waits on a pipe. If gopeek closes the pipe (disarm, exit or death)
//! the child exits. If the deadline passes first and the target is still
//! traced by a thread of gopeek, the child sends gopeek `SIGKILL`, which
//! works on a stopped process; the kernel then detaches every tracee of
//! the dead tracer, so the target runs again. A gopeek that is merely
//! slow after detaching is left alone.
//!
//! The child leaves the terminal's session (`setsid`) and ignores job
//! control and terminal signals, so Ctrl-Z or Ctrl-C at the terminal cannot
//! stop it either; SIGSTOP and SIGKILL need its uid, root.
//!
//! The child runs between `fork` and `_exit` in a copy of a multi-threaded
//! process, so it only makes raw system calls on stack buffers: no
//! allocation, no locks, no Rust I/O.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The armed watchdog; dropping it (or [`Watchdog::disarm`]) stops it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    write_end: Option<OwnedFd>,
    child: libc::pid_t,
}

/// `/proc/<n>/status` into `buf`, NUL-terminated, without allocating.
fn status_path(n: i64, buf: &mut [u8; 48]) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut v = n.max(0);
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut i = 0;
    for &b in b"/proc/" {
        buf[i] = b;
        i += 1;
    }
    for k in (0..len).rev() {
        buf[i] = digits[k];
        i += 1;
    }
    for &b in b"/status\0" {
        buf[i] = b;
        i += 1;
    }
}

/// The number after `key` (e.g. `b"\nTracerPid:"`) in a status text.
fn field(text: &[u8], key: &[u8]) -> Option<i64> {
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let mut v: i64 = 0;
    let mut seen = false;
    for &b in &text[at..] {
        match b {
            b' ' | b'\t' if !seen => continue,
            b'0'..=b'9' => {
                v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
                seen = true;
            }
            _ => break,
        }
    }
    seen.then_some(v)
}

/// Reads a field of `/proc/<n>/status` with raw syscalls only.
fn status_field(n: i64, key: &[u8]) -> Option<i64> {
    let mut path = [0u8; 48];
    status_path(n, &mut path);
    let mut buf = [0u8; 4096];
    // SAFETY: NUL-terminated path on the stack; read into a stack buffer.
    let len = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        r
    };
    if len <= 0 {
        return None;
    }
    field(&buf[..len as usize], key)
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// The child: wait for the pipe to close or the deadline; at the deadline,
/// kill `parent` if it still traces `target`. Never returns.
fn child_main(read_fd: libc::c_int, parent: libc::pid_t, target: i32, after_ms: i64) -> ! {
    // Out of the terminal's reach: the invoking user could otherwise stop
    // the watchdog with Ctrl-Z (tty signals ignore uids) after stopping
    // gopeek with `kill -STOP`. A new session gets no tty signals, and the
    // job-control and terminal signals are ignored in case one is sent.
    // SAFETY: setsid and signal(SIG_IGN) are async-signal-safe.
    unsafe {
        libc::setsid();
        for sig in [
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let deadline = now_ms() + after_ms;
    loop {
        let left = deadline - now_ms();
        if left <= 0 {
            break;
        }
        let mut p = libc::pollfd {
            fd: read_fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack.
        let r = unsafe { libc::poll(&mut p, 1, left.min(i64::from(i32::MAX)) as i32) };
        if r > 0 {
            // EOF (or data): gopeek is done holding, or gone.
            // SAFETY: _exit never returns and runs no Rust code.
            unsafe { libc::_exit(0) };
        }
        // r == 0: timeout (loop re-checks); r < 0: EINTR, retry.
    }
    let tracer = status_field(i64::from(target), b"\nTracerPid:").unwrap_or(0);
    if tracer != 0 && status_field(tracer, b"\nTgid:") == Some(i64::from(parent)) {
        // SAFETY: kill with a pid and a signal number.
        unsafe { libc::kill(parent, libc::SIGKILL) };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

impl Watchdog {
    /// Forks the root watchdog for `target`, firing `after` from now.
    /// Call while still privileged, right before dropping privileges.
    pub(crate) fn arm(target: i32, after: Duration) -> io::Result<Watchdog> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 into a local array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned here.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: getpid cannot fail.
        let parent = unsafe { libc::getpid() };
        let after_ms = after.as_millis().min(i64::MAX as u128) as i64;
        // SAFETY: the child only runs `child_main`, which uses raw syscalls
        // on stack memory and ends in _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: closing our copy of the write end so EOF is seen.
            unsafe { libc::close(write_end.as_raw_fd()) };
            child_main(read_end.as_raw_fd(), parent, target, after_ms);
        }
        drop(read_end);
        Ok(Watchdog {
            write_end: Some(write_end),
            child: pid,
        })
    }

    /// Stops the watchdog (the target has been released) and reaps it.
    pub(crate) fn disarm(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.write_end.take().is_some() {
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(self.child, std::ptr::null_mut(), 0) };
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing_without_allocation() {
        let mut p = [0u8; 48];
        status_path(12345, &mut p);
        assert_eq!(&p[..20], b"/proc/12345/status\0\0");
        status_path(0, &mut p);
        assert_eq!(&p[..15], b"/proc/0/status\0");
        let t = b"Name:\tx\nTgid:\t77\nPid:\t78\nTracerPid:\t0\n";
        assert_eq!(field(t, b"\nTgid:"), Some(77));
        assert_eq!(field(t, b"\nTracerPid:"), Some(0));
        assert_eq!(field(t, b"\nNope:"), None);
        assert_eq!(
            status_field(i64::from(std::process::id()), b"\nTgid:"),
            Some(i64::from(std::process::id()))
        );
    }

    #[test]
    fn disarmed_watchdog_exits_without_killing() {
        // Target: ourselves, untraced: even at the deadline nothing is killed.
        let w = Watchdog::arm(std::process::id() as i32, Duration::from_millis(10)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        w.disarm();
        let w = Watchdog::arm(std::process::id() as i32, Duration::from_secs(60)).unwrap();
        let t = std::time::Instant::now();
        w.disarm();
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
