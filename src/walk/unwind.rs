//! Physical stack unwinding with pcsp, the way Go's own `unwinder` does it
//! (runtime/traceback.go), on memory copied from the target.

use crate::binary::pclntab::Pclntab;
use crate::memory::{Memory, MemoryExt};

/// Most physical frames followed on one stack. Go's deepest legal stack
/// (1 GiB of 16-byte frames) is larger, but no traceback needs more.
pub(crate) const MAX_PHYSICAL_FRAMES: usize = 1_000_000;

/// Where unwinding starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnwindStart {
    /// Runtime PC (load bias included).
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    /// The PC was interrupted, not a return address (thread registers):
    /// symbolize at `pc`, not `pc - 1`.
    pub(crate) trap: bool,
    /// Taken from `g.syscallpc/syscallsp`: an SPWRITE innermost function
    /// (asmcgocall, a raw syscall stub) does not end the walk.
    pub(crate) syscall: bool,
    /// The link register (arm64 thread registers; 0: none): the innermost
    /// frame's return address while it has no frame of its own.
    pub(crate) lr: u64,
}

/// One physical frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PhysFrame {
    /// Runtime PC: the resume address for callers, the current PC for the
    /// innermost frame.
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    /// The caller's SP (Go's `frame.fp`); 0 where the walk stopped at this
    /// frame before computing it.
    pub(crate) fp: u64,
    /// Index of the function in the pclntab.
    pub(crate) func: usize,
    /// Function entry (link address).
    pub(crate) entry: u64,
    /// Link-time PC to symbolize (`pc - 1` for return addresses).
    pub(crate) sym_pc: u64,
}

/// A stack, or as much of it as could be read, and why it stops early.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unwound {
    pub(crate) frames: Vec<PhysFrame>,
    pub(crate) error: Option<String>,
}

/// What the unwinder needs to know about one PC, computed once per PC:
/// 100k goroutines parked in the same few places share a handful of PCs.
#[derive(Debug, Clone, Copy)]
struct PcInfo {
    func: usize,
    entry: u64,
    top_frame: bool,
    writes_sp: bool,
    cgocallback: bool,
    injected: bool,
    /// Its caller's frame is symbolized at its PC, not PC-1 (Go 1.19:
    /// sigpanic only; 1.21+: every injected call).
    traps_caller: bool,
    /// `pcsp` at this PC; `None` when the function has no table.
    sp_delta: Option<i32>,
}

/// Memo of [`PcInfo`] by link-time PC, shared across the goroutines of
/// one dump.
#[derive(Debug, Default)]
pub(crate) struct UnwindCache {
    map: rustc_hash::FxHashMap<u64, Option<PcInfo>>,
    /// Go 1.19's traceback symbolizes the frame below asyncPreempt at
    /// PC-1 (only sigpanic marked the next frame as trapped); 1.21's
    /// unwinder counts every injected call.
    before_1_21: bool,
    /// arm64: return addresses live in the link register and are saved
    /// at the bottom of each frame (at SP), and the frame size has no
    /// return-address word of the caller's CALL, as amd64's has.
    uses_lr: bool,
}

impl UnwindCache {
    /// A cache with the symbolization rules of Go 1.`minor` on `arch`.
    pub(crate) fn for_target(minor: u32, arch: crate::binary::elf::Arch) -> Self {
        UnwindCache {
            before_1_21: minor < 21,
            uses_lr: arch == crate::binary::elf::Arch::Arm64,
            ..Self::default()
        }
    }

    fn get(&mut self, tab: &Pclntab<'_>, link_pc: u64) -> Option<PcInfo> {
        *self.map.entry(link_pc).or_insert_with(|| {
            let f = tab.find_func(link_pc).ok()?;
            let name = f.name_bytes().unwrap_or(b"?");
            Some(PcInfo {
                func: f.index,
                entry: f.entry,
                top_frame: f.flags.is_top_frame(),
                writes_sp: f.flags.writes_sp(),
                cgocallback: name == b"runtime.cgocallback",
                injected: is_injected(name),
                traps_caller: is_injected(name)
                    && !(self.before_1_21 && name != b"runtime.sigpanic"),
                sp_delta: f.sp_delta(link_pc).ok(),
            })
        })
    }
}

/// Functions whose caller frame resumes at an interrupted (not a return)
/// PC, as in Go's `isInjectedCall`.
fn is_injected(name: &[u8]) -> bool {
    matches!(
        name,
        b"runtime.sigpanic" | b"runtime.asyncPreempt" | b"runtime.debugCallV2"
    )
}

/// Walks the stack from `start` within `[stack_lo, stack_hi)`. `bias` is
/// the PIE load bias (runtime = link + bias).
pub(crate) fn unwind<M: Memory>(
    tab: &Pclntab<'_>,
    cache: &mut UnwindCache,
    bias: u64,
    mem: &M,
    start: UnwindStart,
    stack_lo: u64,
    stack_hi: u64,
) -> Unwound {
    let mut out = Unwound::default();
    unwind_into(tab, cache, bias, mem, start, stack_lo, stack_hi, &mut out);
    out
}

/// [`unwind`] into `out` (cleared first), so that one buffer serves every
/// goroutine of a snapshot.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unwind_into<M: Memory>(
    tab: &Pclntab<'_>,
    cache: &mut UnwindCache,
    bias: u64,
    mem: &M,
    start: UnwindStart,
    stack_lo: u64,
    stack_hi: u64,
    out: &mut Unwound,
) {
    out.frames.clear();
    out.error = None;
    let (mut pc, mut sp) = (start.pc, start.sp);
    let mut trap = start.trap;
    let mut lr_reg = start.lr;
    if pc == 0 && cache.uses_lr && lr_reg != 0 {
        // A call through a nil func value on arm64: the caller's PC is
        // in the link register.
        pc = lr_reg;
        lr_reg = 0;
    }
    if pc == 0 {
        // A call through a nil func value: the caller's PC is at SP.
        match mem.read_u64(sp) {
            Ok(v) => {
                pc = v;
                sp = sp.saturating_add(8);
            }
            Err(e) => {
                out.error = Some(format!("pc is 0 and the return address is unreadable: {e}"));
                return;
            }
        }
    }
    let mut innermost = true;
    while out.frames.len() < MAX_PHYSICAL_FRAMES {
        if sp < stack_lo || sp >= stack_hi {
            out.error = Some(format!("stack pointer {sp:#x} outside the goroutine's stack [{stack_lo:#x}, {stack_hi:#x})"));
            return;
        }
        let link_pc = pc.wrapping_sub(bias);
        let Some(info) = cache.get(tab, link_pc) else {
            out.error = Some(format!("unknown pc {pc:#x}"));
            return;
        };
        let name = || {
            tab.func(info.func)
                .map(|f| f.name())
                .unwrap_or_else(|_| "?".into())
        };
        let sym_pc = if trap || link_pc <= info.entry {
            link_pc
        } else {
            link_pc - 1
        };
        // Go computes fp for every frame, including the last one printed.
        let ret_word = if cache.uses_lr { 0 } else { 8 };
        let fp = info
            .sp_delta
            .filter(|d| *d >= 0)
            .and_then(|d| sp.checked_add(d as u64 + ret_word));
        out.frames.push(PhysFrame {
            pc,
            sp,
            fp: fp.unwrap_or(0),
            func: info.func,
            entry: info.entry,
            sym_pc,
        });
        let writes_sp = info.writes_sp && !info.cgocallback && !(innermost && start.syscall);
        if info.top_frame || writes_sp {
            return;
        }
        let fp = match (info.sp_delta, fp) {
            (None, _) => return, // no pcsp: Go stops here too
            (Some(d), _) if d < 0 => {
                out.error = Some(format!("negative frame size {d} in {}", name()));
                return;
            }
            (Some(_), None) => {
                out.error = Some(format!(
                    "frame of {} runs past the top of the address space",
                    name()
                ));
                return;
            }
            (Some(_), Some(fp)) => fp,
        };
        // Go's rule: on arm64 the saved LR is at SP, except in the
        // innermost frame before it has a frame (the LR register).
        let lr_at = if !cache.uses_lr {
            Some(fp - 8)
        } else if (innermost && sp < fp) || lr_reg == 0 {
            Some(sp)
        } else {
            None
        };
        let lr = match lr_at.map(|a| mem.read_u64(a)).unwrap_or(Ok(lr_reg)) {
            Ok(v) => v,
            Err(e) => {
                out.error = Some(format!("return address of {} unreadable: {e}", name()));
                return;
            }
        };
        if lr == 0 {
            return;
        }
        if lr == pc && fp == sp {
            out.error = Some(format!("traceback stuck at pc {pc:#x}"));
            return;
        }
        if cache.get(tab, lr.wrapping_sub(bias)).is_none() {
            out.error = Some(format!("unexpected return pc {lr:#x} above {}", name()));
            return;
        }
        trap = info.traps_caller;
        pc = lr;
        sp = fp;
        innermost = false;
        lr_reg = 0;
        if cache.uses_lr && info.injected {
            // The signal handler saved the interrupted LR on the stack
            // before faking the call (Go's unwinder does the same).
            let Ok(saved) = mem.read_u64(sp) else {
                out.error = Some(format!("saved link register at {sp:#x} unreadable"));
                return;
            };
            sp = sp.saturating_add(16);
            match cache.get(tab, pc.wrapping_sub(bias)) {
                None => pc = saved,
                Some(next) if next.sp_delta == Some(0) => lr_reg = saved,
                Some(_) => {}
            }
        }
    }
    out.error = Some(format!("more than {MAX_PHYSICAL_FRAMES} frames"));
}

/// A stack as a shape: its frames with SP and FP relative to the innermost
/// SP. 100k goroutines parked in the same code have the same shape at
/// different addresses, so they share one (see [`StackInterner`]): a
/// snapshot holds one copy per distinct stack, not one per goroutine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct StackShape {
    /// `sp`/`fp` hold offsets from [`SharedStack::sp0`] (wrapping).
    pub(crate) frames: Vec<PhysFrame>,
    pub(crate) error: Option<String>,
}

/// One goroutine's stack: a shared shape placed at its innermost SP, and
/// its own argument words (read from the same copy, see `walk::args`).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStack {
    pub(crate) shape: std::sync::Arc<StackShape>,
    pub(crate) sp0: u64,
    /// `None` until `ArgReader::attach` read them.
    pub(crate) args: Option<super::args::ArgWords>,
}

impl SharedStack {
    /// The frames with absolute SP and FP (FP 0 stays 0: not computed).
    pub(crate) fn frames(&self) -> impl Iterator<Item = PhysFrame> + '_ {
        self.shape.frames.iter().map(move |f| PhysFrame {
            sp: f.sp.wrapping_add(self.sp0),
            fp: if f.fp == NO_FP {
                0
            } else {
                f.fp.wrapping_add(self.sp0)
            },
            ..*f
        })
    }
}

/// Hands out one shared [`StackShape`] per distinct stack, without
/// allocating for a stack it has seen before (the common case: 100k
/// goroutines, a dozen stacks).
#[derive(Debug, Default)]
pub(crate) struct StackInterner {
    by_hash: rustc_hash::FxHashMap<u64, Vec<std::sync::Arc<StackShape>>>,
    count: usize,
}

/// A relative fp that was not computed (fp is never below the innermost
/// SP, so no real offset is this).
const NO_FP: u64 = u64::MAX;

fn rel(f: &PhysFrame, sp0: u64) -> PhysFrame {
    PhysFrame {
        sp: f.sp.wrapping_sub(sp0),
        // An fp equal to the innermost SP (a frameless arm64 leaf) is a
        // real offset 0: "not computed" needs its own mark.
        fp: if f.fp == 0 {
            NO_FP
        } else {
            f.fp.wrapping_sub(sp0)
        },
        ..*f
    }
}

impl StackInterner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared form of an unwound stack.
    pub(crate) fn intern(&mut self, uw: Unwound) -> SharedStack {
        self.intern_ref(&uw)
    }

    /// [`Self::intern`] from a borrowed stack (a reused buffer).
    pub(crate) fn intern_ref(&mut self, uw: &Unwound) -> SharedStack {
        use std::hash::{Hash, Hasher};
        let sp0 = uw.frames.first().map_or(0, |f| f.sp);
        let mut h = rustc_hash::FxHasher::default();
        for f in &uw.frames {
            rel(f, sp0).hash(&mut h);
        }
        uw.error.hash(&mut h);
        let bucket = self.by_hash.entry(h.finish()).or_default();
        let found = bucket.iter().find(|s| {
            s.error == uw.error
                && s.frames.len() == uw.frames.len()
                && s.frames
                    .iter()
                    .zip(&uw.frames)
                    .all(|(a, b)| *a == rel(b, sp0))
        });
        let shape = match found {
            Some(s) => s.clone(),
            None => {
                let s = std::sync::Arc::new(StackShape {
                    frames: uw.frames.iter().map(|f| rel(f, sp0)).collect(),
                    error: uw.error.clone(),
                });
                bucket.push(s.clone());
                self.count += 1;
                s
            }
        };
        SharedStack {
            shape,
            sp0,
            args: None,
        }
    }

    /// Distinct stacks seen.
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn frame(pc: u64, sp: u64, fp: u64) -> PhysFrame {
        PhysFrame {
            pc,
            sp,
            fp,
            func: 1,
            entry: 0x1000,
            sym_pc: pc - 1,
        }
    }

    #[test]
    fn same_code_at_different_addresses_shares_one_shape() {
        let mut i = StackInterner::new();
        let a = i.intern(Unwound {
            frames: vec![frame(0x1010, 0x5000, 0x5020), frame(0x1020, 0x5020, 0)],
            error: None,
        });
        let b = i.intern(Unwound {
            frames: vec![frame(0x1010, 0x9000, 0x9020), frame(0x1020, 0x9020, 0)],
            error: None,
        });
        assert!(std::sync::Arc::ptr_eq(&a.shape, &b.shape));
        assert_eq!(i.len(), 1);
        let fb: Vec<PhysFrame> = b.frames().collect();
        assert_eq!(fb[0].sp, 0x9000);
        assert_eq!(fb[0].fp, 0x9020);
        assert_eq!(fb[1].sp, 0x9020);
        assert_eq!(fb[1].fp, 0, "an uncomputed fp stays 0");
        let c = i.intern(Unwound {
            frames: vec![frame(0x1011, 0x9000, 0x9020)],
            error: None,
        });
        assert!(!std::sync::Arc::ptr_eq(&a.shape, &c.shape));
        let empty = i.intern(Unwound::default());
        assert_eq!(empty.frames().count(), 0);
    }
}
