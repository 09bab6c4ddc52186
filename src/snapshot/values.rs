//! `gopeek print`'s pipeline: open the live process, index the
//! executable's DWARF, and evaluate each expression, either while the
//! target runs (each value read twice and kept only when both reads agree)
//! or under one brief hold (`--consistent`). Under sudo the same, through
//! a [`LiveTarget`] opened as root and read after the privilege drop, the
//! hold made by the root monitor, as `dump` does.

use super::frame_select::{select, FrameInfo, FrameSel};
use super::live::LiveProcess;
use super::source::{Source, Stopped};
use super::{LiveTarget, SnapshotError};
use crate::binary::elf::GoBinary;
use crate::binary::program::GoProgram;
use crate::layout::{LayoutError, Sections};
use crate::memory::MemoryExt;
use crate::value::locals::Overlay;
use crate::value::{
    evaluate_in, frame_slots, read::field, DwarfInfo, FrameSlots, Limits, Printed, Program,
};
use crate::walk::capture::Hold;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How to read.
#[derive(Debug, Clone)]
pub struct PrintOptions {
    /// Depth, length and byte bounds.
    pub limits: Limits,
    /// Read everything under one hold instead of twice while running.
    pub consistent: bool,
    /// Longest hold.
    pub max_pause: Duration,
    /// `--goroutine N [--frame K] [--locals]`: names resolve in that frame
    /// first.
    pub frame: Option<FrameSel>,
}

/// The values and how they were read.
#[derive(Debug)]
pub struct PrintResult {
    /// One per expression, in order.
    pub values: Vec<Printed>,
    /// The target's Go minor version (encoding/json's escapes differ).
    pub go_minor: u32,
    /// The target's Go version string.
    pub go_version: String,
    /// The hold, if there was one.
    pub pause_us: Option<u64>,
    /// Time spent, for `GOPEEK_DEBUG_TIMING`.
    pub elapsed: Duration,
    /// The frame read, with `--goroutine`.
    pub frame: Option<FrameInfo>,
}

/// Why nothing could be printed.
#[derive(Debug, Error)]
pub enum ValuesError {
    /// Opening, holding or reading the process failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The goroutine or frame asked for is not there, or its variables
    /// cannot be listed.
    #[error("process {pid}: {what}")]
    Frame {
        /// The target.
        pid: i32,
        /// What is missing.
        what: String,
    },
    /// The executable has no DWARF: built with `-ldflags=-w` (or `-s`,
    /// which implies it), or stripped afterwards.
    #[error("process {pid}: the executable has no DWARF debug info, so variables and their types are unknown: it was built with -ldflags=-w (or -s, which also drops DWARF) or stripped afterwards; rebuild without -w/-s to use gopeek print (gopeek dump works without DWARF)")]
    NoDwarf {
        /// The target.
        pid: i32,
    },
}

impl crate::exit::ExitStatus for ValuesError {
    fn exit_code(&self) -> u8 {
        match self {
            ValuesError::Snapshot(e) => e.exit_code(),
            ValuesError::NoDwarf { .. } => crate::exit::NOT_GO,
            ValuesError::Frame { .. } => crate::exit::FAILURE,
        }
    }
}

/// Evaluates `exprs` in the live process `pid`.
pub fn print_values(
    pid: i32,
    exprs: &[String],
    opts: &PrintOptions,
) -> Result<PrintResult, ValuesError> {
    LiveTarget(LiveProcess::open(pid, None)?).print_values(exprs, opts)
}

impl LiveTarget {
    /// [`print_values`] in a target opened earlier (under sudo: as root,
    /// with the root monitor; evaluated after the privilege drop).
    pub fn print_values(
        &self,
        exprs: &[String],
        opts: &PrintOptions,
    ) -> Result<PrintResult, ValuesError> {
        let t0 = Instant::now();
        let pid = self.0.pid();
        // The goroutine's frames, from a snapshot as `dump` takes it
        // (without a hold unless --consistent), before anything else is
        // read.
        let goroutine = match &opts.frame {
            Some(sel) => {
                let dump = self.take(&frame_snapshot(opts))?.dump;
                Some((
                    find_goroutine(dump, sel, pid, &format!("--pid {pid}"))?,
                    *sel,
                ))
            }
            None => None,
        };
        print_from(&self.0, pid, exprs, opts, goroutine, t0, true)
    }
}

/// Evaluates `exprs` in the dead process a core file holds (`exe`: the
/// executable, when not the one the core names). Nothing changes in a
/// core: each value is read once.
pub fn print_core(
    core: &std::path::Path,
    exe: Option<&std::path::Path>,
    exprs: &[String],
    opts: &PrintOptions,
) -> Result<PrintResult, ValuesError> {
    let t0 = Instant::now();
    let src = super::core::CoreSource::open(core, exe)?;
    let pid = src.pid();
    let goroutine = match &opts.frame {
        Some(sel) => {
            let dump = super::take_core(core, exe, &frame_snapshot(opts))?.dump;
            let at = format!("--core {}", core.display());
            Some((find_goroutine(dump, sel, pid, &at)?, *sel))
        }
        None => None,
    };
    print_from(&src, pid, exprs, opts, goroutine, t0, false)
}

fn frame_snapshot(opts: &PrintOptions) -> super::SnapshotOptions {
    super::SnapshotOptions {
        max_pause: opts.max_pause,
        nonblocking: !opts.consistent,
        frame_registers: true,
    }
}

fn find_goroutine(
    dump: crate::dump::DumpSnapshot,
    sel: &FrameSel,
    pid: i32,
    target: &str,
) -> Result<crate::dump::GoroutineSnapshot, ValuesError> {
    dump.goroutines
        .into_iter()
        .find(|g| g.id == sel.goroutine)
        .ok_or_else(|| ValuesError::Frame {
            pid,
            what: format!(
                "no goroutine {} (gopeek dump {target} lists them)",
                sel.goroutine
            ),
        })
}

/// The evaluation over any source; `live`: a running process (read
/// twice, or held), else a core (read once).
fn print_from<S: Source>(
    src: &S,
    pid: i32,
    exprs: &[String],
    opts: &PrintOptions,
    goroutine: Option<(crate::dump::GoroutineSnapshot, FrameSel)>,
    t0: Instant,
    live: bool,
) -> Result<PrintResult, ValuesError> {
    let held = live && opts.consistent;
    let bin = src.parse_executable()?;
    let sections = match Sections::load(&bin) {
        Ok(s) => s,
        Err(LayoutError::NoDwarf) => return Err(ValuesError::NoDwarf { pid }),
        Err(e) => return Err(SnapshotError::Layout(e).into()),
    };
    let prog =
        GoProgram::load(&bin, None).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let dwarf = DwarfInfo::new(&sections);
    let bias = src.load_bias(&bin)?;
    let func_name = |pc: u64| {
        let f = prog.pclntab.find_func(pc.wrapping_sub(bias)).ok()?;
        Some(f.name())
    };
    let stopped = if held {
        Some(src.stop(Hold::All, opts.max_pause)?)
    } else {
        None
    };
    let mem = src.memory();
    let types_base = types_base(&dwarf, &bin, mem, bias);
    let p = Program {
        dwarf: &dwarf,
        bias,
        types_base,
        func_name: &func_name,
    };
    let mut overlay = Overlay::new(mem);
    let mut frame = None;
    let mut exprs = exprs.to_vec();
    let mut slots = FrameSlots::new();
    if let Some((g, sel)) = &goroutine {
        let ferr = |what: String| ValuesError::Frame { pid, what };
        let (info, at) = select(g, sel, bias).map_err(ferr)?;
        let vars = dwarf.frame_vars(&at).map_err(|e| {
            ferr(format!(
                "the variables of {} at {}:{}: {e}",
                info.function, info.file, info.line
            ))
        })?;
        slots = frame_slots(&dwarf, &vars, &mut overlay);
        if sel.all_locals {
            exprs.clear();
            for v in &vars.vars {
                // Go 1.2x also names the parts of a decomposed variable
                // (`s.ptr`, `s.len`): the variable itself is listed.
                if !v.name.starts_with('~') && !v.name.contains('.') && !exprs.contains(&v.name) {
                    exprs.push(v.name.clone());
                }
            }
        }
        frame = Some(info);
    }
    let values = evaluate_in(&p, &overlay, opts.limits, &exprs, live && !held, &slots);
    let pause_us = match stopped {
        Some(s) => Some(s.release()?.pause_us()),
        None => None,
    };
    Ok(PrintResult {
        values,
        go_minor: prog.version.minor,
        go_version: prog.version.raw.clone(),
        pause_us,
        elapsed: t0.elapsed(),
        frame,
    })
}

/// `runtime.firstmoduledata.types` in the target: where the runtime type
/// descriptors start, which `DW_AT_go_runtime_type` offsets are relative
/// to. Read from the target (a PIE's is relocated at load).
fn types_base<M: crate::memory::Memory>(
    dwarf: &DwarfInfo<'_>,
    _bin: &GoBinary,
    mem: &M,
    bias: u64,
) -> Option<u64> {
    let md = dwarf.global("runtime.firstmoduledata")?;
    let t = dwarf.get(dwarf.type_named("runtime.moduledata")?).ok()?;
    let off = field(&t, "types")?;
    mem.read_u64(md.addr.wrapping_add(bias).wrapping_add(off))
        .ok()
}
