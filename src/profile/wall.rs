//! `gopeek record --wall`: a wall-clock profile, as fgprof takes one from
//! inside the process, taken from outside. At jittered ticks (uniform in
//! [0.5, 1.5] periods, so that a target with a periodic rhythm is not
//! sampled in phase with it) gopeek takes one `--nonblocking` capture
//! ([`crate::snapshot::repeat`]): only the threads running Go code stop,
//! for their registers and stacks; every other goroutine is read while
//! the process runs. Every goroutine found, running or parked, is one
//! sample of that tick, so time spent waiting (sleeps, channels, locks,
//! system calls) shows beside time on a CPU. Go's system goroutines are
//! left out, as Go's goroutine profile (and so fgprof) leaves them out.
//!
//! The period written to the profile is the mean interval between the
//! captures actually taken (a capture can take longer than the asked
//! period on a process with many goroutines), so each goroutine's samples
//! add up to the recording's duration. A goroutine whose stack kept
//! changing through every re-read is counted (`unattributed`), never
//! drawn torn.

use super::attribute::RawFrame;
use super::record::{Progress, RecordError};
use super::symbols::Symbols;
use super::{Clock, CpuProfile, CpuSample, Labels, ProfFrame, RecordStats};
use crate::process::{proc_fs, ProcessError};
use crate::snapshot::repeat::{with_repeated, with_repeated_target, Repeated};
use crate::snapshot::SnapshotError;
use crate::walk::Capture;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `--rate` of `record --wall` when none is given: each capture reads
/// every goroutine, so a modest rate.
pub const DEFAULT_WALL_HZ: u32 = 20;

type Key = (Vec<RawFrame>, u64, Option<Labels>, i32);

/// A running wall-clock recording of one process.
pub struct WallSession<'r, 's, 'p, 'a> {
    rep: &'r Repeated<'s, 'p, 'a>,
    symbols: Symbols<'p, 'a>,
    pid: i32,
    exe: String,
    go_version: String,
    period: Duration,
    next: Instant,
    rng: u64,
    agg: FxHashMap<Key, u64>,
    stats: RecordStats,
    system: FxHashMap<u64, bool>,
    /// Captures taken in this interval, and in all.
    snapshots: u64,
    total_snapshots: u64,
    total_samples: u64,
    last_goroutines: usize,
    /// How long each capture held the threads it stopped.
    holds: Vec<Duration>,
    /// Captures that failed (the last error said in the comments).
    failed: u64,
    last_error: Option<String>,
    started: Instant,
    interval_start: (Instant, SystemTime),
    alive: bool,
}

/// Opens `pid` once and runs `f` with a wall-clock session sampling it at
/// `rate_hz` captures per second.
pub fn with_wall_session<R>(
    pid: i32,
    rate_hz: u32,
    f: impl FnOnce(&mut WallSession<'_, '_, '_, '_>) -> R,
) -> Result<R, RecordError> {
    Ok(with_repeated(pid, |rep| {
        wall_session(rep, pid, rate_hz, f)
    })?)
}

/// [`with_wall_session`] on a target opened already: under sudo, opened
/// as root with the root monitor (which makes each capture's hold), and
/// root dropped since.
pub fn with_wall_session_on<R>(
    target: &crate::snapshot::LiveTarget,
    pid: i32,
    rate_hz: u32,
    f: impl FnOnce(&mut WallSession<'_, '_, '_, '_>) -> R,
) -> Result<R, RecordError> {
    Ok(with_repeated_target(target, |rep| {
        wall_session(rep, pid, rate_hz, f)
    })?)
}

fn wall_session<R>(
    rep: &Repeated<'_, '_, '_>,
    pid: i32,
    rate_hz: u32,
    f: impl FnOnce(&mut WallSession<'_, '_, '_, '_>) -> R,
) -> R {
    {
        let prog = rep.cfg.prog;
        let now = Instant::now();
        let mut s = WallSession {
            rep,
            symbols: Symbols::new(prog),
            pid,
            exe: rep.exe_display(),
            go_version: prog.version.raw.clone(),
            period: Duration::from_nanos(1_000_000_000 / u64::from(rate_hz.max(1))),
            next: now,
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(pid.unsigned_abs()),
            agg: FxHashMap::default(),
            stats: RecordStats::default(),
            system: FxHashMap::default(),
            snapshots: 0,
            total_snapshots: 0,
            total_samples: 0,
            last_goroutines: 0,
            holds: Vec::new(),
            failed: 0,
            last_error: None,
            started: now,
            interval_start: (now, SystemTime::now()),
            alive: true,
        };
        f(&mut s)
    }
}

/// `true` when the error says the process is gone (or dying).
fn exited(pid: i32, e: &SnapshotError) -> bool {
    matches!(
        e,
        SnapshotError::Process(
            ProcessError::Exited { .. }
                | ProcessError::NoSuchProcess { .. }
                | ProcessError::Zombie { .. }
        )
    ) || !matches!(proc_fs::process_state(pid), Ok(s) if s != 'Z' && s != 'X')
}

impl WallSession<'_, '_, '_, '_> {
    /// Uniform in [0, 1): xorshift64, enough to break phase locking.
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// How long to wait before the next [`Self::tick`].
    pub fn sleep_hint(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// Takes one capture if one is due; `false` once the target has
    /// exited (what was sampled is kept).
    pub fn tick(&mut self) -> bool {
        if !self.alive {
            return false;
        }
        let now = Instant::now();
        if now < self.next {
            return true;
        }
        let u = self.uniform();
        self.next = now + self.period.mul_f64(0.5 + u);
        match self.rep.capture() {
            Ok((cap, pause)) => {
                self.holds.push(pause.pause);
                self.add(&cap);
                self.snapshots += 1;
                self.total_snapshots += 1;
            }
            Err(e) if exited(self.pid, &e) => self.alive = false,
            Err(e) => {
                self.failed += 1;
                self.last_error = Some(e.to_string());
            }
        }
        self.alive
    }

    fn add(&mut self, cap: &Capture) {
        let mut n = 0;
        for g in &cap.goroutines {
            let startpc = g.rec.startpc;
            let rep = self.rep;
            if *self
                .system
                .entry(startpc)
                .or_insert_with(|| rep.is_system(startpc))
            {
                continue;
            }
            n += 1;
            let st = match &g.stack {
                Ok(st) => st,
                Err(_) => {
                    self.stats.unattributed += 1;
                    continue;
                }
            };
            if st.shape.error.is_some() {
                self.stats.truncated += 1;
            }
            let frames: Vec<RawFrame> = st
                .frames()
                .map(|f| RawFrame::Go {
                    pc: f.pc,
                    sym_pc: f.sym_pc,
                })
                .collect();
            *self
                .agg
                .entry((frames, g.rec.goid, g.labels.clone(), g.thread.unwrap_or(0)))
                .or_default() += 1;
            self.stats.samples += 1;
            self.total_samples += 1;
        }
        self.last_goroutines = n;
    }

    /// Where the recording stands (`threads`: the goroutines of the last
    /// capture; `lost`: captures that failed).
    pub fn progress(&self) -> Progress {
        Progress {
            elapsed: self.started.elapsed(),
            samples: self.total_samples,
            lost: self.failed,
            threads: self.last_goroutines,
        }
    }

    /// Captures taken so far (all intervals).
    pub fn captures(&self) -> u64 {
        self.total_snapshots
    }

    fn comment(&self, duration: Duration) -> String {
        let mut h = self.holds.clone();
        h.sort_unstable();
        let q = |f: f64| {
            h.get(((h.len() as f64 - 1.0) * f).round() as usize)
                .map_or(0, |d| d.as_micros())
        };
        let mean_ms = duration.as_secs_f64() * 1e3 / self.snapshots.max(1) as f64;
        format!(
            "wall clock: {} --nonblocking captures at jittered intervals (asked {} Hz, mean {:.1} ms apart); every goroutine sampled at each, running or parked (Go's system goroutines left out, as in Go's goroutine profile); the threads running Go code were stopped for p50 {} us, p99 {} us per capture, the rest read while the process ran",
            self.snapshots,
            1_000_000_000 / self.period.as_nanos().max(1),
            mean_ms,
            q(0.5),
            q(0.99)
        )
    }

    /// The profile of everything sampled since the previous call (or the
    /// start), symbolized; the next interval starts now.
    pub fn take(&mut self, comments: Vec<String>) -> CpuProfile {
        let (t0, wall0) = self.interval_start;
        let duration = t0.elapsed();
        self.interval_start = (Instant::now(), SystemTime::now());
        let mut by_stack: FxHashMap<Vec<RawFrame>, Arc<[ProfFrame]>> = FxHashMap::default();
        let mut samples = Vec::with_capacity(self.agg.len());
        for ((frames, goid, labels, tid), count) in self.agg.drain() {
            let sym = match by_stack.get(&frames) {
                Some(s) => s.clone(),
                None => {
                    let s: Arc<[ProfFrame]> = Arc::from(self.symbols.frames(&frames));
                    by_stack.insert(frames, s.clone());
                    s
                }
            };
            samples.push(CpuSample {
                frames: sym,
                goid: Some(goid),
                labels,
                tid,
                count,
                kernel: false,
                external: false,
            });
        }
        let mut all = vec![self.comment(duration)];
        if self.failed > 0 {
            all.push(format!(
                "{} captures failed; the last: {}",
                self.failed,
                self.last_error.as_deref().unwrap_or("?")
            ));
        }
        all.extend(comments);
        let period_ns = if self.snapshots > 0 {
            (duration.as_nanos() / u128::from(self.snapshots)) as u64
        } else {
            self.period.as_nanos() as u64
        };
        self.snapshots = 0;
        self.holds.clear();
        CpuProfile {
            clock: Clock::Wall,
            pid: self.pid,
            exe: self.exe.clone(),
            go_version: self.go_version.clone(),
            period_ns: period_ns.max(1),
            start_unix_ns: wall0
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            duration_ns: duration.as_nanos() as u64,
            samples,
            stats: std::mem::take(&mut self.stats),
            comments: all,
        }
    }
}
