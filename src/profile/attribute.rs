//! From one kernel sample (registers + a copy of the stack top) to a
//! stack of physical frames and the goroutine it belongs to.
//!
//! The goroutine: R14 (the g register of Go's internal ABI) when it is the
//! thread's `m.curg` or a g of `allgs`; the system stack when it is the
//! M's `g0`/`gsignal` (then the goroutine is `m.curg`, whose labels Go's
//! profiler uses too); else, in assembly or C code where R14 means
//! nothing, the thread's `m.curg` if SP is on its stack, else `g0`.
//!
//! The stack: gopeek's pclntab unwinder over the copied bytes (falling
//! back to the live memory above the copy), from the user IP; in a
//! syscall that IP is the instruction after it, so kernel time lands on
//! the Go frame that entered the kernel, as in Go's profile. A stack on
//! g0 that reaches `runtime.systemstack`/`runtime.morestack` continues on
//! the goroutine's stack, as Go's `unwindJumpStack` does, when that
//! goroutine (the M's `curg` read at the drain, not at the sample) is
//! proved the one: the function that called `systemstack` on its stack
//! wrote the closure running on g0; otherwise the stack stays cut there
//! and counts as partial. Code in C during
//! a cgo call is booked to the Go stack of that call (the goroutine's
//! `syscallpc/syscallsp`), as Go's `sigprof` books it. Other code outside Go
//! is followed back by frame pointers to the first Go frame; failing
//! that the sample is `runtime._ExternalCode` under `runtime._System`, as
//! Go counts it.

use super::Labels;
use crate::binary::program::GoProgram;
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::{BatchRead, Memory, MemoryError, MemoryExt, SliceMemory};
use crate::process::perf::ring::RawSample;
use crate::walk::gstruct::GRecord;
use crate::walk::labels::read_labels;
use crate::walk::unwind::{unwind_into, UnwindCache, UnwindStart, Unwound};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Most Ms followed along `allm`.
const MAX_MS: usize = 100_000;
/// Most C frames followed by frame pointers before giving up.
const MAX_C_FRAMES: usize = 64;
/// Most goroutine stacks remembered by where they lie (cleared when full).
const MAX_STACKS: usize = 1 << 16;
/// At most this many g's of `allgs` are read at each re-read of it to
/// learn where their stacks lie (more: only the g's met in samples).
const MAX_G_SCAN: usize = 4096;

/// A frame of an attributed stack, before symbolization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RawFrame {
    /// A Go frame: runtime PC and the link-time PC to symbolize.
    Go { pc: u64, sym_pc: u64 },
    /// Go's stand-ins for code it cannot unwind (`runtime._ExternalCode`,
    /// `runtime._System`).
    Synthetic(&'static str),
}

/// One sample, attributed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Attributed {
    pub(crate) frames: Vec<RawFrame>,
    pub(crate) goid: Option<u64>,
    /// Address of the label set (0: none); the labels themselves are in
    /// [`Attributor::labels_at`].
    pub(crate) labels: u64,
    pub(crate) tid: i32,
    /// The sample hit in the kernel (a system call or a fault).
    pub(crate) kernel: bool,
    /// The user PC was in C code (outside Go and the vDSO).
    pub(crate) external: bool,
}

/// How far a sample's stack went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Whole,
    Truncated,
    External,
}

#[derive(Debug, Clone, Copy, Default)]
struct MInfo {
    g0: u64,
    gsignal: u64,
    curg: u64,
}

/// The target's copied stack, then its live memory above the copy.
struct SampleMemory<'s, M> {
    copy: SliceMemory<'s>,
    live: &'s M,
}

impl<M: Memory> Memory for SampleMemory<'_, M> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.copy
            .read_at(addr, buf)
            .or_else(|_| self.live.read_at(addr, buf))
    }
}

/// Attributes samples of one process; caches what it reads of the
/// target for one drain ([`Self::new_drain`] forgets it).
pub(crate) struct Attributor<'p, 'a, M> {
    prog: &'p GoProgram<'a>,
    off: &'p RuntimeOffsets,
    bias: u64,
    mem: &'p M,
    allgs: FxHashSet<u64>,
    ms: FxHashMap<i32, MInfo>,
    gs: FxHashMap<u64, Option<GRecord>>,
    labels: FxHashMap<u64, Option<Labels>>,
    ucache: UnwindCache,
    buf: Unwound,
    special: FxHashMap<usize, Special>,
    /// Goroutine stacks by their low end: `lo -> (hi, g)`, kept across
    /// drains (a hint only: every use re-reads the g in this drain).
    stacks: std::collections::BTreeMap<u64, (u64, u64)>,
    /// The vDSO's address range: code outside Go that is not C (Go calls
    /// it for the time), so not cgo time.
    vdso: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    SystemStack,
    MoreStack,
}

impl<'p, 'a, M: BatchRead + Sync> Attributor<'p, 'a, M> {
    pub(crate) fn new(
        prog: &'p GoProgram<'a>,
        off: &'p RuntimeOffsets,
        bias: u64,
        mem: &'p M,
    ) -> Self {
        Attributor {
            prog,
            off,
            bias,
            mem,
            allgs: FxHashSet::default(),
            ms: FxHashMap::default(),
            gs: FxHashMap::default(),
            labels: FxHashMap::default(),
            ucache: UnwindCache::for_target(prog.version.minor, prog.bin.arch()),
            buf: Unwound::default(),
            special: FxHashMap::default(),
            stacks: std::collections::BTreeMap::new(),
            vdso: None,
        }
    }

    /// Where the target's vDSO is mapped (`[vdso]` in its maps): samples
    /// there are Go asking the time, not C through cgo.
    pub(crate) fn set_vdso(&mut self, range: Option<(u64, u64)>) {
        self.vdso = range;
    }

    /// Forgets the g's and M's read for the previous drain (goroutines
    /// come and go, g's are reused, labels change); `allgs` too when
    /// `with_allgs`.
    pub(crate) fn new_drain(&mut self, with_allgs: bool) {
        self.gs.clear();
        self.ms.clear();
        if with_allgs {
            self.allgs.clear();
            if let Ok(list) = self.read_allgs() {
                self.allgs.extend(list);
            }
            // Where every goroutine's stack lies, for `owner_of` (a
            // goroutine that spends its time on the system stack, as a GC
            // mark worker does, is rarely met on its own stack).
            if self.allgs.len() <= MAX_G_SCAN {
                let gs: Vec<u64> = self.allgs.iter().copied().collect();
                for g in gs {
                    self.g(g);
                }
            }
        }
        self.read_ms();
    }

    fn read_allgs(&self) -> Result<Vec<u64>, MemoryError> {
        let Some(at) = self.prog.globals.allgs.as_ref() else {
            return Ok(Vec::new());
        };
        let at = at.addr.wrapping_add(self.bias);
        let ptr = self.mem.read_u64(at)?;
        let len = self.mem.read_u64(at.wrapping_add(8))?;
        if len > crate::walk::MAX_GOROUTINES {
            return Ok(Vec::new());
        }
        let bytes = self
            .mem
            .read_vec(ptr, len * 8, crate::walk::MAX_GOROUTINES * 8)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .filter(|&g| g != 0)
            .collect())
    }

    /// Every M along `allm`, by thread id.
    fn read_ms(&mut self) {
        let Some(at) = self.prog.globals.allm.as_ref() else {
            return;
        };
        let mo = &self.off.m;
        let Ok(mut m) = self.mem.read_u64(at.addr.wrapping_add(self.bias)) else {
            return;
        };
        let mut seen = FxHashSet::default();
        while m != 0 && seen.len() < MAX_MS && seen.insert(m) {
            let w = |o: u64| self.mem.read_u64(m.wrapping_add(o)).unwrap_or(0);
            let tid = w(mo.procid) as i32;
            if tid > 0 {
                self.ms.insert(
                    tid,
                    MInfo {
                        g0: w(mo.g0),
                        gsignal: w(mo.gsignal),
                        curg: w(mo.curg),
                    },
                );
            }
            m = w(mo.alllink);
        }
    }

    fn g(&mut self, addr: u64) -> Option<GRecord> {
        if addr == 0 {
            return None;
        }
        if let Some(g) = self.gs.get(&addr) {
            return g.clone();
        }
        let n = GRecord::bytes_needed(&self.off.g) as usize;
        let mut b = vec![0u8; n];
        let rec = self
            .mem
            .read_at(addr, &mut b)
            .ok()
            .map(|()| GRecord::decode(addr, &b, &self.off.g))
            .filter(|g| g.looks_valid() && !g.is_dead());
        if let Some(g) = &rec {
            if g.stack_lo < g.stack_hi {
                if self.stacks.len() >= MAX_STACKS {
                    self.stacks.clear();
                }
                self.stacks.insert(g.stack_lo, (g.stack_hi, addr));
            }
        }
        self.gs.insert(addr, rec.clone());
        rec
    }

    /// The goroutine whose stack holds `addr`, as read in this drain (the
    /// remembered stack ranges only say which g to re-read).
    fn owner_of(&mut self, addr: u64) -> Option<GRecord> {
        let (_, &(hi, g)) = self.stacks.range(..=addr).next_back()?;
        if addr >= hi {
            return None;
        }
        self.g(g)
            .filter(|g| addr >= g.stack_lo && addr < g.stack_hi)
    }

    /// The labels at `ptr` (cached per drain).
    pub(crate) fn labels_at(&mut self, ptr: u64) -> Option<Labels> {
        if ptr == 0 {
            return None;
        }
        let (mem, minor) = (self.mem, self.prog.version.minor);
        self.labels
            .entry(ptr)
            .or_insert_with(|| read_labels(&mem, ptr, minor).map(Arc::new))
            .clone()
    }

    fn special(&mut self, func: usize) -> Special {
        let tab = &self.prog.pclntab;
        *self
            .special
            .entry(func)
            .or_insert_with(|| match tab.func(func).map(|f| f.name()) {
                Ok(n) if n == "runtime.systemstack" => Special::SystemStack,
                Ok(n) if n == "runtime.morestack" => Special::MoreStack,
                _ => Special::None,
            })
    }

    /// Whether function `outer` is the one closure `inner` (`outer.funcN`,
    /// or a closure nested in one of its closures) was written in.
    fn encloses(&self, outer: Option<usize>, inner: Option<usize>) -> bool {
        let tab = &self.prog.pclntab;
        let name = |f: Option<usize>| tab.func(f?).ok().map(|f| f.name().to_string());
        match (name(outer), name(inner)) {
            (Some(o), Some(i)) => i
                .strip_prefix(o.as_str())
                .is_some_and(|rest| rest.starts_with(".func")),
            _ => false,
        }
    }

    fn is_go_pc(&self, pc: u64) -> bool {
        self.prog
            .pclntab
            .find_func(pc.wrapping_sub(self.bias))
            .is_ok()
    }

    /// Attributes one sample; `None` when it has no user registers.
    pub(crate) fn attribute(&mut self, s: &RawSample) -> Option<(Attributed, Outcome)> {
        let regs = s.regs?;
        let m = self.ms.get(&s.tid).copied();
        let sp = regs.sp;
        let on = |g: &GRecord| sp >= g.stack_lo && sp < g.stack_hi;
        // Which stack the thread is on, and whose goroutine it is.
        let (stack_g, mut goroutine, system) = match m {
            Some(m) if regs.g != 0 && regs.g == m.curg => (self.g(m.curg), self.g(m.curg), false),
            Some(m) if regs.g != 0 && (regs.g == m.g0 || regs.g == m.gsignal) => {
                (self.g(regs.g), self.g(m.curg), true)
            }
            _ if self.allgs.contains(&regs.g) => {
                let g = self.g(regs.g);
                (g.clone(), g, false)
            }
            Some(m) => {
                let curg = self.g(m.curg);
                if curg.as_ref().is_some_and(on) {
                    (curg.clone(), curg, false)
                } else {
                    (self.g(m.g0), curg, true)
                }
            }
            None => (None, None, false),
        };
        let hi = stack_g
            .as_ref()
            .filter(|g| on(g))
            .map_or(sp.saturating_add(s.stack.len() as u64), |g| g.stack_hi);
        let mem = SampleMemory {
            copy: SliceMemory {
                base: sp,
                data: &s.stack,
            },
            live: self.mem,
        };
        let mut frames = Vec::new();
        let mut outcome = Outcome::Whole;
        let start = UnwindStart {
            pc: regs.ip,
            sp,
            trap: true,
            syscall: false,
            // the sampled registers carry no link register (amd64 only so far)
            lr: 0,
        };
        let external = !self.is_go_pc(regs.ip);
        // In C through cgo: Go's sigprof books the sample to the Go stack
        // of the cgo call (`curg.syscallpc/syscallsp`, saved by
        // entersyscall in runtime.cgocall) while the M has a cgo call in
        // progress; C frames only where a cgo traceback is registered,
        // which gopeek cannot call. The M's `ncgo`, read once per drain,
        // is stale by now; the sign is the thread's: outside Go, off the
        // goroutine's stack (on g0, where asmcgocall runs C), with the
        // goroutine's syscall PC/SP set. (R14 still holds the goroutine in
        // C code, callee-saved, so `system` may be false here.)
        let cgo_call = goroutine
            .as_ref()
            .filter(|g| {
                external
                    && !on(g)
                    && g.syscallpc != 0
                    && g.syscallsp >= g.stack_lo
                    && g.syscallsp < g.stack_hi
            })
            .map(|g| (g.syscallpc, g.syscallsp, g.stack_lo, g.stack_hi));
        if let Some((pc, csp, lo, ghi)) = cgo_call {
            let st = UnwindStart {
                pc,
                sp: csp,
                trap: false,
                syscall: true,
                lr: 0,
            };
            outcome = self.walk(self.mem, st, lo, ghi, &mut frames);
        } else if !external {
            outcome = self.walk(&mem, start, sp, hi, &mut frames);
        } else {
            // C or the vDSO: frame pointers back to the first Go frame.
            let mut bp = regs.bp;
            let mut found = false;
            for _ in 0..MAX_C_FRAMES {
                if bp < sp || bp == 0 {
                    break;
                }
                let (Ok(ret), Ok(next)) = (mem.read_u64(bp.wrapping_add(8)), mem.read_u64(bp))
                else {
                    break;
                };
                if self.is_go_pc(ret) {
                    let st = UnwindStart {
                        pc: ret,
                        sp: bp.wrapping_add(16),
                        trap: false,
                        syscall: true,
                        // the sampled registers carry no link register (amd64 only so far)
                        lr: 0,
                    };
                    let lo = st.sp;
                    let hi = hi.max(lo.saturating_add(1 << 20));
                    outcome = self.walk(&mem, st, lo, hi, &mut frames);
                    found = true;
                    break;
                }
                if next <= bp {
                    break;
                }
                bp = next;
            }
            if !found {
                frames.push(RawFrame::Synthetic("runtime._ExternalCode"));
                frames.push(RawFrame::Synthetic("runtime._System"));
                outcome = Outcome::External;
            }
        }
        // On the system stack: continue on the goroutine's stack, as Go's
        // unwinder jumps, only where that goroutine is proven the one.
        // The M's `curg` is read at the drain, not at the sample (every
        // 25 ms: under GC load it is often another goroutine by then), so
        // the proof is in the sample itself: the closure `systemstack`
        // called on g0 saved the frame pointer it was called with, which
        // is that of `systemstack`'s caller, on the caller goroutine's
        // stack (`owner_of` names it). If that goroutine is still in the
        // same call (`sched.pc` in `systemstack_switch`, `sched.bp` that
        // frame pointer), its stack above is unchanged since the sample
        // and is followed; if it has moved on, the goroutine (id, labels)
        // is still right and the stack is cut at `systemstack` (partial).
        // Without that proof (no frame pointer saved yet, or arm64): the
        // M's `curg`, followed only when the function that called
        // `systemstack` on its stack is the one whose closure runs on g0
        // (`X` for `X.funcN`); never grafted onto another goroutine.
        if system && cgo_call.is_none() {
            let caller_bp = self.saved_caller_bp(&mem);
            let owner = caller_bp.and_then(|bp| self.owner_of(bp));
            let in_call = owner.as_ref().is_some_and(|o| {
                Some(o.sched_bp) == caller_bp
                    && self
                        .prog
                        .pclntab
                        .find_func(o.sched_pc.wrapping_sub(self.bias))
                        .is_ok_and(|f| f.name() == "runtime.systemstack_switch")
            });
            if owner.is_some() {
                goroutine = owner.clone();
            }
            if let (Some(g), Some(&last)) = (goroutine.as_ref(), self.buf.frames.last()) {
                let special = self.special(last.func);
                let closure = self
                    .buf
                    .frames
                    .len()
                    .checked_sub(2)
                    .and_then(|i| self.buf.frames.get(i))
                    .map(|f| f.func);
                let jump = match special {
                    Special::SystemStack if !frames.is_empty() && (owner.is_none() || in_call) => {
                        Some((last.pc, g.sched_sp, true))
                    }
                    Special::SystemStack => {
                        outcome = Outcome::Truncated;
                        None
                    }
                    Special::MoreStack if outcome == Outcome::Whole && !frames.is_empty() => {
                        Some((g.sched_pc, g.sched_sp, false))
                    }
                    _ => None,
                };
                if let Some((pc, sp, dup)) = jump {
                    let st = UnwindStart {
                        pc,
                        sp,
                        trap: false,
                        syscall: true,
                        // the sampled registers carry no link register (amd64 only so far)
                        lr: 0,
                    };
                    let mut more = Vec::new();
                    let (lo, hi) = (g.stack_lo.min(sp), g.stack_hi);
                    let more_outcome = self.walk(self.mem, st, lo, hi, &mut more);
                    let proven = !dup || in_call || {
                        let caller = self.buf.frames.get(1).map(|f| f.func);
                        self.encloses(caller, closure)
                    };
                    if proven {
                        outcome = more_outcome;
                        frames.extend(more.into_iter().skip(usize::from(dup)));
                    } else {
                        outcome = Outcome::Truncated;
                    }
                }
            }
        }
        if frames.is_empty() {
            frames.push(RawFrame::Synthetic("runtime._System"));
            outcome = Outcome::Truncated;
        }
        let goroutine = goroutine.filter(|g| !system || g.addr != 0);
        Some((
            Attributed {
                frames,
                goid: goroutine.as_ref().map(|g| g.goid),
                labels: goroutine.as_ref().map_or(0, |g| g.labels),
                tid: s.tid,
                // Kernel addresses have the top bit set (x86_64, arm64).
                kernel: s.ip >> 63 == 1,
                external: external
                    && !self
                        .vdso
                        .is_some_and(|(lo, hi)| (lo..hi).contains(&regs.ip)),
            },
            outcome,
        ))
    }

    /// On g0, stopped at `runtime.systemstack`: the frame pointer the
    /// closure it called saved in its prologue (the word below its return
    /// address), which is the one `systemstack` was called with: its
    /// caller's, on the caller goroutine's stack. `None` when the closure
    /// is the innermost frame (its prologue may not have run) or on arm64
    /// (another frame layout; its samples carry no link register yet).
    fn saved_caller_bp<N: Memory>(&mut self, mem: &N) -> Option<u64> {
        if self.prog.bin.arch() != crate::binary::elf::Arch::Amd64 {
            return None;
        }
        let (last, n) = (*self.buf.frames.last()?, self.buf.frames.len());
        if n < 3 || self.special(last.func) != Special::SystemStack {
            return None;
        }
        let closure = self.buf.frames.get(n - 2)?;
        if closure.fp == 0 || closure.fp != last.sp {
            return None;
        }
        mem.read_u64(closure.fp.checked_sub(16)?).ok()
    }

    fn walk<N: Memory>(
        &mut self,
        mem: &N,
        start: UnwindStart,
        lo: u64,
        hi: u64,
        out: &mut Vec<RawFrame>,
    ) -> Outcome {
        let tab = &self.prog.pclntab;
        unwind_into(
            tab,
            &mut self.ucache,
            self.bias,
            mem,
            start,
            lo,
            hi,
            &mut self.buf,
        );
        out.extend(self.buf.frames.iter().map(|f| RawFrame::Go {
            pc: f.pc,
            sym_pc: f.sym_pc,
        }));
        if self.buf.error.is_some() {
            Outcome::Truncated
        } else {
            Outcome::Whole
        }
    }
}
