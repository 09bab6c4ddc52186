//! `gopeek print`'s pipeline: open the live process, index the
//! executable's DWARF, and evaluate each expression, either while the
//! target runs (each value read twice and kept only when both reads agree)
//! or under one brief hold (`--consistent`). Under sudo the same, through
//! a [`LiveTarget`] opened as root and read after the privilege drop, the
//! hold made by the root monitor, as `dump` does.

use super::live::LiveProcess;
use super::source::{Source, Stopped};
use super::{LiveTarget, SnapshotError};
use crate::binary::elf::GoBinary;
use crate::binary::program::GoProgram;
use crate::layout::{LayoutError, Sections};
use crate::memory::MemoryExt;
use crate::value::{evaluate, read::field, DwarfInfo, Limits, Printed, Program};
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
}

/// Why nothing could be printed.
#[derive(Debug, Error)]
pub enum ValuesError {
    /// Opening, holding or reading the process failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
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
        evaluate_in(&self.0, exprs, opts)
    }
}

/// The pipeline over an opened live process.
fn evaluate_in(
    src: &LiveProcess,
    exprs: &[String],
    opts: &PrintOptions,
) -> Result<PrintResult, ValuesError> {
    let t0 = Instant::now();
    let pid = src.pid();
    let held = opts.consistent;
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
    let values = evaluate(&p, mem, opts.limits, exprs, !held);
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
