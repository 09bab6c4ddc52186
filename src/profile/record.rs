//! A recording session: open the target (executable, runtime layout,
//! memory), start the per-thread samplers, then on each tick drain the
//! rings, follow new threads, attribute and aggregate the samples. `gopeek
//! record` ticks until the duration, Ctrl-C or the target's exit and takes
//! one profile; `gopeek top` takes one per second.

use super::attribute::{Attributed, Attributor, Outcome};
use super::ptrace::PtraceSampler;
use super::symbols::Symbols;
use super::{CpuProfile, CpuSample, Labels, RecordStats};
use crate::layout::load_program;
use crate::process::monitor::Monitor;
use crate::process::perf::ring::RawSample;
use crate::process::perf::{PerfError, PerfOptions, PerfSampler};
use crate::process::proc_fs::read_maps;
use crate::process::LiveMemory;
use crate::snapshot::live::LiveProcess;
use crate::snapshot::source::Source;
use crate::snapshot::SnapshotError;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// How often the rings are drained and the thread list re-read.
pub const TICK: Duration = Duration::from_millis(25);
/// How often `allgs` is re-read (the g register is checked against it).
const ALLGS_EVERY: Duration = Duration::from_secs(1);

/// Why a recording could not start.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Target(#[from] SnapshotError),
    #[error(transparent)]
    Perf(#[from] PerfError),
}

impl crate::exit::ExitStatus for RecordError {
    fn exit_code(&self) -> u8 {
        match self {
            RecordError::Target(e) => e.exit_code(),
            RecordError::Perf(e) => e.exit_code(),
        }
    }
}

/// How samples are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// perf events per thread; the target never stops.
    Perf,
    /// perf events, or the ptrace sampler where they are refused.
    PerfOrPtrace,
    /// Stop the running threads briefly at each tick (no perf events).
    Ptrace,
}

/// What to record.
#[derive(Debug, Clone, Copy)]
pub struct RecordOptions {
    /// Which sampler.
    pub backend: Backend,
    /// Samples per second of each thread's CPU time.
    pub rate_hz: u32,
    /// Bytes of stack copied per sample.
    pub stack_bytes: u32,
}

impl RecordOptions {
    /// The sampling period in nanoseconds.
    pub fn period_ns(&self) -> u64 {
        1_000_000_000 / u64::from(self.rate_hz.max(1))
    }

    fn perf(&self) -> PerfOptions {
        // Room for ~100 ms of samples of a thread on a CPU all the time.
        let per_sample = u64::from(self.stack_bytes) + 256;
        let bytes = u64::from(self.rate_hz.max(1)) * per_sample / 10;
        PerfOptions {
            period_ns: self.period_ns(),
            stack_bytes: self.stack_bytes,
            ring_pages: (bytes / 4096).clamp(8, 512).next_power_of_two() as usize,
        }
    }
}

/// Where a recording stands (for the progress line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Since the samplers started.
    pub elapsed: Duration,
    /// Samples attributed so far.
    pub samples: u64,
    /// Samples the kernel dropped so far.
    pub lost: u64,
    /// Threads being sampled.
    pub threads: usize,
}

/// Stack, goroutine, labels, thread, in the kernel, outside Go.
enum Sampler {
    Perf(PerfSampler),
    Ptrace(PtraceSampler),
}

type Key = (
    Vec<super::attribute::RawFrame>,
    Option<u64>,
    Option<Labels>,
    i32,
    bool,
    bool,
);

/// A running recording of one process.
pub struct Session<'p, 'a> {
    pid: i32,
    exe: String,
    go_version: String,
    opts: RecordOptions,
    attr: Attributor<'p, 'a, LiveMemory>,
    symbols: Symbols<'p, 'a>,
    sampler: Sampler,
    /// Why the ptrace sampler runs instead of perf, if it does.
    pub fallback: Option<String>,
    raw: Vec<RawSample>,
    agg: FxHashMap<Key, u64>,
    stats: RecordStats,
    lost_taken: u64,
    total_samples: u64,
    started: Instant,
    interval_start: (Instant, SystemTime),
    last_allgs: Instant,
    alive: bool,
}

/// Opens `pid`, starts sampling it and runs `f` with the session; the
/// samplers stop when `f` returns.
pub fn with_session<R>(
    pid: i32,
    opts: RecordOptions,
    f: impl FnOnce(&mut Session<'_, '_>) -> R,
) -> Result<R, RecordError> {
    with_session_as(pid, opts, None, || Ok::<(), RecordError>(()), f)
}

/// [`with_session`] for `sudo gopeek`: everything that needs root is done
/// first (the executable and `/proc/PID/mem` opened, the perf events of
/// the existing threads opened and mapped, the ptrace sampler's files
/// opened, the vDSO's place read), then `drop_privileges` runs, and only
/// then is anything of the target parsed or read. With a `monitor`, the
/// events of threads created later are opened by it and the ptrace
/// sampler's holds are made by it.
pub fn with_session_as<R, E: From<RecordError>>(
    pid: i32,
    opts: RecordOptions,
    monitor: Option<Arc<Monitor>>,
    drop_privileges: impl FnOnce() -> Result<(), E>,
    f: impl FnOnce(&mut Session<'_, '_>) -> R,
) -> Result<R, E> {
    let src = LiveProcess::open(pid, None).map_err(RecordError::from)?;
    let ptrace = || {
        let p = PtraceSampler::new(
            pid,
            Duration::from_nanos(opts.period_ns()),
            opts.stack_bytes,
        )?;
        Ok::<_, RecordError>(Sampler::Ptrace(match &monitor {
            Some(m) => p.via_monitor(Arc::clone(m)),
            None => p,
        }))
    };
    let perf = || {
        let mut p = PerfSampler::start(pid, opts.perf())?;
        if let Some(m) = &monitor {
            p.set_opener(m.perf_opener());
        }
        Ok::<_, PerfError>(p)
    };
    let (mut sampler, fallback) = match opts.backend {
        Backend::Ptrace => (ptrace()?, None),
        Backend::Perf => (Sampler::Perf(perf().map_err(RecordError::from)?), None),
        Backend::PerfOrPtrace => match perf() {
            Ok(p) => (Sampler::Perf(p), None),
            Err(e @ PerfError::Refused { .. }) => (ptrace()?, Some(e.to_string())),
            Err(e) => return Err(RecordError::from(e).into()),
        },
    };
    let vdso = read_maps(pid)
        .ok()
        .and_then(|m| m.into_iter().find(|m| m.path == "[vdso]"))
        .map(|m| (m.start, m.end));
    drop_privileges()?;
    let bin = src.parse_executable().map_err(RecordError::from)?;
    let (prog, layout) = load_program(&bin)
        .map_err(|source| RecordError::from(SnapshotError::NotGo { pid, source }))?;
    let off = layout
        .map_err(SnapshotError::from)
        .and_then(|l| l.offsets().map_err(SnapshotError::from))
        .map_err(RecordError::from)?;
    let bias = src.load_bias(&bin).map_err(RecordError::from)?;
    // The events ran while the executable was parsed (they start first,
    // as root under sudo): what they sampled before the recording's start
    // is not part of it.
    if let Sampler::Perf(p) = &mut sampler {
        let mut before = Vec::new();
        p.drain(&mut before);
    }
    let now = Instant::now();
    let mut s = Session {
        pid,
        exe: src.exe_display(),
        go_version: prog.version.raw.clone(),
        opts,
        attr: Attributor::new(&prog, &off, bias, src.memory()),
        symbols: Symbols::new(&prog),
        sampler,
        fallback,
        raw: Vec::new(),
        agg: FxHashMap::default(),
        stats: RecordStats::default(),
        lost_taken: 0,
        total_samples: 0,
        started: now,
        interval_start: (now, SystemTime::now()),
        last_allgs: now - ALLGS_EVERY,
        alive: true,
    };
    s.attr.set_vdso(vdso);
    s.attr.new_drain(true);
    Ok(f(&mut s))
}

impl Session<'_, '_> {
    /// Drains the rings, follows new threads and attributes what came in.
    /// `false` once the target has exited (what it sampled is kept).
    pub fn tick(&mut self) -> bool {
        if !self.alive {
            return false;
        }
        self.alive = match &mut self.sampler {
            Sampler::Perf(p) => {
                p.drain(&mut self.raw);
                p.rescan(&mut self.raw)
            }
            Sampler::Ptrace(p) => p.sample(&mut self.raw),
        };
        if !self.raw.is_empty() {
            let allgs = self.last_allgs.elapsed() >= ALLGS_EVERY;
            if allgs {
                self.last_allgs = Instant::now();
            }
            self.attr.new_drain(allgs);
            let raw = std::mem::take(&mut self.raw);
            for s in &raw {
                self.add(s);
            }
            self.raw = raw;
            self.raw.clear();
        }
        self.stats.threads = self.stats.threads.max(self.thread_count() as u64);
        self.alive
    }

    fn add(&mut self, s: &RawSample) {
        let Some((a, outcome)) = self.attr.attribute(s) else {
            self.stats.unattributed += 1;
            return;
        };
        match outcome {
            Outcome::Whole => {}
            Outcome::Truncated => self.stats.truncated += 1,
            Outcome::External => self.stats.external += 1,
        }
        self.stats.samples += 1;
        self.total_samples += 1;
        let Attributed {
            frames,
            goid,
            labels,
            tid,
            kernel,
            external,
        } = a;
        let labels = self.attr.labels_at(labels);
        *self
            .agg
            .entry((frames, goid, labels, tid, kernel, external))
            .or_default() += 1;
    }

    /// Where the recording stands.
    pub fn progress(&self) -> Progress {
        Progress {
            elapsed: self.started.elapsed(),
            samples: self.total_samples,
            lost: self.lost(),
            threads: self.thread_count(),
        }
    }

    fn lost(&self) -> u64 {
        match &self.sampler {
            Sampler::Perf(p) => p.lost,
            Sampler::Ptrace(_) => 0,
        }
    }

    fn thread_count(&self) -> usize {
        match &self.sampler {
            Sampler::Perf(p) => p.thread_count(),
            Sampler::Ptrace(p) => p.thread_count(),
        }
    }

    /// How long to wait before the next [`Self::tick`].
    pub fn sleep_hint(&self) -> Duration {
        match &self.sampler {
            Sampler::Perf(_) => TICK,
            Sampler::Ptrace(p) => p.until_next().min(TICK),
        }
    }

    /// How the samples were taken, for the profile's comments.
    pub fn backend_comment(&self) -> String {
        let hz = 1_000_000_000 / self.opts.period_ns().max(1);
        match &self.sampler {
            Sampler::Perf(_) => format!(
                "backend perf: perf_event_open task-clock per thread at {hz} Hz, unwound by gopeek from copied stacks; the target was never stopped"
            ),
            Sampler::Ptrace(p) => {
                let sorted = |v: &[Duration]| {
                    let mut v = v.to_vec();
                    v.sort_unstable();
                    v
                };
                let (h, s) = (sorted(&p.holds), sorted(&p.stop_latencies));
                let q = |h: &[Duration], f: f64| h.get(((h.len() as f64 - 1.0) * f).round() as usize).map_or(0, |d| d.as_micros());
                format!(
                    "backend ptrace: the running threads were stopped at jittered ticks (mean {hz} Hz) to read registers and stacks; hold per tick p50 {} us, p99 {} us over {} ticks (of which stopping the threads p50 {} us, p99 {} us){}{}",
                    q(&h, 0.5),
                    q(&h, 0.99),
                    h.len(),
                    q(&s, 0.5),
                    q(&s, 0.99),
                    // Not silently: ticks whose hold could not be made
                    // (threads gone, another tracer, under sudo the
                    // monitor's 60 s hold budget spent).
                    match p.failed_ticks {
                        0 => String::new(),
                        n => format!("; {n} ticks could not stop the threads (threads gone, another tracer, or under sudo the monitor's hold budget spent) and have no samples"),
                    },
                    self.fallback.as_ref().map_or(String::new(), |why| format!("; perf events were refused: {why}"))
                )
            }
        }
    }

    /// `false` once the target has exited.
    pub fn target_alive(&self) -> bool {
        self.alive
    }

    /// The profile of everything sampled since the previous call (or the
    /// start), symbolized; the next interval starts now.
    pub fn take(&mut self, comments: Vec<String>) -> CpuProfile {
        let (t0, wall0) = self.interval_start;
        self.interval_start = (Instant::now(), SystemTime::now());
        let mut samples = Vec::with_capacity(self.agg.len());
        let mut by_stack: FxHashMap<Vec<super::attribute::RawFrame>, Arc<[super::ProfFrame]>> =
            FxHashMap::default();
        for ((frames, goid, labels, tid, kernel, external), count) in self.agg.drain() {
            let sym = match by_stack.get(&frames) {
                Some(s) => s.clone(),
                None => {
                    let s: Arc<[super::ProfFrame]> = Arc::from(self.symbols.frames(&frames));
                    by_stack.insert(frames, s.clone());
                    s
                }
            };
            samples.push(CpuSample {
                frames: sym,
                goid,
                labels,
                tid,
                count,
                kernel,
                external,
            });
        }
        let mut stats = std::mem::take(&mut self.stats);
        let lost = self.lost();
        stats.lost = lost - self.lost_taken;
        self.lost_taken = lost;
        if let Sampler::Perf(p) = &self.sampler {
            stats.throttled = p.throttled;
        }
        let mut comments = comments;
        comments.insert(0, self.backend_comment());
        if matches!(&self.sampler, Sampler::Perf(p) if !p.counts_kernel_time()) {
            comments.push("time in system calls is not counted: the kernel refused kernel-mode samples (perf_event_paranoid; run as root or with CAP_PERFMON)".into());
        }
        CpuProfile {
            clock: super::Clock::Cpu,
            pid: self.pid,
            exe: self.exe.clone(),
            go_version: self.go_version.clone(),
            period_ns: self.opts.period_ns(),
            start_unix_ns: wall0
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            duration_ns: t0.elapsed().as_nanos() as u64,
            samples,
            stats,
            comments,
        }
    }
}
