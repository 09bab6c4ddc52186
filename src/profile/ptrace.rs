//! The fallback sampler where `perf_event_open` is refused (a container's
//! default seccomp profile, no CAP_PERFMON): on each tick, stop only the
//! target's threads in state R (PTRACE_SEIZE + INTERRUPT, the same
//! read-only attach as `dump --nonblocking`), read their registers and the
//! top of their stacks, and let them go; a thread counts only if its CPU
//! time (schedstat) grew since the previous tick, so one merely waiting
//! for a CPU on a busy machine is not sampled. Ticks are jittered (uniform in
//! [0.5, 1.5] periods, mean one period), as py-spy does, so that a target
//! with a periodic rhythm is not sampled in phase with it. The samples it
//! makes are the same [`RawSample`]s the perf sampler gives, so the rest
//! of the pipeline does not know which backend ran.

use crate::memory::Memory;
use crate::process::perf::ring::{RawSample, UserRegs};
use crate::process::{proc_fs, LiveMemory, SeizedProcess, ThreadState, TickTracer};
use crate::snapshot::SnapshotError;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Longest a tick may hold the stopped threads.
const MAX_HOLD: Duration = Duration::from_millis(50);

/// Samples a process by stopping its running threads at each tick.
pub(crate) struct PtraceSampler {
    pid: i32,
    period: Duration,
    next: Instant,
    rng: u64,
    /// The one tracer thread of the recording; it reads registers and
    /// stack tops itself, between the stop and the detach, so no hand-off
    /// between threads falls inside the hold. None under sudo, where the
    /// monitor holds.
    tracer: Option<TickTracer<Vec<RawSample>>>,
    /// The target's memory (opened before any privilege drop), shared
    /// with the tracer thread; read here for the monitor's holds.
    mem: std::sync::Arc<LiveMemory>,
    stack_bytes: usize,
    /// How long each tick held the threads it stopped.
    pub(crate) holds: Vec<Duration>,
    /// Of each hold, the time from the first PTRACE_INTERRUPT until every
    /// thread had stopped (the rest: registers, stack reads, hand-offs to
    /// and from the tracer thread, detach).
    pub(crate) stop_latencies: Vec<Duration>,
    /// Ticks whose attach failed (threads exited meanwhile, another tracer).
    pub(crate) failed_ticks: u64,
    threads: usize,
    /// The target's threads, with their open `/proc` files.
    files: std::collections::BTreeMap<i32, ThreadFiles>,
    last_scan: Option<Instant>,
    /// Reused between ticks: the threads to stop.
    running: Vec<i32>,
    /// Under sudo: the root monitor that makes each tick's hold.
    monitor: Option<std::sync::Arc<crate::process::monitor::Monitor>>,
}

/// How often the task list is re-read (new threads are sampled from the
/// next scan on; an exited thread's files fail at once and drop it).
const RESCAN: Duration = Duration::from_millis(100);

/// The two `/proc` files of one thread the sampler reads at every tick,
/// kept open and read with `pread` (no open, path lookup and close per
/// thread per tick).
struct ThreadFiles {
    schedstat: std::fs::File,
    stat: std::fs::File,
    /// CPU time at the previous tick (`None` before the first reading).
    oncpu: Option<u64>,
}

impl ThreadFiles {
    fn open(pid: i32, tid: i32) -> Option<ThreadFiles> {
        let dir = format!("/proc/{pid}/task/{tid}");
        Some(ThreadFiles {
            schedstat: std::fs::File::open(format!("{dir}/schedstat")).ok()?,
            stat: std::fs::File::open(format!("{dir}/stat")).ok()?,
            oncpu: None,
        })
    }

    /// Nanoseconds the thread has spent on a CPU (`schedstat`'s first field).
    fn cpu_ns(&self) -> Option<u64> {
        let mut buf = [0u8; 96];
        let n = self.schedstat.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// The state letter (`stat`'s third field, after the command name in
    /// parentheses, which may itself hold parentheses: the last `)` ends
    /// it). The name is at most 15 bytes and the pid at most 10 digits, so
    /// the state lies within the first 128 bytes.
    fn state(&self) -> Option<u8> {
        let mut buf = [0u8; 128];
        let n = self.stat.read_at(&mut buf, 0).ok()?;
        let head = buf.get(..n)?;
        let close = head.iter().rposition(|&b| b == b')')?;
        head.get(close + 2).copied()
    }
}

impl PtraceSampler {
    /// Checks the target once (the per-tick seize does not: see
    /// [`SeizedProcess::run_held`]), opens its memory and starts the one
    /// tracer thread of the recording.
    pub(crate) fn new(pid: i32, period: Duration, stack_bytes: u32) -> Result<Self, SnapshotError> {
        let pid = SeizedProcess::precheck(pid)?;
        let mem = LiveMemory::open(pid).map_err(|source| SnapshotError::Memory { pid, source })?;
        let stack_bytes = stack_bytes as usize;
        let mem = std::sync::Arc::new(mem);
        let shared = std::sync::Arc::clone(&mem);
        let tracer = TickTracer::start(move |threads: &[ThreadState]| {
            read_held(&shared, stack_bytes, threads)
        })
        .map_err(SnapshotError::Process)?;
        Ok(PtraceSampler {
            pid,
            period,
            next: Instant::now(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(pid.unsigned_abs()),
            tracer: Some(tracer),
            mem,
            stack_bytes,
            holds: Vec::new(),
            stop_latencies: Vec::new(),
            failed_ticks: 0,
            threads: 0,
            files: std::collections::BTreeMap::new(),
            last_scan: None,
            running: Vec::new(),
            monitor: None,
        })
    }

    /// Under sudo: each tick's hold is asked of the root monitor (gopeek
    /// itself may not ptrace after its privilege drop); the registers come
    /// from the monitor, the stacks are read here while it holds.
    pub(crate) fn via_monitor(
        mut self,
        m: std::sync::Arc<crate::process::monitor::Monitor>,
    ) -> Self {
        self.monitor = Some(m);
        // The tracer thread could not ptrace after the drop: stop it.
        self.tracer = None;
        self
    }

    /// How long until the next tick.
    pub(crate) fn until_next(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// Threads stopped at the last tick.
    pub(crate) fn thread_count(&self) -> usize {
        self.threads
    }

    /// Uniform in [0, 1): xorshift64, enough to break phase locking.
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn jitter(&mut self) -> Duration {
        let u = self.uniform();
        self.period.mul_f64(0.5 + u)
    }

    /// Re-reads the task list: files opened for new threads, dropped for
    /// exited ones. `false` once the process is gone.
    fn rescan(&mut self) -> bool {
        self.last_scan = Some(Instant::now());
        let Ok(tids) = proc_fs::thread_ids(self.pid) else {
            return false;
        };
        if tids.is_empty() {
            return false;
        }
        self.files.retain(|t, _| tids.binary_search(t).is_ok());
        for t in tids {
            if let std::collections::btree_map::Entry::Vacant(e) = self.files.entry(t) {
                if let Some(f) = ThreadFiles::open(self.pid, t) {
                    e.insert(f);
                }
            }
        }
        true
    }

    /// Takes one tick's samples if a tick is due; `false` once the
    /// process is gone.
    pub(crate) fn sample(&mut self, out: &mut Vec<RawSample>) -> bool {
        if Instant::now() < self.next {
            return true;
        }
        self.next = Instant::now() + self.jitter();
        if self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN) && !self.rescan() {
            return false;
        }
        // Threads in state R that also ran since the last tick: a thread
        // waiting for a CPU (state R on a busy machine) uses none.
        let mut running = std::mem::take(&mut self.running);
        running.clear();
        let period = self.period.as_nanos().max(1) as f64;
        let mut gone = Vec::new();
        let tids: Vec<i32> = self.files.keys().copied().collect();
        for t in tids {
            let Some(f) = self.files.get_mut(&t) else {
                continue;
            };
            let Some(ns) = f.cpu_ns() else {
                gone.push(t);
                continue;
            };
            // A thread that ran less than a period since the last tick is
            // sampled with probability ran/period (a short burst, such as
            // sysmon waking, would otherwise count as a whole period).
            let ran = f.oncpu.map_or(u64::MAX, |before| ns.saturating_sub(before));
            f.oncpu = Some(ns);
            let p = ran as f64 / period;
            let take = ran > 0 && (p >= 1.0 || self.uniform() < p);
            if take && self.files.get(&t).and_then(ThreadFiles::state) == Some(b'R') {
                running.push(t);
            }
        }
        for t in gone {
            self.files.remove(&t);
        }
        if self.files.is_empty() {
            // Every thread's files failed: re-read the task list now.
            self.last_scan = None;
            self.running = running;
            return proc_fs::process_state(self.pid).is_ok();
        }
        self.threads = running.len();
        if running.is_empty() {
            self.running = running;
            return true;
        }
        let only = running.clone();
        self.running = running;
        let held = match (&self.monitor, &mut self.tracer) {
            (Some(m), _) => {
                let (mem, stack_bytes) = (&*self.mem, self.stack_bytes);
                held_by_monitor(m, only, MAX_HOLD, |threads| {
                    read_held(mem, stack_bytes, threads)
                })
            }
            (None, Some(tracer)) => tracer.tick(self.pid, MAX_HOLD, only).map_err(|_| ()),
            (None, None) => Err(()),
        };
        let (samples, stats) = match held {
            Ok(r) => r,
            Err(_) => {
                self.failed_ticks += 1;
                return proc_fs::process_state(self.pid).is_ok();
            }
        };
        out.extend(samples);
        self.holds.push(stats.pause);
        self.stop_latencies.push(stats.stop_latency);
        true
    }
}

/// What the tracer thread reads of each stopped thread while it is held:
/// its registers (already read by the stop) and the top of its stack.
fn read_held(mem: &LiveMemory, stack_bytes: usize, threads: &[ThreadState]) -> Vec<RawSample> {
    let time = Instant::now();
    let mut samples = Vec::with_capacity(threads.len());
    for t in threads {
        let sp = t.regs.sp();
        let mut stack = vec![0u8; stack_bytes];
        // The stack may end sooner than the copy: try smaller copies.
        let mut n = stack_bytes;
        while n >= 512 && mem.read_at(sp, &mut stack[..n]).is_err() {
            n /= 2;
        }
        stack.truncate(if n >= 512 { n } else { 0 });
        samples.push(RawSample {
            tid: t.tid,
            time: time.elapsed().as_nanos() as u64,
            ip: t.regs.pc(),
            regs: Some(UserRegs {
                ip: t.regs.pc(),
                sp,
                bp: t.regs.fp(),
                g: t.regs.go_g(),
            }),
            stack,
        });
    }
    samples
}

/// One tick's hold made by the root monitor (under sudo): the threads in
/// `only`, for at most `max_pause`; `read` runs while they are held,
/// and the hold is released whatever it returns.
fn held_by_monitor<T>(
    m: &crate::process::monitor::Monitor,
    only: Vec<i32>,
    max_pause: Duration,
    read: impl FnOnce(&[ThreadState]) -> T,
) -> Result<(T, crate::process::PauseStats), ()> {
    let threads = m.hold(Some(only), max_pause).map_err(|_| ())?;
    let out = read(&threads);
    let stats = m.release().map_err(|_| ())?;
    Ok((out, stats))
}
