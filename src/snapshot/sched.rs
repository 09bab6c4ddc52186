//! `gopeek sched`'s pipeline: open the process and parse its executable
//! once, then read the scheduler as often as asked, each time either while
//! the target runs (racy, as the runtime's own `schedtrace` is) or under a
//! brief hold of every thread (`--consistent`).

use super::live::LiveProcess;
use super::source::{Source, Stopped};
use super::{walk_tables, LiveTarget, SnapshotError};
use crate::gotrace::sched::SchedState;
use crate::layout::{load_program, SchedDetailOffsets};
use crate::walk::capture::Hold;
use crate::walk::sched::{read_sched, SchedConfig, SchedError};
use crate::walk::sched_stack::thread_stack;
use crate::walk::signal::interrupted_contexts;
use crate::walk::ThreadRegs;
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Why `gopeek sched` failed.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum SchedTakeError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("process {pid}: {source}")]
    Sched { pid: i32, source: SchedError },
    #[error("process {pid} has no thread {tid} (its threads are listed in /proc/{pid}/task)")]
    NoThread { pid: i32, tid: i32 },
}

impl crate::exit::ExitStatus for SchedTakeError {
    fn exit_code(&self) -> u8 {
        match self {
            SchedTakeError::Snapshot(e) => e.exit_code(),
            SchedTakeError::Sched { source, .. } => source.exit_code(),
            SchedTakeError::NoThread { .. } => crate::exit::NO_PROCESS,
        }
    }
}

/// Knobs of `gopeek sched`.
#[derive(Debug, Clone)]
pub struct SchedOptions {
    /// Read under a hold of every thread (`--consistent`).
    pub consistent: bool,
    /// Longest the target may be held.
    pub max_pause: Duration,
    /// A P whose goroutine has run this long (ms) is a CPU hog: its thread
    /// is held briefly and unwound.
    pub hog_ms: i64,
}

/// The Ms whose threads matter: with a stop pending, every M holding a
/// P (the initiator and the Ps it waits for); else the CPU hogs' Ms.
fn interesting(state: &SchedState, hog_ms: i64) -> Vec<usize> {
    state
        .ms
        .iter()
        .enumerate()
        .filter(|(_, m)| m.thread_id != 0 && m.curg.is_some())
        .filter(|(_, m)| {
            let p = m.p.and_then(|id| state.ps.iter().find(|p| p.id == id));
            match p {
                Some(_) if state.gcwaiting => true,
                Some(p) => p.running_ms.is_some_and(|ms| ms >= hog_ms),
                None => false,
            }
        })
        .map(|(i, _)| i)
        .collect()
}

/// Unwinds the threads of `which` Ms from `threads`' registers (the
/// target is held).
fn unwind_threads<M: crate::memory::Memory>(
    mem: &M,
    prog: &crate::binary::program::GoProgram<'_>,
    off: &crate::layout::offsets::RuntimeOffsets,
    bias: u64,
    state: &mut SchedState,
    which: &[usize],
    threads: &[ThreadRegs],
) {
    use crate::memory::MemoryExt;
    let wcfg = crate::walk::WalkConfig {
        prog,
        off,
        bias,
        wait_reasons: Vec::new(),
        gstatus: Vec::new(),
        frame_registers: false,
    };
    for &i in which {
        // The M was read before the hold when reading while running: its
        // vDSO bookkeeping and curg are read again, as they are now.
        let mut m = state.ms[i].clone();
        let a = m.addrs.m;
        if a != 0 {
            let now = |o: u64| mem.read_u64(a.wrapping_add(o));
            if let (Ok(sp), Ok(pc), Ok(g)) =
                (now(off.m.vdso_sp), now(off.m.vdso_pc), now(off.m.curg))
            {
                m.addrs.vdso_sp = sp;
                m.addrs.vdso_pc = pc;
                m.addrs.curg = g;
            }
        }
        let m = &m;
        if let Some(regs) = threads.iter().find(|t| t.tid as u64 == m.thread_id) {
            // Caught in Go's signal handler (refusing a preemption
            // signal): the stack of the context the signal interrupted.
            let regs = &interrupted_contexts(&wcfg, mem, vec![*regs])
                .pop()
                .unwrap_or(*regs);
            let st = thread_stack(mem, prog, off, bias, m, regs);
            state.stacks.push(st);
        }
    }
}

/// One reading of the scheduler, as plain data.
#[derive(Debug, Clone)]
pub struct SchedReading {
    /// The target.
    pub pid: i32,
    /// Its executable, as the user should see it.
    pub exe: String,
    /// `go1.N.M` of the target.
    pub go_version: String,
    /// RFC 3339 time of the reading.
    pub taken_at: String,
    /// How long the target was held (`--consistent`), in µs.
    pub pause_us: Option<u64>,
    /// The scheduler.
    pub state: SchedState,
    /// Registers of every thread, when the reading was taken under a hold.
    pub threads: Vec<ThreadRegs>,
}

/// The target's `nanotime()` right now: Go's nanotime is CLOCK_MONOTONIC,
/// which is one clock for every process of the system (outside time
/// namespaces).
fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`, a valid timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    // time_t and c_long are i64 here, not on every target.
    #[allow(clippy::unnecessary_cast)]
    let ns = (ts.tv_sec as i64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as i64);
    ns
}

/// Reads the scheduler of `pid` again and again: `each` gets every
/// reading and says whether to take another (`Ok(true)`), after `pause`.
pub fn watch_sched<E: From<SchedTakeError>>(
    pid: i32,
    opts: &SchedOptions,
    pause: Duration,
    each: &mut dyn FnMut(SchedReading) -> Result<bool, E>,
) -> Result<(), E> {
    let src = LiveProcess::open(pid, None).map_err(SchedTakeError::from)?;
    watch_source(&src, opts, pause, each)
}

impl LiveTarget {
    /// [`watch_sched`] of a target opened earlier: under sudo, opened as
    /// root with the root monitor, and read after the privilege drop, each
    /// reading's holds (`--consistent`, or the threads that matter) made
    /// by the monitor.
    pub fn watch_sched<E: From<SchedTakeError>>(
        &self,
        opts: &SchedOptions,
        pause: Duration,
        each: &mut dyn FnMut(SchedReading) -> Result<bool, E>,
    ) -> Result<(), E> {
        watch_source(&self.0, opts, pause, each)
    }
}

/// One reading of the scheduler in a core file (`exe` overrides the
/// executable the core names): the dead process is its own hold, so the
/// stop-the-world analysis unwinds the threads from their NT_PRSTATUS
/// registers, as a live `--consistent` reading does from ptrace's.
pub fn sched_core<E: From<SchedTakeError>>(
    core: &std::path::Path,
    exe: Option<&std::path::Path>,
    opts: &SchedOptions,
    each: &mut dyn FnMut(SchedReading) -> Result<bool, E>,
) -> Result<(), E> {
    let src = super::core::CoreSource::open(core, exe).map_err(SchedTakeError::from)?;
    let opts = SchedOptions {
        consistent: true,
        ..opts.clone()
    };
    watch_source(&src, &opts, Duration::ZERO, &mut |mut r| {
        // Nothing was paused: a core is still already.
        r.pause_us = None;
        each(r)?;
        Ok(false)
    })
}

/// [`watch_sched`] over any source (a live process or a core).
fn watch_source<S: Source, E: From<SchedTakeError>>(
    src: &S,
    opts: &SchedOptions,
    pause: Duration,
    each: &mut dyn FnMut(SchedReading) -> Result<bool, E>,
) -> Result<(), E> {
    let pid = src.pid();
    let bin = src.parse_executable().map_err(SchedTakeError::from)?;
    let (prog, layout) = load_program(&bin)
        .map_err(|source| SnapshotError::NotGo { pid, source })
        .map_err(SchedTakeError::from)?;
    let layout = layout
        .map_err(SnapshotError::from)
        .map_err(SchedTakeError::from)?;
    let off = layout
        .offsets()
        .map_err(SnapshotError::from)
        .map_err(SchedTakeError::from)?;
    let det = SchedDetailOffsets::from_layout(&layout)
        .map_err(SnapshotError::from)
        .map_err(SchedTakeError::from)?;
    let (wait_reasons, _) = walk_tables(&prog);
    let bias = src.load_bias(&bin).map_err(SchedTakeError::from)?;
    loop {
        let mut cfg = SchedConfig {
            globals: &prog.globals,
            off: &off,
            det: &det,
            wait_reasons: &wait_reasons,
            go_minor: prog.version.minor,
            bias,
            now_ns: 0,
        };
        // A core's reading is of the time the core was written.
        let taken_at = crate::dump::rfc3339(src.taken_at().unwrap_or_else(SystemTime::now));
        let stopped = if opts.consistent {
            Some(
                src.stop(Hold::All, opts.max_pause)
                    .map_err(SchedTakeError::from)?,
            )
        } else {
            None
        };
        cfg.now_ns = src.nanotime().unwrap_or_else(monotonic_ns);
        let mut state = read_sched(src.memory(), &cfg);
        let (threads, pause_us) = match stopped {
            Some(s) => {
                let threads = s.threads();
                if let Ok(st) = state.as_mut() {
                    let which = interesting(st, opts.hog_ms);
                    unwind_threads(src.memory(), &prog, &off, bias, st, &which, &threads);
                }
                let stats = s.release().map_err(SchedTakeError::from)?;
                (threads, Some(stats.pause_us()))
            }
            None => {
                // Read while running: hold just the threads that matter,
                // long enough for their registers and stacks.
                if let Ok(st) = state.as_mut() {
                    let which = interesting(st, opts.hog_ms);
                    let tids: Vec<i32> = which.iter().map(|&i| st.ms[i].thread_id as i32).collect();
                    if !tids.is_empty() {
                        if let Ok(s) = src.stop(Hold::Threads(tids), opts.max_pause) {
                            let threads = s.threads();
                            unwind_threads(src.memory(), &prog, &off, bias, st, &which, &threads);
                            s.release().map_err(SchedTakeError::from)?;
                        }
                    }
                }
                (Vec::new(), None)
            }
        };
        let state = state.map_err(|source| {
            let e = src.walk_error(crate::walk::WalkError::Abandoned);
            match e {
                SnapshotError::Process(p) => SchedTakeError::Snapshot(SnapshotError::Process(p)),
                _ => SchedTakeError::Sched { pid, source },
            }
        })?;
        let reading = SchedReading {
            pid,
            exe: src.exe_display(),
            go_version: prog.version.raw.clone(),
            taken_at,
            pause_us,
            state,
            threads,
        };
        if !each(reading)? {
            return Ok(());
        }
        std::thread::sleep(pause);
    }
}
