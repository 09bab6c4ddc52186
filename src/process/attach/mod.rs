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

mod tick;
mod tracer;

use super::error::ProcessError;
use super::proc_fs::{self, ProcStatus};
use super::registers::Registers;
use super::signals::StopSignalDeferral;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
pub(crate) use tick::TickTracer;
use tracer::{tracer_main, Attached};

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
    /// the target stopped with it. See `signals::StopSignalDeferral`.
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
        let pid = Self::precheck(pid)?;
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

    /// The checks before any attach (architecture, a real pid, not
    /// ourselves, not a zombie, not traced by another); the thread-group
    /// id of `pid`.
    /// The checks every seize starts with (architecture, not ourselves,
    /// not a zombie, no other tracer), and the thread-group id of `pid`.
    /// [`Self::run_held`] leaves them to its caller, which makes them once
    /// before its first tick (the ptrace sampler: 100 ticks a second).
    pub(crate) fn precheck(pid: i32) -> Result<i32, ProcessError> {
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

        Ok(pid)
    }

    /// [`Self::seize`] for a short look: the threads are stopped, `f` runs
    /// on the tracer thread itself with their registers, and they are
    /// detached as soon as it returns, so no hand-off between threads
    /// falls inside the hold (with `seize`, the caller must be woken to
    /// read and the tracer again to detach; on a busy machine each wake-up
    /// can wait milliseconds for a CPU while the target stays stopped).
    /// The ptrace sampler's tick. `f` should be short: the budget is
    /// checked after it, not enforced during it. `pid` must have passed
    /// [`Self::precheck`] (once, not per tick: it opens three `/proc`
    /// files and the executable); a tracer that came meanwhile still makes
    /// the seize fail with the usual explanation. Threads named in
    /// `opts.only_threads` are taken to be running (`state_before` 'R',
    /// no `/proc` read): the sampler names only threads it saw in state R.
    pub fn run_held<T: Send>(
        pid: i32,
        opts: &SeizeOptions,
        f: impl FnOnce(&[ThreadState]) -> T + Send,
    ) -> Result<(T, PauseStats), ProcessError> {
        if pid <= 0 {
            return Err(ProcessError::NoSuchProcess { pid });
        }
        let _defer = opts.defer_stop_signals.then(StopSignalDeferral::new);
        let (budget, only) = (opts.max_pause, opts.only_threads.clone());
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("gopeek-tracer".into())
                .spawn_scoped(s, move || tracer::run_held(pid, budget, only, f))
                .map_err(|e| ProcessError::TracerThread(e.to_string()))?
                .join()
                .unwrap_or_else(|_| {
                    Err(ProcessError::TracerThread(
                        "the tracer thread ended unexpectedly".into(),
                    ))
                })
        })
    }

    /// The process id (thread-group id) that is held.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Every stopped thread, in task-list order, with its registers.
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// The stopped thread `tid`, if it is one of them (a running
    /// goroutine's `m.procid` names one).
    pub fn thread(&self, tid: i32) -> Option<&ThreadState> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    /// How long the target has been held so far.
    fn paused_for(&self) -> Duration {
        self.first_interrupt.elapsed()
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

/// The error for a target someone else traces, naming the tracer's process.
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
