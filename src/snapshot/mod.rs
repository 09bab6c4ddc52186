//! One snapshot: from a target to a [`DumpSnapshot`], holding it only
//! while the capture strategy needs it still. The pipeline ([`take`]) is
//! written against a [`Source`] (the live process today, [`live`]; a core
//! file next) and picks a capture strategy by mode: consistent (read
//! while running, confirm while held), nonblocking (hold only running
//! threads), or held (a core file: already still, read in one pass).
//! Under sudo the same live modes run, the holds made by the root
//! monitor ([`LiveTarget`]). Timing is returned as data, for the command line to print.

mod census;
pub(crate) mod core;
pub mod frame_select;
mod godebug;
pub(crate) mod live;
pub(crate) mod repeat;
pub mod sched;
pub(crate) mod source;
#[cfg(test)]
mod tests;
pub mod threads;
pub mod values;

use crate::binary::elf::{ElfError, GoBinary};
use crate::binary::program::{GoProgram, ProgramError};
use crate::dump::{rfc3339, DumpSnapshot};
use crate::gotrace::status::DEFAULT_GSTATUS_NAMES;
use crate::layout::offsets::RuntimeOffsets;
use crate::layout::{gstatus_table, load_program, wait_reason_table, LayoutError};
use crate::process::{PauseStats, ProcessError};
use crate::walk::capture::{self, CaptureStats, Hold, Mode};
use crate::walk::{build_goroutines, Capture, WalkConfig, WalkError};
pub use census::count_goroutines;
use live::LiveProcess;
use source::{Source, Stopped};
use std::time::{Duration, Instant, SystemTime};
use thiserror::Error;

/// Why a snapshot failed as a whole.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("cannot read the executable of process {pid}: {source}")]
    Exe { pid: i32, source: ElfError },
    #[error("process {pid} is not a Go program gopeek can read: {source}")]
    NotGo { pid: i32, source: ProgramError },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Core(crate::corefile::CoreError),
    #[error("process {pid}: {source}")]
    Walk { pid: i32, source: WalkError },
    #[error("cannot read memory of process {pid}: {source}")]
    Memory { pid: i32, source: std::io::Error },
    #[error("process {pid} has no executable to read (a kernel thread?): only user-space Go programs can be inspected")]
    NoExecutable { pid: i32 },
}

impl crate::exit::ExitStatus for SnapshotError {
    fn exit_code(&self) -> u8 {
        use crate::exit::{FAILURE, NOT_GO};
        match self {
            SnapshotError::Process(p) => p.exit_code(),
            SnapshotError::Exe { .. }
            | SnapshotError::NotGo { .. }
            | SnapshotError::Layout(_)
            | SnapshotError::NoExecutable { .. } => NOT_GO,
            SnapshotError::Core(e) => e.exit_code(),
            SnapshotError::Walk { .. } | SnapshotError::Memory { .. } => FAILURE,
        }
    }
}

/// Knobs of one snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Longest the target may be held (`--max-pause`).
    pub max_pause: Duration,
    /// `--nonblocking`: stop only the threads running Go code, read the
    /// rest while the process runs, each goroutine confirmed on its own.
    pub nonblocking: bool,
    /// Keep every frame's SP and FP (for `--system` text); costs one
    /// frame list per goroutine instead of one per distinct stack.
    pub frame_registers: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            max_pause: Duration::from_secs(2),
            nonblocking: false,
            frame_registers: false,
        }
    }
}

impl SnapshotOptions {
    /// The capture strategy these options ask for.
    fn mode(&self) -> Mode {
        if self.nonblocking {
            Mode::Nonblocking
        } else {
            Mode::Consistent
        }
    }
}

/// Where one snapshot's time went, for `GOPEEK_DEBUG_TIMING` and the
/// benchmark (printed by the command line, not here).
#[derive(Debug, Clone)]
pub struct Timing {
    /// How the goroutines were read.
    pub mode: Mode,
    /// Opening and parsing the executable, before the first read of the
    /// target (a core's parse happens while "held", inside `held`).
    pub load: Duration,
    /// Reads while the target ran, before the hold.
    pub read_running: Duration,
    /// What the hold cost the target (pause, stop latency).
    pub pause: PauseStats,
    /// Time spent reading while held (a core: parse and read).
    pub held: Duration,
    /// Symbolizing and applying Go's printing rules, after release.
    pub symbolize: Duration,
    /// The whole snapshot.
    pub total: Duration,
    /// What the capture reused, re-read and retried.
    pub capture: CaptureStats,
}

/// A snapshot and how long it took.
pub struct Snapshot {
    /// The goroutines, as plain data.
    pub dump: DumpSnapshot,
    /// Where the time went.
    pub timing: Timing,
}

/// Takes a snapshot of every goroutine of the live process `pid`.
pub fn snapshot_pid(pid: i32, opts: &SnapshotOptions) -> Result<DumpSnapshot, SnapshotError> {
    take(pid, opts).map(|s| s.dump)
}

/// [`snapshot_pid`], with the timing.
pub fn take(pid: i32, opts: &SnapshotOptions) -> Result<Snapshot, SnapshotError> {
    let t_start = Instant::now();
    let mode = opts.mode();
    let src = LiveProcess::open(pid, None)?;
    run(&src, mode, opts, t_start)
}

/// A live target opened once for any number of snapshots: its executable,
/// its memory descriptor and, under sudo, the root monitor that holds it
/// on request. Under sudo it is opened while still root, and every
/// reading (`dump`, `leaks`, `sched`, `threads`, `print`) is taken after
/// the privilege drop.
pub struct LiveTarget(LiveProcess);

impl LiveTarget {
    /// Opens `pid`; holds go through `monitor` when given.
    pub fn open(
        pid: i32,
        monitor: Option<std::sync::Arc<crate::process::monitor::Monitor>>,
    ) -> Result<LiveTarget, SnapshotError> {
        Ok(LiveTarget(LiveProcess::open(pid, monitor)?))
    }

    /// One snapshot of the target, with the timing.
    pub fn take(&self, opts: &SnapshotOptions) -> Result<Snapshot, SnapshotError> {
        let t_start = Instant::now();
        run(&self.0, opts.mode(), opts, t_start)
    }
}

/// Takes a snapshot of the dead process a core file holds: `exe`
/// overrides the executable the core names. Nothing is held (a core is
/// already still), so the capture reads everything in one pass.
pub fn take_core(
    core: &std::path::Path,
    exe: Option<&std::path::Path>,
    opts: &SnapshotOptions,
) -> Result<Snapshot, SnapshotError> {
    let t_start = Instant::now();
    let src = core::CoreSource::open(core, exe)?;
    run(&src, Mode::Held, opts, t_start)
}

/// The executable a core file belongs to (`exe` overrides the one the
/// core names), checked against the core's bytes; for `gopeek info
/// --core`.
pub fn core_executable(
    core: &std::path::Path,
    exe: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, SnapshotError> {
    Ok(core::CoreSource::open(core, exe)?.exe_path().to_path_buf())
}

/// The one pipeline: parse the executable, read the goroutines with the
/// chosen strategy around one hold, release, symbolize. In [`Mode::Held`]
/// (a core) the hold comes first; otherwise the executable is parsed and
/// most of the target read before the hold.
fn run<S: Source>(
    src: &S,
    mode: Mode,
    opts: &SnapshotOptions,
    t_start: Instant,
) -> Result<Snapshot, SnapshotError> {
    let mem = src.memory();
    let mut taken_at = None;
    let early = if mode == Mode::Held {
        taken_at = Some(rfc3339(src.taken_at().unwrap_or_else(SystemTime::now)));
        // On any error below `stopped` is dropped, which releases.
        let stopped = src.stop(Hold::All, opts.max_pause)?;
        Some((stopped, Instant::now()))
    } else {
        None
    };
    let bin = src.parse_executable()?;
    let (prog, layout) = load_program(&bin).map_err(|source| SnapshotError::NotGo {
        pid: src.pid(),
        source,
    })?;
    let off = layout?.offsets()?;
    let cfg = walk_config(src, &bin, &prog, &off, opts.frame_registers)?;
    let header_labels = prog.version.minor >= 26 && godebug::traceback_labels(src.environ(), &prog);
    let mut strategy = capture::strategy::<S::Memory>(mode);
    let t_read = Instant::now();
    let load = t_read.duration_since(t_start);
    let (stopped, t_held) = match early {
        Some(held) => held,
        None => {
            taken_at = Some(rfc3339(src.taken_at().unwrap_or_else(SystemTime::now)));
            let which = strategy
                .before_hold(&cfg, mem)
                .map_err(|e| src.walk_error(e))?;
            (src.stop(which, opts.max_pause)?, Instant::now())
        }
    };
    let read_running = if mode == Mode::Held {
        Duration::ZERO
    } else {
        t_held.duration_since(t_read)
    };
    // Threads inside Go's signal handler (every thread of a crash core)
    // stand for the context the signal interrupted.
    let threads = crate::walk::signal::interrupted_contexts(&cfg, mem, stopped.threads());
    let read = strategy.while_held(&cfg, mem, threads, &|| stopped.within_budget());
    let held = t_held.elapsed();
    let pause = stopped.release()?;
    let mut captured = read
        .and_then(|()| strategy.after_release(&cfg, mem))
        .map_err(|e| src.walk_error(e))?;
    if let Some(now) = src.nanotime() {
        captured.nanotime = now;
    }
    let t_build = Instant::now();
    let dump = assemble(
        &cfg,
        &mut captured,
        &pause,
        mode,
        src,
        taken_at.unwrap_or_default(),
        header_labels,
    );
    let symbolize = t_build.elapsed();
    Ok(Snapshot {
        dump,
        timing: Timing {
            mode,
            load,
            read_running,
            pause,
            held,
            symbolize,
            total: t_start.elapsed(),
            capture: captured.stats.clone(),
        },
    })
}

/// What the walker needs besides memory: the program, its layout, the
/// load bias and the version's status and wait-reason names.
fn walk_config<'p, 'a, S: Source>(
    src: &S,
    bin: &GoBinary,
    prog: &'p GoProgram<'a>,
    off: &'p RuntimeOffsets,
    frame_registers: bool,
) -> Result<WalkConfig<'p, 'a>, SnapshotError> {
    let (wait_reasons, gstatus) = walk_tables(prog);
    Ok(WalkConfig {
        prog,
        off,
        bias: src.load_bias(bin)?,
        wait_reasons,
        gstatus,
        frame_registers,
    })
}

/// Wait-reason and status names of the target's Go version.
pub(crate) fn walk_tables(prog: &GoProgram<'_>) -> (Vec<String>, Vec<String>) {
    let minor = prog.version.minor;
    let wait_reasons: Vec<String> = match &prog.wait_reasons_from_binary {
        Some(v) => v.clone(),
        None => wait_reason_table(minor)
            .map(|t| t.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
    };
    let gstatus: Vec<String> = gstatus_table(minor)
        .unwrap_or(&DEFAULT_GSTATUS_NAMES[..])
        .iter()
        .map(|s| s.to_string())
        .collect();
    (wait_reasons, gstatus)
}

/// The snapshot as plain data, once everything is read.
fn assemble<S: Source>(
    cfg: &WalkConfig<'_, '_>,
    captured: &mut Capture,
    stats: &PauseStats,
    mode: Mode,
    src: &S,
    taken_at: String,
    header_labels: bool,
) -> DumpSnapshot {
    let goroutines = build_goroutines(cfg, captured);
    let mut warnings = src.warnings();
    warnings.extend(captured.warnings.iter().cloned());
    if mode == Mode::Nonblocking {
        warnings.push(
            "--nonblocking: each goroutine was read consistently on its own, but not all at one instant"
                .to_string(),
        );
    }
    if stats.vanished > 0 {
        warnings.push(format!("{} threads exited during attach", stats.vanished));
    }
    DumpSnapshot {
        schema: "gopeek.dump/1",
        pid: src.pid(),
        nspid: src.nspid(),
        container: src.container(),
        exe: src.exe_display(),
        go_version: cfg.prog.version.raw.clone(),
        go_minor: cfg.prog.version.minor,
        header_labels,
        taken_at,
        pause_us: stats.pause_us(),
        mode: if mode == Mode::Nonblocking {
            "nonblocking"
        } else {
            "consistent"
        },
        goroutines,
        warnings,
        note: None,
    }
}
