//! [`SeizedProcess`]: every thread of a live process held still, read-only,
//! for exactly as long as the value lives.
//!
//! # How the target is stopped
//!
//! `PTRACE_SEIZE` (no options: in particular never `PTRACE_O_EXITKILL`,
//! which would kill the target if gopeek died, and never
//! `PTRACE_O_TRACECLONE`) on every thread listed in `/proc/PID/task`, then
//! `PTRACE_INTERRUPT` on each, then `waitpid(__WALL)` until each has
//! reported a stop. No signal is sent to the target, so the Go runtime sees
//! nothing: a thread blocked in a syscall is restarted transparently after
//! detach.
//!
//! Threads created while this happens are *not* attached automatically
//! (that would need `PTRACE_O_TRACECLONE`, an option that changes how the
//! target's clones are reported). Instead the task list is re-read after all
//! known threads have stopped, and new threads are seized and interrupted in
//! turn, until a re-read finds nothing new. That terminates quickly: a
//! stopped thread creates no threads, and a `clone` in flight completes
//! before its caller can stop, so its child is already listed.
//!
//! # The tracer thread
//!
//! Linux ties a ptrace attachment to the *thread* that made it: only that
//! thread may issue requests, and when that thread exits the kernel detaches
//! all of its tracees (`exit_ptrace`), resuming them. `SeizedProcess` uses
//! this: a dedicated thread ("gopeek-tracer") does the seize, the waits,
//! the register reads and the detach. This gives, for free:
//!
//! * a `SeizedProcess` may be used and dropped on any thread (it is `Send`);
//! * `--max-pause` is enforced even if the caller is slow or stuck: the
//!   tracer thread detaches on its own at the deadline, and
//!   [`SeizedProcess::check_budget`] then reports
//!   [`ProcessError::PauseBudgetExceeded`];
//! * a thread that never stops (stuck in uninterruptible sleep) cannot make
//!   gopeek hang or leave it behind: the tracer detaches what stopped and
//!   exits, and the kernel detaches the rest as the thread ends;
//! * a panic anywhere, or gopeek being killed (even `kill -9`), ends the
//!   tracer thread too, which again resumes every thread (see
//!   [`super::signals`] for what was verified).
//!
//! # Signals are never swallowed
//!
//! A signal that a thread dequeues between PTRACE_SEIZE and its interrupt
//! stop makes it report a signal-delivery-stop instead. That thread is left
//! in that stop (it is stopped like the others, registers included) and the
//! signal is passed back with `PTRACE_DETACH`, so the target receives it.
//! This is not rare: Go's own preemption signal (SIGURG) shows up this way
//! in the tests. A signal sent while a thread is already stopped simply
//! stays pending and is delivered after detach. The tests check this
//! exactly with a C target counting 3000 queued real-time signals sent
//! while it is seized and released over and over.
//!
//! A thread that was in a group-stop before gopeek came (state `T`, e.g.
//! after SIGSTOP) goes back to that group-stop on detach: the kernel
//! restores it, and the tests verify it.

use super::error::ProcessError;
use super::proc_fs::{self, is_gone, ProcStatus};
use super::registers::{read_registers, Registers};
use super::signals::StopSignalDeferral;
use super::sys::{self, decode_status, WaitEvent};
use nix::errno::Errno;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to seize a process.
#[derive(Debug, Clone)]
pub struct SeizeOptions {
    /// The longest the target may be held, from the first interrupt to the
    /// last detach (`--max-pause`). Reaching it while threads are being
    /// stopped makes [`SeizedProcess::seize`] fail; reaching it later makes
    /// the tracer detach on its own (see [`SeizedProcess::check_budget`]).
    /// `Duration::MAX` means no limit.
    pub max_pause: Duration,
    /// Hold back SIGTSTP (Ctrl-Z) sent to gopeek while the target is held
    /// and deliver it after detach, so that stopping gopeek can never leave
    /// the target stopped with it. See [`StopSignalDeferral`].
    pub defer_stop_signals: bool,
    /// Stop only these threads (`--nonblocking`: the threads running Go
    /// code), not the whole process; no re-scan of the task list. Threads
    /// among them that have exited are skipped, and stopping none of them
    /// is not an error.
    pub only_threads: Option<Vec<i32>>,
}

impl Default for SeizeOptions {
    /// 2 s budget (an attach usually takes well under a millisecond; the
    /// budget is for the copy that follows), stop signals deferred.
    fn default() -> Self {
        SeizeOptions {
            max_pause: Duration::from_secs(2),
            defer_stop_signals: true,
            only_threads: None,
        }
    }
}

/// Why a thread is stopped: tells the walker and `gopeek threads` how the
/// registers were caught, and decides what detach passes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// The normal case: stopped by our PTRACE_INTERRUPT.
    Interrupt,
    /// The thread was (or went) into a job-control group-stop (SIGSTOP,
    /// SIGTSTP...). It stays stopped after detach.
    GroupStop {
        /// The job-control signal that stopped the group.
        signal: i32,
    },
    /// A signal was being delivered when the thread stopped; detach hands it
    /// back so the target still receives it.
    SignalDelivery {
        /// The signal, re-delivered on detach.
        signal: i32,
    },
}

/// One stopped thread: its id, its registers, and what it was doing.
#[derive(Debug, Clone)]
pub struct ThreadState {
    /// Kernel thread id (Go's `m.procid`).
    pub tid: i32,
    /// Registers read while the thread was stopped.
    pub regs: Registers,
    /// The `/proc` state letter just before gopeek stopped it (`R`
    /// running, `S` sleeping, `D` uninterruptible, `T` stopped...), so that
    /// reports describe the target as it was, not as gopeek left it.
    pub state_before: char,
    /// How the thread stopped.
    pub stop: StopKind,
}

/// What holding the target cost it, reported as `pause_us` in the dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PauseStats {
    /// From the first PTRACE_INTERRUPT to the last PTRACE_DETACH.
    pub pause: Duration,
    /// From the first PTRACE_INTERRUPT until every thread had stopped.
    pub stop_latency: Duration,
    /// Threads that were stopped and then detached.
    pub threads: usize,
    /// Threads that exited while gopeek was attaching or holding them.
    pub vanished: usize,
    /// Extra task-list scans needed because threads appeared meanwhile.
    pub rescans: usize,
    /// Signals that arrived while held and were handed back on detach.
    pub signals_reinjected: usize,
    /// The tracer detached on its own because `max_pause` ran out before
    /// the caller released the target.
    pub budget_exceeded: bool,
    /// PTRACE_DETACH failures other than "thread gone" (never seen in
    /// practice; the kernel still detaches these when the tracer thread
    /// exits).
    pub detach_errors: usize,
}

impl PauseStats {
    /// [`Self::pause`] in microseconds, the unit of `pause_us`.
    pub fn pause_us(&self) -> u64 {
        self.pause.as_micros().min(u64::MAX as u128) as u64
    }
}

/// A live process whose threads are all stopped by ptrace, read-only, until
/// this value is dropped or [`SeizedProcess::detach`]ed. Like
/// remoteprocess's `ThreadLock`, the attachment is tied to the value's
/// lifetime, so every exit path (error, panic unwinding) resumes the target.
pub struct SeizedProcess {
    pid: i32,
    threads: Vec<ThreadState>,
    budget: Duration,
    first_interrupt: Instant,
    /// Set by the tracer thread *before* it detaches anything.
    released: Arc<AtomicBool>,
    link: Option<TracerLink>,
    // Dropped after `link` is finished (fields drop in order), so a
    // deferred Ctrl-Z takes effect only once the target runs again.
    _defer: Option<StopSignalDeferral>,
}

struct TracerLink {
    release: mpsc::Sender<()>,
    stats: mpsc::Receiver<PauseStats>,
    handle: JoinHandle<()>,
}

struct Attached {
    threads: Vec<ThreadState>,
    first_interrupt: Instant,
}

/// ELF `e_machine` of the processes this build can seize.
#[cfg(target_arch = "x86_64")]
const NATIVE_MACHINE: Option<u16> = Some(62); // EM_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_MACHINE: Option<u16> = Some(183); // EM_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_MACHINE: Option<u16> = None;

fn machine_name(m: u16) -> String {
    match m {
        3 => "386".into(),
        40 => "arm".into(),
        62 => "amd64".into(),
        183 => "arm64".into(),
        243 => "riscv64".into(),
        _ => format!("ELF machine {m}"),
    }
}

impl SeizedProcess {
    /// Stops every thread of `pid` and reads their registers.
    ///
    /// `pid` may also be a thread id; the whole process it belongs to is
    /// seized. Fails with a [`ProcessError`] that says what to do
    /// (permissions, another tracer, zombie, exited...). On any failure,
    /// nothing stays attached: stopped threads are detached before this
    /// returns, and threads that had not reported their stop yet are
    /// detached by the kernel as the tracer thread exits (a few
    /// microseconds later at most).
    pub fn seize(pid: i32, opts: &SeizeOptions) -> Result<Self, ProcessError> {
        let Some(machine) = NATIVE_MACHINE else {
            return Err(ProcessError::UnsupportedArchitecture {
                arch: format!("gopeek built for {}", std::env::consts::ARCH),
            });
        };
        if pid <= 0 {
            return Err(ProcessError::NoSuchProcess { pid });
        }
        let me = std::process::id() as i32;
        let status = ProcStatus::read(pid)
            .map_err(|e| proc_fs::proc_error(pid, format!("/proc/{pid}/status"), e))?;
        let pid = if status.tgid > 0 { status.tgid } else { pid };
        if pid == me {
            return Err(ProcessError::SelfAttach { pid });
        }
        if proc_fs::is_zombie(pid).unwrap_or(false) {
            return Err(ProcessError::Zombie { pid });
        }
        if status.tracer_pid != 0 {
            return Err(already_traced(pid, status.tracer_pid));
        }
        if let Ok(m) = proc_fs::exe_machine(pid) {
            if m != machine {
                return Err(ProcessError::UnsupportedArchitecture {
                    arch: format!("this target ({})", machine_name(m)),
                });
            }
        }

        let defer = opts.defer_stop_signals.then(StopSignalDeferral::new);
        let released = Arc::new(AtomicBool::new(false));
        let (attach_tx, attach_rx) = mpsc::sync_channel::<Result<Attached, ProcessError>>(1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (stats_tx, stats_rx) = mpsc::channel::<PauseStats>();
        let budget = opts.max_pause;
        let rel = released.clone();
        let only = opts.only_threads.clone();
        let handle = std::thread::Builder::new()
            .name("gopeek-tracer".into())
            .spawn(move || tracer_main(pid, budget, only, rel, attach_tx, release_rx, stats_tx))
            .map_err(|e| ProcessError::TracerThread(e.to_string()))?;
        let attached = match attach_rx.recv() {
            Ok(r) => r,
            Err(_) => Err(ProcessError::TracerThread(
                "the tracer thread ended unexpectedly".into(),
            )),
        };
        match attached {
            Ok(a) => Ok(SeizedProcess {
                pid,
                threads: a.threads,
                budget,
                first_interrupt: a.first_interrupt,
                released,
                link: Some(TracerLink {
                    release: release_tx,
                    stats: stats_rx,
                    handle,
                }),
                _defer: defer,
            }),
            Err(e) => {
                // The tracer already released what it held; wait for it to
                // be gone so that nothing is attached when we return.
                let _ = handle.join();
                Err(e)
            }
        }
    }

    /// The process id (thread-group id) that is held.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Every stopped thread, in task-list order, with its registers.
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// The stopped thread `tid`, if it is one of them (the walker looks up
    /// `m.procid` of running goroutines here).
    pub fn thread(&self, tid: i32) -> Option<&ThreadState> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    /// How long the target has been held so far.
    pub fn paused_for(&self) -> Duration {
        self.first_interrupt.elapsed()
    }

    /// Time left before the tracer detaches on its own (`None`: no limit).
    pub fn remaining_budget(&self) -> Option<Duration> {
        self.first_interrupt
            .checked_add(self.budget)
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Call after copying memory: `Ok` means the target was still held, so
    /// every read made before this call saw one consistent, stopped process.
    /// `Err(PauseBudgetExceeded)` means the budget ran out and the tracer
    /// already let the target go; the copy may be torn and should be
    /// discarded (the target is running).
    pub fn check_budget(&self) -> Result<(), ProcessError> {
        if self.released.load(Ordering::SeqCst) {
            Err(ProcessError::PauseBudgetExceeded {
                pid: self.pid,
                budget: self.budget,
                // The tracer released the target at the budget; later
                // reads by the caller did not hold it longer.
                elapsed: self.paused_for().min(self.budget),
                phase: "copying memory",
            })
        } else {
            Ok(())
        }
    }

    /// Resumes every thread (re-delivering any signal that arrived
    /// meanwhile) and reports how long the target was held.
    pub fn detach(mut self) -> PauseStats {
        self.finish()
    }

    fn finish(&mut self) -> PauseStats {
        let Some(link) = self.link.take() else {
            return PauseStats::default();
        };
        let _ = link.release.send(());
        // If the tracer thread died, its exit already made the kernel detach
        // everything; there are just no numbers to report.
        let stats = link.stats.recv().unwrap_or_default();
        let _ = link.handle.join();
        stats
    }
}

impl Drop for SeizedProcess {
    /// Detaches every thread (threads that died meanwhile are skipped), so
    /// that an early return or a panic never leaves the target stopped.
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for SeizedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeizedProcess")
            .field("pid", &self.pid)
            .field("threads", &self.threads.len())
            .field(
                "held",
                &(self.link.is_some() && !self.released.load(Ordering::SeqCst)),
            )
            .finish()
    }
}

fn already_traced(pid: i32, tracer_tid: i32) -> ProcessError {
    // TracerPid is the tracer's *thread*; name its process.
    let tracer = ProcStatus::read(tracer_tid)
        .map(|s| s.tgid)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(tracer_tid);
    let tracer_comm = if tracer == std::process::id() as i32 {
        "this gopeek process, which already holds it".to_string()
    } else {
        proc_fs::comm(tracer).unwrap_or_else(|_| "unknown".into())
    };
    ProcessError::AlreadyTraced {
        pid,
        tracer,
        tracer_comm,
    }
}

// ---------------------------------------------------------------------------
// The tracer thread.

fn tracer_main(
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
            let state_before = match proc_fs::thread_state(self.pid, tid) {
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
            ptrace_scope: proc_fs::ptrace_scope(),
            target_uid: proc_fs::process_uid(self.pid).ok(),
            // SAFETY: geteuid cannot fail.
            our_euid: unsafe { libc::geteuid() },
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
                    backoff(idle);
                    idle = idle.saturating_add(1);
                    if idle % 1000 == 0 {
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
/// microseconds), then short sleeps that leave the CPU to the threads that
/// still have to reach their stop (on a busy machine they compete with
/// us), then longer ones for a thread that is slow to stop (uninterruptible
/// sleep). The tracer thread's timer slack is set to 1 ns, so a 10 µs sleep
/// is not stretched to the default 50 µs.
fn backoff(idle: u32) {
    if idle < 16 {
        std::thread::yield_now();
    } else if idle < 1000 {
        std::thread::sleep(Duration::from_micros(10));
    } else {
        std::thread::sleep(Duration::from_micros(200));
    }
}
