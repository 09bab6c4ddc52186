//! The tracer thread: the seize protocol (SEIZE every listed thread, then
//! INTERRUPT them back to back, then collect their stops with `waitpid`,
//! re-scanning the task list until it is stable), the register reads,
//! the hold until released or out of budget, and the detach that hands
//! back any signal that arrived meanwhile. See the parent module for why
//! a dedicated thread does all of it.

use super::{already_traced, PauseStats, StopKind, ThreadState};
use crate::process::error::ProcessError;
use crate::process::permission::PermissionFacts;
use crate::process::proc_fs::{self, is_gone, ProcStatus};
use crate::process::registers::read_registers;
use crate::process::sys::{self, decode_status, WaitEvent};
use nix::errno::Errno;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the tracer thread hands back once every thread is stopped.
pub(super) struct Attached {
    pub(super) threads: Vec<ThreadState>,
    pub(super) first_interrupt: Instant,
}

/// The body of the "gopeek-tracer" thread: attach, report, hold until
/// released or out of budget, release, report the pause.
pub(super) fn tracer_main(
    pid: i32,
    budget: Duration,
    only: Option<Vec<i32>>,
    released: Arc<AtomicBool>,
    attach_tx: mpsc::SyncSender<Result<Attached, ProcessError>>,
    release_rx: mpsc::Receiver<()>,
    stats_tx: mpsc::Sender<PauseStats>,
) {
    // Precise short sleeps while polling for stops (this thread only).
    // SAFETY: prctl with integer arguments; failure is harmless.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let mut t = Tracer::new(pid, budget, released);
    t.only = only;
    match t.attach() {
        Err(e) => {
            t.release();
            let _ = attach_tx.send(Err(e));
        }
        Ok(a) => {
            if attach_tx.send(Ok(a)).is_err() {
                t.release();
                return;
            }
            // Hold until the caller releases (or drops) the process, or the
            // budget runs out, whichever comes first.
            let timed_out = match t.deadline {
                Some(d) => matches!(
                    release_rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ),
                None => {
                    let _ = release_rx.recv();
                    false
                }
            };
            let mut stats = t.release();
            stats.budget_exceeded = timed_out;
            let _ = stats_tx.send(stats);
        }
    }
    // Returning ends this thread; the kernel detaches anything still
    // attached (threads that never reported their stop).
}

/// Makes the calling thread a tracer fit to hold a target briefly: 1 ns
/// timer slack (precise short sleeps while polling for stops) and, where
/// allowed, the lowest real-time priority (SCHED_FIFO 1), so that the
/// scheduler does not preempt it between the target's stop and its
/// resume, which is the time the target stands still (p99 of the hold on
/// a quiet 2-core machine: 472 us with it, 1667 us without,
/// docs/bench/record.md). Only this thread, only while it samples; where
/// not allowed (neither root nor RLIMIT_RTPRIO): unchanged. README's
/// "record" section says so.
pub(super) fn tune_tick_thread() {
    // SAFETY: prctl with integer arguments; failure is harmless.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    // SAFETY: sched_param is plain integers (musl's has more of them than
    // glibc's): all zero is valid. sched_setscheduler on the calling
    // thread (0) with it; failure is harmless.
    unsafe {
        let mut param: libc::sched_param = std::mem::zeroed();
        param.sched_priority = 1;
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
}

/// The body of [`super::SeizedProcess::run_held`]'s tracer thread:
/// attach, run `f` here on the stopped threads, release at once.
pub(super) fn run_held<T>(
    pid: i32,
    budget: Duration,
    only: Option<Vec<i32>>,
    f: impl FnOnce(&[ThreadState]) -> T,
) -> Result<(T, PauseStats), ProcessError> {
    tune_tick_thread();
    hold_once(pid, budget, only, f)
}

/// One short hold on the calling thread (which must be the one that
/// makes every ptrace request of it): attach, `f`, release.
pub(super) fn hold_once<T>(
    pid: i32,
    budget: Duration,
    only: Option<Vec<i32>>,
    f: impl FnOnce(&[ThreadState]) -> T,
) -> Result<(T, PauseStats), ProcessError> {
    let mut t = Tracer::new(pid, budget, Arc::new(AtomicBool::new(false)));
    // The threads named are the ones the sampler saw in state R.
    t.known_state = only.is_some().then_some('R');
    t.only = only;
    match t.attach() {
        Err(e) => {
            t.release();
            Err(e)
        }
        Ok(a) => {
            let out = f(&a.threads);
            let late = t.deadline.is_some_and(|d| Instant::now() >= d);
            let mut stats = t.release();
            stats.budget_exceeded = late;
            Ok((out, stats))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Seized and interrupted; its stop has not been seen yet.
    Running,
    Stopped(StopKind),
    /// Exited, or already detached.
    Gone,
}

struct Tracee {
    tid: i32,
    state_before: char,
    phase: Phase,
}

struct Tracer {
    pid: i32,
    budget: Duration,
    tracees: Vec<Tracee>,
    index: HashMap<i32, usize>,
    /// Threads listed but not seized because they were already exiting;
    /// remembered so that re-scans do not count them as new.
    skipped: HashSet<i32>,
    running: usize,
    vanished: usize,
    rescans: usize,
    first_interrupt: Option<Instant>,
    /// First interrupt to the last thread stopped.
    stop_latency: Duration,
    deadline: Option<Instant>,
    released: Arc<AtomicBool>,
    /// `SeizeOptions::only_threads`.
    only: Option<Vec<i32>>,
    /// The state every listed thread had before the stop, when the caller
    /// knows it (the ptrace sampler stops only threads it saw in state R):
    /// no `/proc/TID/stat` read per thread per tick.
    known_state: Option<char>,
}

/// Bound on task-list re-scans; thread creation cannot outrun stopping in
/// practice (a handful of rounds at most), this only guards against a
/// kernel or /proc oddity turning into a loop.
const MAX_ROUNDS: usize = 10_000;

impl Tracer {
    fn new(pid: i32, budget: Duration, released: Arc<AtomicBool>) -> Self {
        Tracer {
            pid,
            budget,
            tracees: Vec::new(),
            index: HashMap::new(),
            skipped: HashSet::new(),
            running: 0,
            vanished: 0,
            rescans: 0,
            first_interrupt: None,
            stop_latency: Duration::ZERO,
            deadline: None,
            released,
            only: None,
            known_state: None,
        }
    }

    fn exited(&self) -> ProcessError {
        ProcessError::Exited { pid: self.pid }
    }

    fn list_threads(&self) -> Result<Vec<i32>, ProcessError> {
        match proc_fs::thread_ids(self.pid) {
            Ok(t) if t.is_empty() => Err(self.exited()),
            Ok(t) => Ok(t),
            Err(e) if is_gone(&e) => Err(self.exited()),
            Err(e) => Err(ProcessError::Proc {
                path: format!("/proc/{}/task", self.pid).into(),
                source: e,
            }),
        }
    }

    fn attach(&mut self) -> Result<Attached, ProcessError> {
        let mut tids = match &self.only {
            Some(only) => only.clone(),
            None => self.list_threads()?,
        };
        for round in 0.. {
            let new: Vec<i32> = tids
                .iter()
                .copied()
                .filter(|t| !self.index.contains_key(t) && !self.skipped.contains(t))
                .collect();
            if new.is_empty() {
                break;
            }
            if round > 0 {
                self.rescans += 1;
            }
            if round >= MAX_ROUNDS {
                return Err(ProcessError::TracerThread(format!(
                    "the thread list of process {} kept changing after {MAX_ROUNDS} scans",
                    self.pid
                )));
            }
            self.seize_and_interrupt(&new)?;
            self.wait_for_stops()?;
            if self.only.is_some() {
                break;
            }
            tids = self.list_threads()?;
        }
        let all_stopped = Instant::now();
        let mut threads = Vec::with_capacity(self.tracees.len());
        for i in 0..self.tracees.len() {
            let (tid, phase) = (self.tracees[i].tid, self.tracees[i].phase);
            let Phase::Stopped(stop) = phase else {
                continue;
            };
            match read_registers(tid) {
                Ok(regs) => threads.push(ThreadState {
                    tid,
                    regs,
                    state_before: self.tracees[i].state_before,
                    stop,
                }),
                // Killed while stopped (SIGKILL wakes traced threads).
                Err(Errno::ESRCH) => {
                    self.tracees[i].phase = Phase::Gone;
                    self.vanished += 1;
                }
                Err(errno) => {
                    return Err(ProcessError::Ptrace {
                        pid: self.pid,
                        tid,
                        op: "GETREGS",
                        errno,
                    })
                }
            }
        }
        if threads.is_empty() && self.only.is_none() {
            // Every thread exited (or was killed) meanwhile.
            return Err(self.exited());
        }
        let first_interrupt = self.first_interrupt.unwrap_or(all_stopped);
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ProcessError::PauseBudgetExceeded {
                pid: self.pid,
                budget: self.budget,
                elapsed: first_interrupt.elapsed(),
                phase: "stopping its threads",
            });
        }
        self.stop_latency = all_stopped - first_interrupt;
        Ok(Attached {
            threads,
            first_interrupt,
        })
    }

    /// Seizes the new threads (before stopping any of them, so the seize
    /// syscalls are not part of the pause), then interrupts them back to back.
    fn seize_and_interrupt(&mut self, new: &[i32]) -> Result<(), ProcessError> {
        let mut seized = Vec::with_capacity(new.len());
        for &tid in new {
            let state = match self.known_state {
                Some(c) => Ok(c),
                None => proc_fs::thread_state(self.pid, tid),
            };
            let state_before = match state {
                Ok(c) => c,
                Err(e) if is_gone(&e) => {
                    self.skip(tid);
                    continue;
                }
                Err(_) => '?',
            };
            // SAFETY: SEIZE with addr 0 and options 0 reads no memory of ours.
            match unsafe { sys::ptrace(sys::PTRACE_SEIZE, tid, 0, 0) } {
                Ok(_) => {
                    self.index.insert(tid, self.tracees.len());
                    self.tracees.push(Tracee {
                        tid,
                        state_before,
                        phase: Phase::Running,
                    });
                    self.running += 1;
                    seized.push(tid);
                }
                Err(Errno::ESRCH) => self.skip(tid),
                Err(Errno::EPERM) => self.explain_eperm(tid)?,
                Err(errno) => {
                    return Err(ProcessError::Ptrace {
                        pid: self.pid,
                        tid,
                        op: "SEIZE",
                        errno,
                    })
                }
            }
        }
        for tid in seized {
            if self.first_interrupt.is_none() {
                let now = Instant::now();
                self.first_interrupt = Some(now);
                self.deadline = now.checked_add(self.budget);
            }
            // SAFETY: INTERRUPT takes no pointers.
            match unsafe { sys::ptrace(sys::PTRACE_INTERRUPT, tid, 0, 0) } {
                Ok(_) => {}
                // Its exit status (if any) will arrive through waitpid.
                Err(Errno::ESRCH) => self.mark_gone(tid),
                Err(errno) => {
                    return Err(ProcessError::Ptrace {
                        pid: self.pid,
                        tid,
                        op: "INTERRUPT",
                        errno,
                    })
                }
            }
        }
        Ok(())
    }

    /// EPERM from PTRACE_SEIZE: the thread is dying (skip it), someone else
    /// traces it, the process is a zombie, or we lack the privilege.
    fn explain_eperm(&mut self, tid: i32) -> Result<(), ProcessError> {
        match ProcStatus::read_thread(self.pid, tid) {
            Err(e) if is_gone(&e) => {
                self.skip(tid);
                return Ok(());
            }
            Ok(st) if st.tracer_pid != 0 => return Err(already_traced(self.pid, st.tracer_pid)),
            // Exiting (the kernel refuses to attach once exit_state is set,
            // and /proc shows exactly that state as Z or X). For the main
            // thread this is either the whole process exiting (then every
            // thread ends up gone: `Exited`) or a main thread that called
            // pthread_exit while others run on (they are still seized).
            Ok(st) if matches!(st.state, 'Z' | 'X') => {
                self.skip(tid);
                return Ok(());
            }
            _ => {}
        }
        if proc_fs::is_zombie(self.pid).unwrap_or(false) {
            return Err(ProcessError::Zombie { pid: self.pid });
        }
        Err(ProcessError::PermissionDenied {
            pid: self.pid,
            facts: Box::new(PermissionFacts::gather(self.pid)),
        })
    }

    fn skip(&mut self, tid: i32) {
        self.skipped.insert(tid);
        self.vanished += 1;
    }

    /// A thread slow to stop may have exited without us being told (when
    /// gopeek ignores SIGCHLD the kernel reaps exiting tracees silently):
    /// ask `/proc` about the threads still awaited.
    fn forget_exited_threads(&mut self) {
        let running: Vec<i32> = self
            .tracees
            .iter()
            .filter(|t| t.phase == Phase::Running)
            .map(|t| t.tid)
            .collect();
        for tid in running {
            match proc_fs::thread_state(self.pid, tid) {
                Ok('Z' | 'X') => self.mark_gone(tid),
                Err(e) if is_gone(&e) => self.mark_gone(tid),
                _ => {}
            }
        }
    }

    fn mark_gone(&mut self, tid: i32) {
        if let Some(&i) = self.index.get(&tid) {
            match self.tracees[i].phase {
                Phase::Running => {
                    self.running -= 1;
                    self.vanished += 1;
                }
                Phase::Stopped(_) => self.vanished += 1,
                Phase::Gone => {}
            }
            self.tracees[i].phase = Phase::Gone;
        }
    }

    fn on_status(&mut self, tid: i32, status: i32) {
        let Some(&i) = self.index.get(&tid) else {
            return;
        };
        match decode_status(status) {
            WaitEvent::Gone => self.mark_gone(tid),
            WaitEvent::Stopped { sig, event } => {
                if self.tracees[i].phase != Phase::Running {
                    return;
                }
                let kind = if event == sys::PTRACE_EVENT_STOP {
                    if matches!(
                        sig,
                        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                    ) {
                        StopKind::GroupStop { signal: sig }
                    } else {
                        StopKind::Interrupt
                    }
                } else if event == 0 {
                    StopKind::SignalDelivery { signal: sig }
                } else {
                    // No other PTRACE_EVENT_* is enabled (no options are set).
                    StopKind::Interrupt
                };
                self.tracees[i].phase = Phase::Stopped(kind);
                self.running -= 1;
            }
            WaitEvent::Other => {}
        }
    }

    /// Collects stops until every seized thread has stopped or exited.
    ///
    /// Polls with WNOHANG (see [`backoff`]) rather than blocking, so the
    /// budget is checked even if a thread never stops.
    /// `__WNOTHREAD` limits the wait to this thread's own tracees: it never
    /// reaps a child process that belongs to the rest of gopeek.
    fn wait_for_stops(&mut self) -> Result<(), ProcessError> {
        let mut idle = 0u32;
        while self.running > 0 {
            match sys::waitpid(-1, libc::__WALL | libc::__WNOTHREAD | libc::WNOHANG) {
                Ok(Some((tid, status))) => {
                    self.on_status(tid, status);
                    idle = 0;
                }
                Ok(None) => {
                    if let (Some(d), Some(t0)) = (self.deadline, self.first_interrupt) {
                        let now = Instant::now();
                        if now >= d {
                            return Err(ProcessError::PauseBudgetExceeded {
                                pid: self.pid,
                                budget: self.budget,
                                elapsed: now - t0,
                                phase: "stopping its threads",
                            });
                        }
                    }
                    backoff(
                        idle,
                        self.first_interrupt.map_or(Duration::ZERO, |t| t.elapsed()),
                    );
                    idle = idle.saturating_add(1);
                    // About every 15 ms of waiting (the sleeps reach 200 us
                    // after 1.6 ms).
                    if idle % 100 == 0 {
                        self.forget_exited_threads();
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    // No tracee left at all: every thread is gone.
                    let running: Vec<i32> = self
                        .tracees
                        .iter()
                        .filter(|t| t.phase == Phase::Running)
                        .map(|t| t.tid)
                        .collect();
                    for tid in running {
                        self.mark_gone(tid);
                    }
                }
                Err(errno) => {
                    return Err(ProcessError::Ptrace {
                        pid: self.pid,
                        tid: -1,
                        op: "waitpid",
                        errno,
                    })
                }
            }
        }
        Ok(())
    }

    /// Detaches every stopped thread, handing back signals that arrived
    /// meanwhile. Threads that never reported a stop cannot be detached by a
    /// request (the kernel requires a stopped tracee); they are released by
    /// the kernel when this thread exits right after.
    fn release(&mut self) -> PauseStats {
        self.released.store(true, Ordering::SeqCst);
        // Take in any stop reported but not yet seen, so that no
        // signal-delivery-stop is detached with signal 0 (which would
        // discard the signal).
        while let Ok(Some((tid, status))) =
            sys::waitpid(-1, libc::__WALL | libc::__WNOTHREAD | libc::WNOHANG)
        {
            self.on_status(tid, status);
        }
        let mut stats = PauseStats::default();
        for i in 0..self.tracees.len() {
            let Phase::Stopped(kind) = self.tracees[i].phase else {
                continue;
            };
            let tid = self.tracees[i].tid;
            let sig = match kind {
                StopKind::SignalDelivery { signal } => signal,
                _ => 0,
            };
            // SAFETY: DETACH takes a signal number as data, no pointers.
            match unsafe { sys::ptrace(sys::PTRACE_DETACH, tid, 0, sig as usize) } {
                Ok(_) => {
                    stats.threads += 1;
                    if sig != 0 {
                        stats.signals_reinjected += 1;
                    }
                }
                Err(Errno::ESRCH) => self.vanished += 1,
                Err(_) => stats.detach_errors += 1,
            }
            self.tracees[i].phase = Phase::Gone;
        }
        let end = Instant::now();
        stats.pause = self.first_interrupt.map(|t| end - t).unwrap_or_default();
        stats.vanished = self.vanished;
        stats.rescans = self.rescans;
        stats.stop_latency = self.stop_latency;
        stats
    }
}

/// Waiting between polls: a few yields (most threads stop within
/// microseconds), then sleeps that leave the CPU to the threads that still
/// have to reach their stop (on a busy machine they compete with us), each
/// an eighth of the wait so far, from 10 µs up to 200 µs for a thread slow
/// to stop (uninterruptible sleep). Proportional, so noticing the last stop
/// adds at most an eighth to the hold while a wait of milliseconds costs
/// tens of wake-ups, not hundreds: fixed 10 µs polls were half of the
/// ptrace sampler's own CPU on a loaded machine (perf record of gopeek).
/// The tracer thread's timer slack is set to 1 ns, so a 10 µs sleep is not
/// stretched to the default 50 µs.
fn backoff(idle: u32, waited: Duration) {
    if idle < 16 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(
            (waited / 8).clamp(Duration::from_micros(10), Duration::from_micros(200)),
        );
    }
}
