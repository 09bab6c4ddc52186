//! `gopeek threads`'s pipeline: open the process, parse its executable,
//! hold every thread briefly (as `dump` does: registers need a stop),
//! read the scheduler and each thread's registers, stack and code under
//! that one hold, release, and return plain views.

use super::live::LiveProcess;
use super::sched::SchedTakeError;
use super::source::{Source, Stopped};
use super::{walk_tables, LiveTarget, SnapshotError};
use crate::binary::disasm::SymbolTable;
use crate::layout::{load_program, SchedDetailOffsets};
use crate::walk::capture::Hold;
use crate::walk::sched::{read_sched, SchedConfig};
use crate::walk::threads::{thread_view, ThreadView, ThreadsConfig};
use std::time::{Duration, SystemTime};

/// Knobs of `gopeek threads`.
#[derive(Debug, Clone)]
pub struct ThreadsOptions {
    /// Only this thread (`--tid`).
    pub tid: Option<i32>,
    /// Instructions to disassemble from each PC (`--disasm N`).
    pub disasm: usize,
    /// Longest the target may be held.
    pub max_pause: Duration,
}

/// Every thread of the target at one instant, as plain data.
#[derive(Debug, Clone)]
pub struct ThreadsReport {
    /// The target.
    pub pid: i32,
    /// Its executable, as the user should see it.
    pub exe: String,
    /// `go1.N.M`.
    pub go_version: String,
    /// GOARCH of the executable (names the register set).
    pub goarch: &'static str,
    /// RFC 3339 time of the hold.
    pub taken_at: String,
    /// How long the target was held, in µs.
    pub pause_us: Option<u64>,
    /// The threads, in the kernel's order.
    pub threads: Vec<ThreadView>,
    /// Why M, P and goroutine are missing, if the scheduler was unreadable.
    pub warnings: Vec<String>,
}

/// The registers shown when memory contents may not be (under sudo
/// without `show_memory`): where each thread is, not what it holds.
const LOCATION_REGISTERS: [&str; 6] = ["rip", "rsp", "rbp", "pc", "sp", "x29"];

impl ThreadsReport {
    /// Keeps only the registers that locate a thread (PC, SP, frame
    /// pointer): the others may hold the target's data.
    pub fn hide_register_values(&mut self, why: &str) {
        for t in &mut self.threads {
            t.registers.retain(|(n, _)| LOCATION_REGISTERS.contains(n));
        }
        self.warnings.push(format!(
            "registers other than the PC, SP and frame pointer are not shown: {why}"
        ));
    }
}

/// Reads every thread of `pid` (or only `opts.tid`).
pub fn take_threads(pid: i32, opts: &ThreadsOptions) -> Result<ThreadsReport, SchedTakeError> {
    LiveTarget(LiveProcess::open(pid, None)?).threads(opts)
}

impl LiveTarget {
    /// [`take_threads`] of a target opened earlier: under sudo, opened as
    /// root with the root monitor and read after the privilege drop; the
    /// hold, and every thread's registers, come from the monitor.
    pub fn threads(&self, opts: &ThreadsOptions) -> Result<ThreadsReport, SchedTakeError> {
        let src = &self.0;
        let pid = src.pid();
        if let Some(tid) = opts.tid {
            if !std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists() {
                return Err(SchedTakeError::NoThread { pid, tid });
            }
        }
        let comm = |tid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .map(|s| s.trim_end().to_string())
                .unwrap_or_default()
        };
        take_from(src, opts, &comm)
    }
}

/// Reads every thread of a core file (`gopeek threads --core`), its
/// executable named by the core or given (`exe`).
pub fn take_threads_core(
    core: &std::path::Path,
    exe: Option<&std::path::Path>,
    opts: &ThreadsOptions,
) -> Result<ThreadsReport, SchedTakeError> {
    let src = super::core::CoreSource::open(core, exe)?;
    let r = take_from(&src, opts, &|_| String::new())?;
    Ok(ThreadsReport {
        pause_us: None,
        ..r
    })
}

/// The pipeline over any [`Source`] (a live process; a core next).
pub(crate) fn take_from<S: Source>(
    src: &S,
    opts: &ThreadsOptions,
    comm: &dyn Fn(i32) -> String,
) -> Result<ThreadsReport, SchedTakeError> {
    let pid = src.pid();
    let bin = src.parse_executable()?;
    let (prog, layout) =
        load_program(&bin).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let layout = layout.map_err(SnapshotError::from)?;
    let off = layout.offsets().map_err(SnapshotError::from)?;
    let det = SchedDetailOffsets::from_layout(&layout).map_err(SnapshotError::from)?;
    let (wait_reasons, _) = walk_tables(&prog);
    let bias = src.load_bias(&bin)?;
    let syms = SymbolTable::new(&prog.pclntab, &bin, bias);
    let tcfg = ThreadsConfig {
        prog: &prog,
        off: &off,
        bias,
        syms: &syms,
        disasm: opts.disasm,
    };
    let taken_at = crate::dump::rfc3339(src.taken_at().unwrap_or_else(SystemTime::now));
    let stopped = src.stop(Hold::All, opts.max_pause)?;
    let cfg = SchedConfig {
        globals: &prog.globals,
        off: &off,
        det: &det,
        wait_reasons: &wait_reasons,
        go_minor: prog.version.minor,
        bias,
        now_ns: src.nanotime().unwrap_or(0),
    };
    let state = read_sched(src.memory(), &cfg);
    let mut warnings = src.warnings();
    if let Err(e) = &state {
        warnings.push(format!(
            "the scheduler could not be read ({e}): threads show without M, P and goroutine"
        ));
    }
    let mut threads = Vec::new();
    for t in stopped.held_threads() {
        if opts.tid.is_some_and(|tid| tid != t.regs.tid) {
            continue;
        }
        if !stopped.within_budget() {
            break;
        }
        let name = comm(t.regs.tid);
        threads.push(thread_view(
            src.memory(),
            &tcfg,
            state.as_ref().ok(),
            &t,
            name,
        ));
    }
    let stats = stopped.release()?;
    if let Some(tid) = opts.tid {
        if threads.is_empty() {
            return Err(SchedTakeError::NoThread { pid, tid });
        }
    }
    Ok(ThreadsReport {
        pid,
        exe: src.exe_display(),
        go_version: prog.version.raw.clone(),
        goarch: bin.arch().goarch(),
        taken_at,
        pause_us: Some(stats.pause_us()),
        threads,
        warnings,
    })
}
