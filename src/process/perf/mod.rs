//! Sampling a live process without stopping it: one `perf_event_open`
//! software task clock per thread of the target, each with a ring buffer
//! gopeek maps and drains. The kernel copies the user registers and the
//! top of the user stack into each sample; nothing is ever written to the
//! target, no signal is sent to it (no `sigtrap`), and no BPF is involved:
//! the attribute is built in one place ([`attr::sampling_attr`]) and pinned
//! by a unit test.
//!
//! Threads created while recording are picked up by [`PerfSampler::rescan`]
//! (the caller runs it every tick); samples the kernel had to drop (ring
//! full) are counted in [`PerfSampler::lost`], never silently ignored.

pub(crate) mod attr;
pub mod ring;

use crate::process::proc_fs;
use nix::errno::Errno;
use ring::{decode_record, split_records, RawSample, Record};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use thiserror::Error;

/// `PERF_FLAG_FD_CLOEXEC`: the only flag gopeek passes (the seccomp filter
/// of `gopeek record` admits exactly this).
pub const PERF_FLAG_FD_CLOEXEC: u64 = 8;
/// `PERF_EVENT_IOC_ENABLE`.
const IOC_ENABLE: u64 = 0x2400;
/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;

/// Why sampling could not start.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum PerfError {
    #[error("perf_event_open was refused ({errno}): {}", refused_hint(*errno))]
    Refused { errno: Errno },
    #[error("no thread of process {pid} could be sampled ({errno})")]
    NoThread { pid: i32, errno: Errno },
    #[error("cannot map the perf ring buffer ({errno}); raise `ulimit -l` or /proc/sys/kernel/perf_event_mlock_kb, or lower --rate")]
    Mmap { errno: Errno },
    #[error("cannot list the threads of process {pid}: {source}")]
    Threads { pid: i32, source: std::io::Error },
}

fn refused_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::ENOSYS => "the kernel has no perf events, or a seccomp profile (a container's default) refuses them; use --backend ptrace",
        _ => "this needs CAP_PERFMON (or root), or /proc/sys/kernel/perf_event_paranoid <= 2 for a process of your own user; or use --backend ptrace",
    }
}

impl crate::exit::ExitStatus for PerfError {
    fn exit_code(&self) -> u8 {
        match self {
            PerfError::Refused { .. } | PerfError::Mmap { .. } => crate::exit::PERMISSION,
            PerfError::NoThread { .. } | PerfError::Threads { .. } => crate::exit::FAILURE,
        }
    }
}

/// What to sample and how.
#[derive(Debug, Clone, Copy)]
pub struct PerfOptions {
    /// Nanoseconds of thread CPU time between samples.
    pub period_ns: u64,
    /// Bytes of user stack copied with each sample.
    pub stack_bytes: u32,
    /// Data pages of each thread's ring (a power of two).
    pub ring_pages: usize,
}

/// One thread's event and its mapped ring.
struct ThreadEvent {
    _fd: OwnedFd,
    base: *mut u8,
    len: usize,
    data_size: usize,
    page: usize,
}

impl Drop for ThreadEvent {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl ThreadEvent {
    /// Copies the unread records out and marks them read.
    fn drain(&mut self, scratch: &mut Vec<u8>) {
        // SAFETY: the metadata page is mapped for the life of `self`; the
        // kernel updates data_head concurrently, so it is read volatile and
        // followed by an acquire fence (as perf's own tools do).
        let head = unsafe { std::ptr::read_volatile(self.base.add(DATA_HEAD) as *const u64) };
        fence(Ordering::Acquire);
        // SAFETY: as above; only we write data_tail.
        let tail = unsafe { std::ptr::read_volatile(self.base.add(DATA_TAIL) as *const u64) };
        let avail = head.wrapping_sub(tail) as usize;
        scratch.clear();
        if avail == 0 || avail > self.data_size {
            self.set_tail(head);
            return;
        }
        // SAFETY: the data area is `data_size` bytes after the first page.
        let data = unsafe { std::slice::from_raw_parts(self.base.add(self.page), self.data_size) };
        let start = (tail as usize) % self.data_size;
        let first = avail.min(self.data_size - start);
        scratch.extend_from_slice(&data[start..start + first]);
        scratch.extend_from_slice(&data[..avail - first]);
        fence(Ordering::SeqCst);
        self.set_tail(head);
    }

    fn set_tail(&mut self, v: u64) {
        // SAFETY: data_tail is ours to write (the mapping is PROT_WRITE so
        // that the kernel does not overwrite unread records).
        unsafe { std::ptr::write_volatile(self.base.add(DATA_TAIL) as *mut u64, v) };
    }
}

/// Opens one thread's event on gopeek's behalf where gopeek itself may
/// not: under sudo, the root monitor (`process::monitor`), for threads
/// created after the privilege drop. Given the tid, the options and
/// whether kernel time is counted.
pub type Opener = Box<dyn FnMut(i32, &PerfOptions, bool) -> Result<OwnedFd, Errno> + Send>;

/// Per-thread samplers of one process.
pub struct PerfSampler {
    pid: i32,
    opts: PerfOptions,
    kernel: bool,
    opener: Option<Opener>,
    threads: HashMap<i32, ThreadEvent>,
    scratch: Vec<u8>,
    /// Samples the kernel dropped (ring full).
    pub lost: u64,
    /// Times the kernel throttled the sampling rate.
    pub throttled: u64,
    /// Threads that could not be sampled (exited before the open, or refused).
    pub missed_threads: u64,
}

/// Opens the one kind of event gopeek uses ([`attr::sampling_attr`]) on
/// thread `tid`; for the root monitor, which opens events for a sampler
/// that has dropped its privileges.
pub(crate) fn open_sampling_event(
    opts: &PerfOptions,
    kernel: bool,
    tid: i32,
) -> Result<OwnedFd, Errno> {
    perf_event_open(
        &attr::sampling_attr(opts.period_ns, opts.stack_bytes, kernel),
        tid,
    )
}

fn perf_event_open(a: &attr::PerfEventAttr, tid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: `a` is a valid perf_event_attr of the size it declares;
    // cpu -1 (any), group -1 (none), flags CLOEXEC.
    let r = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            a as *const attr::PerfEventAttr,
            tid as libc::c_long,
            -1 as libc::c_long,
            -1 as libc::c_long,
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

impl PerfSampler {
    /// Starts sampling every current thread of `pid`. Tries with kernel
    /// time counted first (as Go's profiler counts it); where the kernel
    /// refuses that to an unprivileged user, samples user time only and
    /// says so through [`Self::counts_kernel_time`].
    pub fn start(pid: i32, opts: PerfOptions) -> Result<PerfSampler, PerfError> {
        let mut s = PerfSampler {
            pid,
            opts,
            kernel: true,
            opener: None,
            threads: HashMap::new(),
            scratch: Vec::new(),
            lost: 0,
            throttled: 0,
            missed_threads: 0,
        };
        let tids = proc_fs::thread_ids(pid).map_err(|source| PerfError::Threads { pid, source })?;
        let mut last = Errno::ESRCH;
        for &tid in &tids {
            match s.open_thread(tid) {
                Ok(()) => {}
                Err(Errno::EACCES) | Err(Errno::EPERM) if s.kernel && s.threads.is_empty() => {
                    s.kernel = false;
                    if let Err(e) = s.open_thread(tid) {
                        last = e;
                        s.missed_threads += 1;
                    }
                }
                Err(e) => {
                    last = e;
                    s.missed_threads += 1;
                }
            }
            if s.threads.is_empty()
                && matches!(
                    last,
                    Errno::EACCES
                        | Errno::EPERM
                        | Errno::ENOSYS
                        | Errno::ENOENT
                        | Errno::EOPNOTSUPP
                )
            {
                return Err(PerfError::Refused { errno: last });
            }
            if last == Errno::ENOMEM {
                return Err(PerfError::Mmap { errno: last });
            }
        }
        if s.threads.is_empty() {
            return Err(PerfError::NoThread { pid, errno: last });
        }
        Ok(s)
    }

    /// `false` when the kernel refused to count time in system calls: that
    /// time is then missing from the profile (Go's own would have it).
    pub fn counts_kernel_time(&self) -> bool {
        self.kernel
    }

    /// Threads being sampled.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// From now on, threads found by [`Self::rescan`] get their event
    /// from `opener` (under sudo: the root monitor) instead of gopeek's
    /// own `perf_event_open`.
    pub fn set_opener(&mut self, opener: Opener) {
        self.opener = Some(opener);
    }

    fn open_thread(&mut self, tid: i32) -> Result<(), Errno> {
        let fd = match &mut self.opener {
            Some(open) => open(tid, &self.opts, self.kernel)?,
            None => open_sampling_event(&self.opts, self.kernel, tid)?,
        };
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let data_size = page * self.opts.ring_pages.next_power_of_two().max(1);
        let len = page + data_size;
        // SAFETY: mapping a perf fd as the kernel documents it: one metadata
        // page plus 2^n data pages, shared, read-write (so that data_tail
        // is honoured).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let e = Errno::last();
            return Err(if e == Errno::EPERM { Errno::ENOMEM } else { e });
        }
        let ev = ThreadEvent {
            _fd: fd,
            base: base.cast(),
            len,
            data_size,
            page,
        };
        // SAFETY: a plain ioctl on our own perf fd, no argument.
        if unsafe { libc::ioctl(ev._fd.as_raw_fd(), IOC_ENABLE as _, 0) } != 0 {
            return Err(Errno::last());
        }
        self.threads.insert(tid, ev);
        Ok(())
    }

    /// Follows the thread list: starts sampling new threads, and stops
    /// (after a last drain) for threads that are gone. `Ok(false)` when the
    /// process itself is gone.
    pub fn rescan(&mut self, out: &mut Vec<RawSample>) -> bool {
        let tids = match proc_fs::thread_ids(self.pid) {
            Ok(t) if !t.is_empty() => t,
            _ => return false,
        };
        for &tid in &tids {
            if !self.threads.contains_key(&tid) && self.open_thread(tid).is_err() {
                self.missed_threads += 1;
            }
        }
        let gone: Vec<i32> = self
            .threads
            .keys()
            .copied()
            .filter(|t| !tids.contains(t))
            .collect();
        for tid in gone {
            if let Some(mut ev) = self.threads.remove(&tid) {
                self.drain_one(&mut ev, out);
            }
        }
        true
    }

    fn drain_one(&mut self, ev: &mut ThreadEvent, out: &mut Vec<RawSample>) {
        ev.drain(&mut self.scratch);
        for rec in split_records(&self.scratch).filter_map(decode_record) {
            match rec {
                Record::Sample(s) => out.push(s),
                Record::Lost(n) => self.lost += n,
                Record::Throttle => self.throttled += 1,
                Record::Other => {}
            }
        }
    }

    /// Moves every sample recorded so far into `out`.
    pub fn drain(&mut self, out: &mut Vec<RawSample>) {
        let mut threads = std::mem::take(&mut self.threads);
        for ev in threads.values_mut() {
            self.drain_one(ev, out);
        }
        self.threads = threads;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Samples a thread of this very process that spins: the samples
    /// carry its tid, user registers and a stack copy that holds SP.
    #[test]
    fn samples_a_spinning_thread_of_this_process() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = stop.clone();
        let h = std::thread::spawn(move || {
            // SAFETY: gettid has no memory effects.
            tx.send(unsafe { libc::gettid() }).ok();
            let mut x = 0u64;
            while !s2.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            x
        });
        let tid = rx.recv().unwrap();
        let opts = PerfOptions {
            period_ns: 1_000_000,
            stack_bytes: 4096,
            ring_pages: 16,
        };
        let mut s = match PerfSampler::start(std::process::id() as i32, opts) {
            Ok(s) => s,
            Err(PerfError::Refused { errno }) => {
                eprintln!("perf_event_open refused here ({errno}); nothing to check");
                stop.store(true, Ordering::Relaxed);
                h.join().unwrap();
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let mut out = Vec::new();
        while out.iter().filter(|r: &&RawSample| r.tid == tid).count() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.drain(&mut out);
            assert!(s.rescan(&mut out));
        }
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        let mine: Vec<_> = out.iter().filter(|r| r.tid == tid).collect();
        for r in mine {
            let regs = r.regs.expect("user registers");
            assert!(regs.sp != 0 && regs.ip != 0);
            assert!(!r.stack.is_empty() && r.stack.len() <= 4096);
        }
    }
}
