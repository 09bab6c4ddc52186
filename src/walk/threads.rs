//! `gopeek threads`: each held thread matched to its M (by `m.procid`),
//! told which stack it runs on (the user goroutine's, `g0`'s or
//! `gsignal`'s, by its SP against each g's stack bounds, else by the g
//! register), unwound with [`thread_stack`] (the system stack's frames,
//! then the goroutine's), C frames followed by frame pointer where the
//! PC is outside Go, and its next instructions disassembled.
//!
//! Everything read from the target is bounded; a failed read leaves that
//! part of the view empty with the reason, never the whole report.

use super::sched_stack::{stack_of, thread_stack};
use super::signal::interrupted_contexts;
use super::{ThreadRegs, WalkConfig};
use crate::binary::disasm::{disassemble, max_insn_len, Insn, SymbolTable, MAX_INSNS};
use crate::binary::program::GoProgram;
use crate::gotrace::sched::{MState, SchedState};
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::{Memory, MemoryExt};

/// Most C frames followed by frame pointer.
const MAX_C_FRAMES: usize = 64;
/// Largest gap between two frame pointers accepted (a C frame).
const MAX_C_FRAME: u64 = 1 << 20;

/// One thread as the hold caught it.
#[derive(Debug, Clone)]
pub struct HeldThread {
    /// pc, sp, lr and tid.
    pub regs: ThreadRegs,
    /// The `/proc` state letter before the hold (`R`, `S`...).
    pub state: char,
    /// Every register gdb's `info registers` lists, in its order.
    pub registers: Vec<(&'static str, u64)>,
}

impl HeldThread {
    fn reg(&self, name: &str) -> Option<u64> {
        self.registers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// One frame of a thread's backtrace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadFrame {
    /// Go's print name, or the symbol of a C frame (`??` when unknown).
    pub function: String,
    /// Source file (empty for C frames).
    pub file: String,
    /// Source line (0 for C frames).
    pub line: i32,
    /// Runtime PC.
    pub pc: u64,
    /// The frame's SP (0 where a frame-pointer walk does not know it).
    pub sp: u64,
}

/// What `gopeek threads` reports of one thread.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadView {
    /// Kernel thread id.
    pub tid: i32,
    /// `/proc/PID/task/TID/comm`.
    pub name: String,
    /// The `/proc` state letter before the hold.
    pub state: String,
    /// The M running on this thread, if any.
    pub m: Option<i64>,
    /// The P that M holds.
    pub p: Option<i32>,
    /// The M's current user goroutine (`m.curg`).
    pub goroutine: Option<u64>,
    /// Which stack the thread is on: `user`, `g0`, `gsignal` or `none`.
    pub on: &'static str,
    /// gdb's `info registers`, in its order.
    #[serde(skip)]
    pub registers: Vec<(&'static str, u64)>,
    /// `function+offset` of the PC (gdb's `<...>` after rip).
    pub pc_symbol: Option<String>,
    /// Innermost first.
    pub frames: Vec<ThreadFrame>,
    /// Why the backtrace stopped early, if it did.
    pub frames_error: Option<String>,
    /// `--disasm N`: the instructions from the PC.
    pub disasm: Vec<Insn>,
    /// Why the disassembly is missing or short.
    pub disasm_error: Option<String>,
}

/// What the views need besides the memory.
pub struct ThreadsConfig<'p, 'a> {
    /// The executable.
    pub prog: &'p GoProgram<'a>,
    /// The runtime's offsets.
    pub off: &'p RuntimeOffsets,
    /// PIE load bias.
    pub bias: u64,
    /// Addresses to names for the disassembly and C frames.
    pub syms: &'p SymbolTable<'p, 'a>,
    /// Instructions to disassemble per thread (0: none).
    pub disasm: usize,
}

/// Builds the view of `t` (the target is held). `state` is the scheduler
/// read under the same hold (`None` if it could not be read: the thread
/// then shows without M, P and goroutine).
pub fn thread_view<M: Memory>(
    mem: &M,
    cfg: &ThreadsConfig<'_, '_>,
    state: Option<&SchedState>,
    t: &HeldThread,
    name: String,
) -> ThreadView {
    let tid = t.regs.tid;
    let m = state.and_then(|s| s.ms.iter().find(|m| m.thread_id == tid as u64 && tid > 0));
    let on = which_stack(mem, cfg.off, m, t);
    let (frames, frames_error) = backtrace(mem, cfg, m, t);
    let (disasm, disasm_error) = if cfg.disasm > 0 {
        disasm_at(mem, cfg, t.regs.pc)
    } else {
        (Vec::new(), None)
    };
    ThreadView {
        tid,
        name,
        state: t.state.to_string(),
        m: m.map(|m| m.id),
        p: m.and_then(|m| m.p),
        goroutine: m.and_then(|m| m.curg),
        on,
        registers: t.registers.clone(),
        pc_symbol: cfg.syms.name(t.regs.pc),
        frames,
        frames_error,
        disasm,
        disasm_error,
    }
}

/// `user`, `g0`, `gsignal` or `none`: the stack holding SP, else the g
/// register (R14/X28) when it names one of the M's gs.
fn which_stack<M: Memory>(
    mem: &M,
    off: &RuntimeOffsets,
    m: Option<&MState>,
    t: &HeldThread,
) -> &'static str {
    let Some(m) = m else { return "none" };
    let a = m.addrs;
    let sp = t.regs.sp;
    let cands = [(a.curg, "user"), (a.g0, "g0"), (a.gsignal, "gsignal")];
    for (g, label) in cands {
        if stack_of(mem, off, g).is_some_and(|(lo, hi)| sp >= lo && sp < hi) {
            return label;
        }
    }
    let greg = t.reg("r14").or_else(|| t.reg("x28")).unwrap_or(0);
    cands
        .iter()
        .find(|(g, _)| *g != 0 && *g == greg)
        .map(|(_, l)| *l)
        .unwrap_or("none")
}

/// The thread's frames: Go's (via [`thread_stack`]) where the PC is in Go
/// or a vDSO call; else C frames by frame pointer, then the user
/// goroutine's from `curg.sched`.
fn backtrace<M: Memory>(
    mem: &M,
    cfg: &ThreadsConfig<'_, '_>,
    m: Option<&MState>,
    t: &HeldThread,
) -> (Vec<ThreadFrame>, Option<String>) {
    let tab = &cfg.prog.pclntab;
    let in_go = tab.find_func(t.regs.pc.wrapping_sub(cfg.bias)).is_ok();
    let bare = MState {
        thread_id: t.regs.tid as u64,
        ..MState::default()
    };
    let m = m.unwrap_or(&bare);
    if in_go || m.addrs.vdso_sp != 0 {
        let st = thread_stack(mem, cfg.prog, cfg.off, cfg.bias, m, &t.regs);
        let mut frames = Vec::new();
        if !in_go {
            // Inside the vDSO: its frame first, unnamed (gdb reads the
            // vDSO's own symbols; gopeek does not).
            frames.push(ThreadFrame {
                function: "??".into(),
                file: String::new(),
                line: 0,
                pc: t.regs.pc,
                sp: t.regs.sp,
            });
        }
        frames.extend(go_frames(&st.frames));
        if let Some(i) = frames.iter().position(|f| f.function == "runtime.sigtramp") {
            // In Go's signal handler: the handler's frames, then the
            // context the signal interrupted (from the kernel's signal
            // frame), not the goroutine's stale `sched`.
            if let Some(ctx) = interrupted(mem, cfg, t.regs) {
                frames.truncate(i + 1);
                let st = thread_stack(mem, cfg.prog, cfg.off, cfg.bias, m, &ctx);
                frames.extend(go_frames(&st.frames));
                if st.frames.len() == 1 && st.error.is_none() && m.addrs.vdso_sp != 0 {
                    // Interrupted in nanotime1/walltime after it set
                    // m.vdsoPC/SP: its Go caller is there. (Before that,
                    // or after it cleared them, thread_stack goes on by
                    // the frame pointer the signal frame saved.)
                    let (pc, sp) = (m.addrs.vdso_pc, m.addrs.vdso_sp);
                    frames.extend(continue_at(mem, cfg, m, t, pc, sp));
                }
                return (frames, st.error);
            }
        }
        return (frames, st.error);
    }
    // Outside Go (C code of a cgo call, or a thread C created).
    let fp = t.reg("rbp").or_else(|| t.reg("x29")).unwrap_or(0);
    let mut frames = c_frames(mem, cfg.syms, t.regs.pc, t.regs.sp, fp);
    let mut error = None;
    let g = m.addrs.curg;
    if g != 0 {
        let pc = mem.read_u64(g.wrapping_add(cfg.off.g.sched_pc));
        let sp = mem.read_u64(g.wrapping_add(cfg.off.g.sched_sp));
        if let (Ok(pc), Ok(sp)) = (pc, sp) {
            let regs = ThreadRegs {
                pc,
                sp,
                lr: 0,
                ..t.regs
            };
            let st = thread_stack(mem, cfg.prog, cfg.off, cfg.bias, m, &regs);
            frames.extend(go_frames(&st.frames));
            error = st.error;
        }
    }
    (frames, error)
}

/// The registers a signal interrupted, when `regs` is inside Go's handler.
fn interrupted<M: Memory>(
    mem: &M,
    cfg: &ThreadsConfig<'_, '_>,
    regs: ThreadRegs,
) -> Option<ThreadRegs> {
    let wcfg = WalkConfig {
        prog: cfg.prog,
        off: cfg.off,
        bias: cfg.bias,
        wait_reasons: Vec::new(),
        gstatus: Vec::new(),
        frame_registers: false,
    };
    let ctx = interrupted_contexts(&wcfg, mem, vec![regs]).pop()?;
    (ctx.pc != regs.pc || ctx.sp != regs.sp).then_some(ctx)
}

/// Go frames from a return address `ret` and the SP after the return.
fn continue_at<M: Memory>(
    mem: &M,
    cfg: &ThreadsConfig<'_, '_>,
    m: &MState,
    t: &HeldThread,
    ret: u64,
    sp: u64,
) -> Vec<ThreadFrame> {
    if ret == 0
        || cfg
            .prog
            .pclntab
            .find_func(ret.wrapping_sub(1).wrapping_sub(cfg.bias))
            .is_err()
    {
        return Vec::new();
    }
    let regs = ThreadRegs {
        pc: ret - 1,
        sp,
        lr: 0,
        ..t.regs
    };
    let st = thread_stack(mem, cfg.prog, cfg.off, cfg.bias, m, &regs);
    let mut v = go_frames(&st.frames);
    for f in v.iter_mut().take_while(|f| f.pc == ret - 1) {
        f.pc = ret;
    }
    v
}

fn go_frames(f: &[crate::gotrace::sched::StackFrame]) -> Vec<ThreadFrame> {
    f.iter()
        .map(|f| ThreadFrame {
            function: f.function.clone(),
            file: f.file.clone(),
            line: f.line,
            pc: f.pc,
            sp: f.sp,
        })
        .collect()
}

/// C frames by frame pointer: `[fp]` is the caller's fp, `[fp+8]` the
/// return address (amd64 and arm64 alike); stops at a frame pointer that
/// does not grow, jumps too far, or cannot be read.
fn c_frames<M: Memory>(
    mem: &M,
    syms: &SymbolTable<'_, '_>,
    pc: u64,
    sp: u64,
    mut fp: u64,
) -> Vec<ThreadFrame> {
    let name = |pc: u64| syms.name(pc).unwrap_or_else(|| "??".to_string());
    let mut out = vec![ThreadFrame {
        function: name(pc),
        file: String::new(),
        line: 0,
        pc,
        sp,
    }];
    let mut prev = sp;
    while out.len() < MAX_C_FRAMES && fp >= prev && fp - prev < MAX_C_FRAME && fp != 0 {
        let (Ok(next), Ok(ret)) = (mem.read_u64(fp), mem.read_u64(fp.wrapping_add(8))) else {
            break;
        };
        if ret == 0 {
            break;
        }
        out.push(ThreadFrame {
            function: name(ret.wrapping_sub(1)),
            file: String::new(),
            line: 0,
            pc: ret,
            sp: fp.wrapping_add(16),
        });
        prev = fp.wrapping_add(16);
        fp = next;
    }
    out
}

/// `cfg.disasm` instructions from `pc`, read from the target's memory (a
/// mapping that ends early shortens the read to its page).
fn disasm_at<M: Memory>(
    mem: &M,
    cfg: &ThreadsConfig<'_, '_>,
    pc: u64,
) -> (Vec<Insn>, Option<String>) {
    let n = cfg.disasm.min(MAX_INSNS);
    let want = (n * max_insn_len(cfg.prog.bin.arch())) as u64;
    let to_page = 4096 - (pc & 4095);
    let code = mem
        .read_vec(pc, want, want)
        .or_else(|_| mem.read_vec(pc, want.min(to_page), want));
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            return (
                Vec::new(),
                Some(format!("cannot read code at {pc:#x}: {e}")),
            )
        }
    };
    let v = disassemble(cfg.prog.bin.arch(), &code, pc, n, cfg.syms);
    if v.len() < n {
        let why = format!("only {} of {n} instructions could be decoded", v.len());
        (v, Some(why))
    } else {
        (v, None)
    }
}
