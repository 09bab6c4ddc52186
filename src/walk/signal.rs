//! Threads caught inside Go's signal handler: their registers say where
//! the handler is (on the M's signal stack), not where the goroutine was.
//! A core written after GOTRACEBACK=crash has every thread there. The
//! interrupted context is in the kernel's signal frame, which sits where
//! `runtime.sigtramp` was entered: this module unwinds the thread's own
//! stack to that frame and reads the saved PC and SP from its ucontext,
//! as Go's `sighandler` does with its `sigctxt` when it prints a crash.

use super::unwind::{unwind, UnwindCache, UnwindStart};
use super::{ThreadRegs, WalkConfig};
use crate::binary::elf::Arch;
use crate::memory::{Memory, MemoryExt};

/// Largest signal stack searched (Go's gsignal stacks are 32 KiB; a
/// cgo program's sigaltstack may be larger).
const SIGNAL_STACK_MAX: u64 = 1 << 20;

/// Offsets from the SP at which the kernel entered the handler to the
/// interrupted SP and PC in the saved `sigcontext`.
fn saved_sp_pc(arch: Arch) -> (u64, u64) {
    match arch {
        // rt_sigframe { pretcode; ucontext { flags, link, stack_t(24),
        // sigcontext { r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp,
        // rip ... } } }: sigcontext at 48, rsp at +120, rip at +128.
        Arch::Amd64 => (48 + 120, 48 + 128),
        // rt_sigframe { siginfo (128); ucontext { flags, link,
        // stack_t(24), sigmask + padding (128), [align 16] sigcontext {
        // fault_address, regs[31], sp, pc } } }: sigcontext at 304.
        Arch::Arm64 => (304 + 8 + 31 * 8, 304 + 8 + 32 * 8),
    }
}

/// Most nested signal frames followed on one thread.
const MAX_NESTED: usize = 4;

/// The context one signal frame saved, when `t` is inside a handler.
fn one_level<M: Memory>(
    cfg: &WalkConfig<'_, '_>,
    cache: &mut UnwindCache,
    mem: &M,
    arch: Arch,
    t: ThreadRegs,
) -> Option<ThreadRegs> {
    let tab = &cfg.prog.pclntab;
    let start = UnwindStart {
        pc: t.pc,
        sp: t.sp,
        trap: true,
        syscall: true,
        lr: t.lr,
    };
    let uw = unwind(
        tab,
        cache,
        cfg.bias,
        mem,
        start,
        t.sp,
        t.sp.saturating_add(SIGNAL_STACK_MAX),
    );
    let last = uw.frames.last()?;
    let name = tab.func(last.func).map(|f| f.name()).unwrap_or_default();
    if name != "runtime.sigtramp" || last.fp == 0 {
        return None;
    }
    // fp is the caller's SP: one word above where the kernel left SP (the
    // return address slot) on amd64; on arm64 sigtramp has no
    // return-address slot of its own.
    let entry_sp = match arch {
        Arch::Amd64 => last.fp - 8,
        Arch::Arm64 => last.fp,
    };
    let (sp_off, pc_off) = saved_sp_pc(arch);
    let sp = mem.read_u64(entry_sp.wrapping_add(sp_off)).ok()?;
    let pc = mem.read_u64(entry_sp.wrapping_add(pc_off)).ok()?;
    let lr = match arch {
        Arch::Amd64 => 0,
        // x30 sits one register below sp in the saved sigcontext.
        Arch::Arm64 => mem.read_u64(entry_sp.wrapping_add(sp_off - 8)).ok()?,
    };
    // rbp follows r8..r15, rdi, rsi; x29 is two registers below sp.
    let fp_off = match arch {
        Arch::Amd64 => 48 + 80,
        Arch::Arm64 => sp_off - 16,
    };
    let fp = mem.read_u64(entry_sp.wrapping_add(fp_off)).unwrap_or(0);
    (sp != 0 && pc != 0).then_some(ThreadRegs {
        pc,
        sp,
        lr,
        fp,
        ..t
    })
}

/// Each thread stopped inside `runtime.sigtramp` replaced by the context
/// the signal interrupted (trap semantics: that PC is symbolized as is).
/// Threads not in a handler, or whose frame cannot be read, are kept.
pub(crate) fn interrupted_contexts<M: Memory>(
    cfg: &WalkConfig<'_, '_>,
    mem: &M,
    threads: Vec<ThreadRegs>,
) -> Vec<ThreadRegs> {
    let arch = cfg.prog.bin.arch();
    let mut cache = UnwindCache::for_target(cfg.prog.version.minor, arch);
    threads
        .into_iter()
        .map(|t| {
            // A signal taken inside the handler (the crash's SIGABRT
            // raised while handling SIGQUIT) nests: resolve again.
            let mut t = t;
            for _ in 0..MAX_NESTED {
                match one_level(cfg, &mut cache, mem, arch, t) {
                    Some(inner) => t = inner,
                    None => break,
                }
            }
            t
        })
        .collect()
}
