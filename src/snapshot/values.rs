//! `gopeek print`'s pipeline: open the live process, index the
//! executable's DWARF, and evaluate each expression, either while the
//! target runs (each value read twice and kept only when both reads agree)
//! or under one brief hold (`--consistent`). Under sudo the same, through
//! a [`LiveTarget`] opened as root and read after the privilege drop, the
//! hold made by the root monitor, as `dump` does.

mod held;

use super::frame_select::{select, FrameInfo, FrameSel};
use super::live::LiveProcess;
use super::source::{Source, Stopped};
use super::{LiveTarget, SnapshotError};
use crate::binary::elf::Arch;
use crate::binary::program::GoProgram;
use crate::layout::{LayoutError, Sections};
use crate::memory::MemoryExt;
use crate::value::locals::Overlay;
use crate::value::regs::{FrameRegs, Regs};
use crate::value::{
    evaluate_in, frame_slots, read::field, DwarfInfo, FrameSlots, Limits, Printed, Program,
};
use crate::walk::capture::Mode;
use held::HeldSource;
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
        let how = if opts.consistent {
            How::Held
        } else {
            How::Running
        };
        print_from(&self.0, exprs, opts, Instant::now(), how)
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
    print_from(&src, exprs, opts, t0, How::Core(core))
}

/// How the target is read.
#[derive(Clone, Copy)]
enum How<'a> {
    /// Live and running: the frames from a nonblocking snapshot, each
    /// value read twice and kept when both reads agree.
    Running,
    /// Live under one hold (`--consistent`): the frames, the running
    /// goroutine's registers and every value of one instant.
    Held,
    /// A core file (this one): still, read once.
    Core(&'a std::path::Path),
}

fn frame_snapshot(opts: &PrintOptions) -> super::SnapshotOptions {
    super::SnapshotOptions {
        max_pause: opts.max_pause,
        nonblocking: true,
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

/// What the executable says, loaded before any hold.
struct Loaded<'b> {
    prog: GoProgram<'b>,
    dwarf: DwarfInfo<'b>,
    bias: u64,
    arm64: bool,
}

/// The evaluation over any source.
fn print_from<S: Source>(
    src: &S,
    exprs: &[String],
    opts: &PrintOptions,
    t0: Instant,
    how: How<'_>,
) -> Result<PrintResult, ValuesError> {
    let pid = src.pid();
    let bin = src.parse_executable()?;
    let sections = match Sections::load(&bin) {
        Ok(s) => s,
        Err(LayoutError::NoDwarf) => return Err(ValuesError::NoDwarf { pid }),
        Err(e) => return Err(SnapshotError::Layout(e).into()),
    };
    let l = Loaded {
        prog: GoProgram::load(&bin, None).map_err(|source| SnapshotError::NotGo { pid, source })?,
        dwarf: DwarfInfo::new(&sections),
        bias: src.load_bias(&bin)?,
        arm64: matches!(bin.arch(), Arch::Arm64),
    };
    let (values, frame, pause_us) = match how {
        How::Running => {
            let goroutine = match &opts.frame {
                Some(sel) => {
                    let snap = super::run(src, Mode::Nonblocking, &frame_snapshot(opts), t0)?;
                    let at = format!("--pid {pid}");
                    Some((find_goroutine(snap.dump, sel, pid, &at)?, *sel))
                }
                None => None,
            };
            let (v, f) = evaluate(&l, src.memory(), exprs, opts, goroutine, None, true, pid)?;
            (v, f, None)
        }
        How::Held | How::Core(_) => {
            // On an error `held` is dropped, which releases.
            let held = HeldSource::new(src, opts.max_pause);
            let goroutine = match &opts.frame {
                Some(sel) => {
                    // Parsed and read while running, then held as `dump`
                    // holds; the hold is kept for the values.
                    let mode = match how {
                        How::Core(_) => Mode::Held,
                        _ => Mode::Consistent,
                    };
                    let snap = super::run(&held, mode, &frame_snapshot(opts), t0)?;
                    let at = match how {
                        How::Core(c) => format!("--core {}", c.display()),
                        _ => format!("--pid {pid}"),
                    };
                    Some((find_goroutine(snap.dump, sel, pid, &at)?, *sel))
                }
                None => None,
            };
            let stopped = held.hold()?;
            let regs = goroutine
                .as_ref()
                .and_then(|(g, _)| thread_regs(stopped, g.thread?));
            let (v, f) = evaluate(&l, held.memory(), exprs, opts, goroutine, regs, false, pid)?;
            let pause = held.release()?.pause_us();
            (v, f, matches!(how, How::Held).then_some(pause))
        }
    };
    Ok(PrintResult {
        values,
        go_minor: l.prog.version.minor,
        go_version: l.prog.version.raw.clone(),
        pause_us,
        elapsed: t0.elapsed(),
        frame,
    })
}

/// The registers of thread `tid` in a hold, by DWARF number.
fn thread_regs<H: Stopped>(stopped: &H, tid: i32) -> Option<Regs> {
    let t = stopped
        .held_threads()
        .into_iter()
        .find(|t| t.regs.tid == tid)?;
    Regs::from_named(&t.registers)
}

/// Evaluates `exprs` (all the frame's variables with `--locals`) over
/// `mem`; `regs`: the thread's registers, when the goroutine was running
/// on it at this instant; `twice`: the target runs, read each value
/// twice.
#[allow(clippy::too_many_arguments)]
fn evaluate<M: crate::memory::Memory>(
    l: &Loaded<'_>,
    mem: &M,
    exprs: &[String],
    opts: &PrintOptions,
    goroutine: Option<(crate::dump::GoroutineSnapshot, FrameSel)>,
    regs: Option<Regs>,
    twice: bool,
    pid: i32,
) -> Result<(Vec<Printed>, Option<FrameInfo>), ValuesError> {
    let func_name = |pc: u64| {
        let f = l.prog.pclntab.find_func(pc.wrapping_sub(l.bias)).ok()?;
        Some(f.name())
    };
    let types_base = types_base(&l.dwarf, mem, l.bias);
    let p = Program {
        dwarf: &l.dwarf,
        bias: l.bias,
        types_base,
        func_name: &func_name,
    };
    let mut overlay = Overlay::new(mem);
    let mut frame = None;
    let mut exprs = exprs.to_vec();
    let mut slots = FrameSlots::new();
    if let Some((g, sel)) = &goroutine {
        let ferr = |what: String| ValuesError::Frame { pid, what };
        let (info, mut at) = select(g, sel, l.bias).map_err(ferr)?;
        at.arm64 = l.arm64;
        if let (FrameRegs::Running, Some(r)) = (at.regs, regs) {
            at.regs = FrameRegs::Held(r);
        }
        let vars = l.dwarf.frame_vars(&at).map_err(|e| {
            ferr(format!(
                "the variables of {} at {}:{}: {e}",
                info.function, info.file, info.line
            ))
        })?;
        slots = frame_slots(&l.dwarf, &vars, &mut overlay);
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
    let values = evaluate_in(&p, &overlay, opts.limits, &exprs, twice, &slots);
    Ok((values, frame))
}

/// `runtime.firstmoduledata.types` in the target: where the runtime type
/// descriptors start, which `DW_AT_go_runtime_type` offsets are relative
/// to. Read from the target (a PIE's is relocated at load).
fn types_base<M: crate::memory::Memory>(dwarf: &DwarfInfo<'_>, mem: &M, bias: u64) -> Option<u64> {
    let md = dwarf.global("runtime.firstmoduledata")?;
    let t = dwarf.get(dwarf.type_named("runtime.moduledata")?).ok()?;
    let off = field(&t, "types")?;
    mem.read_u64(md.addr.wrapping_add(bias).wrapping_add(off))
        .ok()
}
