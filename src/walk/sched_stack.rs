//! A held thread's stack for `gopeek sched`: unwound from its registers
//! the way Go's traceback does for a running M (the system stack's frames
//! first, then the user goroutine's from `curg.sched`; inside a vDSO call
//! from `m.vdsoPC/vdsoSP`), symbolized with inlined frames, and the
//! preemption verdict of its PC: is it an async safe point
//! (`runtime.isAsyncSafePoint`: not assembly, not a `runtime.` function,
//! `PCDATA_UnsafePoint` not `-2`, which the compiler writes for all of a
//! nosplit function)?

use super::unwind::{unwind, UnwindCache, UnwindStart};
use super::ThreadRegs;
use crate::binary::elf::Arch;
use crate::binary::program::GoProgram;
use crate::binary::symbolize::frames_at;
use crate::gotrace::sched::{MState, StackFrame, ThreadStack};
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::{Memory, MemoryExt};

/// `PCDATA_UnsafePoint` (abi/symtab.go): table 0.
const PCDATA_UNSAFE_POINT: u32 = 0;
/// `UnsafePointUnsafe`.
const UNSAFE_POINT_UNSAFE: i32 = -2;
/// Most frames kept per thread (a report, not a full traceback).
const MAX_FRAMES: usize = 64;

/// Why a function is never an async safe point, if it is not.
fn unsafe_reason(prog: &GoProgram<'_>, link_pc: u64) -> Option<String> {
    let Ok(f) = prog.pclntab.find_func(link_pc) else {
        return Some(format!(
            "PC {link_pc:#x} is outside Go code (vDSO or C): no async preemption there"
        ));
    };
    let name = f.name();
    if f.flags.is_asm() {
        return Some(format!("{name} is assembly: never an async safe point"));
    }
    if [
        "runtime.",
        "internal/runtime/",
        "runtime/internal/",
        "reflect.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
    {
        return Some(format!(
            "{name} is runtime code: the runtime is never async-preempted"
        ));
    }
    if f.pcdata(PCDATA_UNSAFE_POINT, link_pc).ok().flatten() == Some(UNSAFE_POINT_UNSAFE) {
        return Some(format!(
            "{name} is at an async-unsafe point (PCDATA_UnsafePoint=-2: the compiler marks all of a nosplit function so)"
        ));
    }
    None
}

/// Largest gap from SP to the frame pointer of an SP-writing function.
const MAX_SPWRITE_FRAME: u64 = 64 * 1024;

/// The return address and caller's SP of an innermost SP-writing
/// function, by its frame pointer (amd64 only: arm64's SP-writing
/// functions do not keep x29 as the assembler's frame pointer).
fn past_spwrite<M: Memory>(
    mem: &M,
    prog: &GoProgram<'_>,
    bias: u64,
    regs: &ThreadRegs,
) -> Option<(u64, u64)> {
    let fp = regs.fp;
    if prog.bin.arch() != Arch::Amd64 || fp < regs.sp || fp - regs.sp > MAX_SPWRITE_FRAME {
        return None;
    }
    let ret = mem.read_u64(fp.wrapping_add(8)).ok()?;
    let in_go = prog
        .pclntab
        .find_func(ret.wrapping_sub(1).wrapping_sub(bias))
        .is_ok();
    (ret != 0 && in_go).then_some((ret, fp.wrapping_add(16)))
}

/// `[lo, hi)` of the stack of g at `g`.
pub(crate) fn stack_of<M: Memory>(mem: &M, off: &RuntimeOffsets, g: u64) -> Option<(u64, u64)> {
    if g == 0 {
        return None;
    }
    let lo = mem.read_u64(g.wrapping_add(off.g.stack_lo)).ok()?;
    let hi = mem.read_u64(g.wrapping_add(off.g.stack_hi)).ok()?;
    (lo < hi).then_some((lo, hi))
}

/// Unwinds and symbolizes the thread of `m`, held with registers `regs`.
pub fn thread_stack<M: Memory>(
    mem: &M,
    prog: &GoProgram<'_>,
    off: &RuntimeOffsets,
    bias: u64,
    m: &MState,
    regs: &ThreadRegs,
) -> ThreadStack {
    let mut out = ThreadStack {
        m: m.id,
        thread_id: m.thread_id,
        pc: regs.pc,
        ..ThreadStack::default()
    };
    let tab = &prog.pclntab;
    let mut cache = UnwindCache::for_target(prog.version.minor, prog.bin.arch());
    let in_go = |pc: u64| tab.find_func(pc.wrapping_sub(bias)).is_ok();
    let a = m.addrs;
    let curg = stack_of(mem, off, a.curg);
    let g0 = stack_of(mem, off, a.g0);
    let within = |s: Option<(u64, u64)>, sp: u64| s.is_some_and(|(lo, hi)| sp >= lo && sp < hi);

    // The verdict is about where the thread really is.
    if let Some(r) = unsafe_reason(prog, regs.pc.wrapping_sub(bias)) {
        out.pc_verdict.push(r);
    }
    // Where to start: the registers, or the vDSO caller.
    let (start, trap) = if in_go(regs.pc) {
        ((regs.pc, regs.sp), true)
    } else if a.vdso_sp != 0 {
        ((a.vdso_pc, a.vdso_sp), false)
    } else {
        out.error = Some(format!(
            "the thread is outside Go code (PC {:#x}) and not in a vDSO call",
            regs.pc
        ));
        return out;
    };
    // (pc, sp, trap, the stack's bounds if known)
    type Segment = (u64, u64, bool, Option<(u64, u64)>);
    let mut segments: Vec<Segment> = Vec::new();
    if within(curg, start.1) {
        segments.push((start.0, start.1, trap, curg));
    } else {
        // On the system stack: its frames, then the goroutine's.
        let sys = if within(g0, start.1) { g0 } else { None };
        segments.push((start.0, start.1, trap, sys));
        if a.vdso_sp != 0 && within(curg, a.vdso_sp) {
            // In nanotime1/walltime on the system stack around a vDSO
            // call: its Go caller is at m.vdsoPC/vdsoSP.
            segments.push((a.vdso_pc, a.vdso_sp, false, curg));
        } else if a.curg != 0 {
            if let (Ok(pc), Ok(sp)) = (
                mem.read_u64(a.curg.wrapping_add(off.g.sched_pc)),
                mem.read_u64(a.curg.wrapping_add(off.g.sched_sp)),
            ) {
                if pc != 0 && within(curg, sp) {
                    segments.push((pc, sp, false, curg));
                }
            }
        }
    }
    let spwrite_at_top = in_go(regs.pc) && segments.len() == 1;
    let mut i = 0;
    while i < segments.len() {
        let (pc, sp, trap, bounds) = segments[i];
        i += 1;
        let (lo, hi) = bounds.unwrap_or((sp, sp.saturating_add(64 * 1024)));
        let start = UnwindStart {
            pc,
            sp,
            trap,
            syscall: false,
            // The thread's own link register (arm64) for its innermost frame.
            lr: if trap { regs.lr } else { 0 },
        };
        let uw = unwind(tab, &mut cache, bias, mem, start, lo, hi);
        if spwrite_at_top && i == 1 && uw.frames.len() == 1 && uw.error.is_none() {
            // Go's unwinder stops at an innermost assembly function that
            // writes SP (nanotime1 around its vDSO call, before it sets
            // m.vdsoSP or after it cleared it); on amd64 that function
            // pushed its caller's frame pointer first, so gdb's way goes
            // on: the return address at [rbp+8], the caller's SP rbp+16.
            if let Some((ret, csp)) = past_spwrite(mem, prog, bias, regs) {
                let b = if within(curg, csp) {
                    curg
                } else if within(g0, csp) {
                    g0
                } else {
                    None
                };
                segments.push((ret, csp, false, b));
            }
        }
        for f in &uw.frames {
            if out.frames.len() >= MAX_FRAMES {
                break;
            }
            let unsafe_point = unsafe_reason(prog, f.sym_pc).is_some();
            let Ok(func) = tab.find_func(f.sym_pc) else {
                continue;
            };
            for s in frames_at(&func, f.sym_pc).unwrap_or_default() {
                out.frames.push(StackFrame {
                    function: s.print_name.to_string(),
                    file: s.file.to_string(),
                    line: s.line,
                    pc: f.pc,
                    sp: f.sp,
                    unsafe_point,
                });
            }
        }
        if uw.error.is_some() && out.error.is_none() {
            out.error = uw.error;
        }
    }
    // The first user function on the stack, and whether its call site is
    // an unsafe point (a nosplit loop calling into the runtime).
    if let Some(f) = out
        .frames
        .iter()
        .find(|f| !f.function.starts_with("runtime.") && !f.function.starts_with("internal/"))
    {
        if f.unsafe_point {
            out.pc_verdict.push(format!(
                "{} ({}:{}) is at an async-unsafe point too (nosplit code): no safe point on this stack",
                f.function, f.file, f.line
            ));
        }
    }
    out
}
