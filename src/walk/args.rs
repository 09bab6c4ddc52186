//! Arguments as Go's traceback prints them, per goroutine.
//!
//! Two halves, at the two moments the walker has what each needs:
//!
//! - [`ArgReader`], while a stack's copy is at hand (right after it is
//!   unwound, in every capture mode): reads the words `printArgs` would
//!   print from the copied bytes, so they are of the same instant as the
//!   frames. Where they sit is worked out once per stack shape (a *plan*:
//!   for each physical frame, its argument pointer plus each word's
//!   offset); a goroutine then costs one read per word and one lookup to
//!   share its words with every goroutine that has the same ones.
//! - [`ArgText`], after release: turns a shape and its words into each
//!   frame's text with Go's rules ([`crate::gotrace::args`]), resolving the
//!   liveness of register arguments at the PC the target's release uses,
//!   once per shape and once per distinct set of words.
//!
//! Stack shapes stay shared (`Arc<[Frame]>` per shape); the arguments are
//! a separate per-goroutine list, itself shared by goroutines whose
//! shape and words are the same.

use super::unwind::{SharedStack, StackShape};
use super::Symbolizer;
use crate::binary::elf::Arch;
use crate::binary::pclntab::{ArgOp, Pclntab};
use crate::dump::FrameArgs;
use crate::gotrace::args::{liveness_at_outermost_pc, resolve, ArgFormat};
use crate::memory::Memory;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// The words of one goroutine's argument areas, frame after frame, in
/// the order the frames' argument-info programs list them; `None` where a
/// word was not in the copy.
pub(crate) type ArgWords = Arc<[Option<u64>]>;

/// Go's `frame.argp` from its `frame.fp` (the caller's SP as the unwinder
/// computes it): `fp + sys.MinFrameSize`. On amd64 `fp` is above the
/// return address and the arguments start there (MinFrameSize 0); on
/// arm64 `fp` is `sp + frame size` and the word at the caller's SP is its
/// saved LR slot, so the arguments start 8 bytes above. This is the one
/// place that knows; `fp` 0 means the unwinder did not compute it.
pub(crate) fn arg_pointer(arch: Arch, fp: u64) -> Option<u64> {
    let min_frame_size = match arch {
        Arch::Amd64 => 0,
        Arch::Arm64 => 8,
    };
    (fp != 0).then(|| fp.wrapping_add(min_frame_size))
}

/// A function's argument-info program, decoded once: `Ok(None)` when it
/// has none (Go prints `()`), `Err` when it cannot be read (gopeek prints
/// `(...)`). Either way without words.
type Program = Result<Option<Arc<[ArgOp]>>, ()>;

fn program(tab: &Pclntab<'_>, func: usize) -> Program {
    let f = tab.func(func).map_err(|_| ())?;
    match f.arg_info() {
        Ok(Some(ops)) => Ok(Some(ops.into())),
        Ok(None) => Ok(None),
        Err(_) => Err(()),
    }
}

fn word_count(p: &Program) -> usize {
    match p {
        Ok(Some(ops)) => ops
            .iter()
            .filter(|o| matches!(o, ArgOp::Word { .. }))
            .count(),
        _ => 0,
    }
}

/// Where one word sits: an offset from the stack's innermost SP
/// (wrapping), `None` when the frame's argument pointer is unknown.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Option<u64>,
    size: u8,
}

/// Reads each goroutine's argument words from its stack copy.
#[derive(Debug)]
pub(crate) struct ArgReader {
    arch: Arch,
    programs: FxHashMap<usize, Program>,
    /// By shape (the interner keeps every shape alive for as long as this
    /// reader, so the address is not reused).
    plans: FxHashMap<*const StackShape, Arc<[Slot]>>,
    words: FxHashSet<ArgWords>,
    scratch: Vec<Option<u64>>,
}

impl ArgReader {
    pub(crate) fn new(arch: Arch) -> Self {
        ArgReader {
            arch,
            programs: FxHashMap::default(),
            plans: FxHashMap::default(),
            words: FxHashSet::default(),
            scratch: Vec::new(),
        }
    }

    fn plan(&mut self, tab: &Pclntab<'_>, shape: &StackShape) -> Arc<[Slot]> {
        let mut slots = Vec::new();
        for f in &shape.frames {
            let p = self
                .programs
                .entry(f.func)
                .or_insert_with(|| program(tab, f.func));
            let Ok(Some(ops)) = p else { continue };
            // `f.fp` is relative to the innermost SP, as the plan is.
            let argp = arg_pointer(self.arch, f.fp);
            for op in ops.iter() {
                if let ArgOp::Word { off, size } = *op {
                    slots.push(Slot {
                        at: argp.map(|a| a.wrapping_add(u64::from(off))),
                        size,
                    });
                }
            }
        }
        slots.into()
    }

    /// Reads the argument words of `stack` from `mem` (the copy it was
    /// unwound from) into `stack.args`.
    pub(crate) fn attach<M: Memory>(
        &mut self,
        tab: &Pclntab<'_>,
        stack: &mut SharedStack,
        mem: &M,
    ) {
        let key = Arc::as_ptr(&stack.shape);
        let plan = match self.plans.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = self.plan(tab, &stack.shape);
                self.plans.insert(key, p.clone());
                p
            }
        };
        self.scratch.clear();
        for s in plan.iter() {
            let word = s.at.and_then(|at| {
                let mut b = [0u8; 8];
                let n = usize::from(s.size.min(8));
                mem.read_at(stack.sp0.wrapping_add(at), &mut b[..n])
                    .ok()
                    .map(|_| u64::from_le_bytes(b))
            });
            self.scratch.push(word);
        }
        let words = match self.words.get(self.scratch.as_slice()) {
            Some(w) => w.clone(),
            None => {
                let w: ArgWords = self.scratch.as_slice().into();
                self.words.insert(w.clone());
                w
            }
        };
        stack.args = Some(words);
    }
}

/// A shape's argument lists, per logical frame: the format and the index
/// of its first word, or `None` (inlined frames, unreadable programs).
type ShapeArgs = Arc<[Option<(ArgFormat, usize)>]>;

/// Formats the argument words of each goroutine, after release.
pub(crate) struct ArgText {
    minor: u32,
    programs: FxHashMap<usize, Program>,
    shapes: FxHashMap<*const StackShape, ShapeArgs>,
    rendered: FxHashMap<(*const StackShape, *const Option<u64>), FrameArgs>,
}

impl ArgText {
    /// Go's rules of release `1.<minor>`.
    pub(crate) fn new(minor: u32) -> Self {
        ArgText {
            minor,
            programs: FxHashMap::default(),
            shapes: FxHashMap::default(),
            rendered: FxHashMap::default(),
        }
    }

    fn shape_args(&mut self, sym: &mut Symbolizer<'_, '_>, st: &SharedStack) -> ShapeArgs {
        let tab = &sym.prog.pclntab;
        let mut out = Vec::new();
        let mut next_word = 0usize;
        for pf in st.shape.frames.iter() {
            let p = self
                .programs
                .entry(pf.func)
                .or_insert_with(|| program(tab, pf.func));
            let format = match p {
                Err(()) => None,
                Ok(None) => resolve(&[], &crate::binary::pclntab::ArgLiveness::ALL_LIVE).ok(),
                Ok(Some(ops)) => tab.func(pf.func).ok().and_then(|f| {
                    let pc = if liveness_at_outermost_pc(self.minor) {
                        f.outermost_pc(pf.sym_pc).ok()?
                    } else {
                        pf.sym_pc
                    };
                    resolve(ops, &f.arg_liveness(pc).ok()?).ok()
                }),
            };
            let first = next_word;
            next_word += word_count(p);
            for sf in sym.frames(pf.sym_pc).iter() {
                out.push(if sf.inlined {
                    None
                } else {
                    format.clone().map(|f| (f, first))
                });
            }
        }
        out.into()
    }

    /// Each logical frame's argument text for one goroutine's stack (the
    /// list lines up with the frames `build_goroutines` makes of it).
    pub(super) fn frame_args(
        &mut self,
        sym: &mut Symbolizer<'_, '_>,
        st: &SharedStack,
    ) -> Option<FrameArgs> {
        let words = st.args.as_ref()?;
        let key = (Arc::as_ptr(&st.shape), words.as_ptr());
        if let Some(r) = self.rendered.get(&key) {
            return Some(r.clone());
        }
        let shape = match self.shapes.get(&key.0) {
            Some(s) => s.clone(),
            None => {
                let s = self.shape_args(sym, st);
                self.shapes.insert(key.0, s.clone());
                s
            }
        };
        let r: FrameArgs = shape
            .iter()
            .map(|slot| {
                let (f, first) = slot.as_ref()?;
                let w = words.get(*first..first.checked_add(f.words())?)?;
                f.render(w).map(Arc::from)
            })
            .collect();
        self.rendered.insert(key, r.clone());
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::binary::pclntab::tests_support::liveness_table;
    use crate::memory::SliceMemory;
    use crate::walk::unwind::PhysFrame;

    #[test]
    fn argument_pointer_per_architecture() {
        assert_eq!(arg_pointer(Arch::Amd64, 0x1000), Some(0x1000));
        assert_eq!(arg_pointer(Arch::Arm64, 0x1000), Some(0x1008));
        assert_eq!(arg_pointer(Arch::Amd64, 0), None);
    }

    /// Two frames of `main.f` (words at argp+0 and argp+8, the second one
    /// 4 bytes), the inner one's fp 0x20 above the innermost SP, the
    /// outer one's not computed.
    fn shape() -> Arc<StackShape> {
        let frame = |fp| PhysFrame {
            pc: 0x401020,
            sp: 0,
            fp,
            func: 0,
            entry: 0x401000,
            sym_pc: 0x40101f,
        };
        Arc::new(StackShape {
            frames: vec![frame(0x20), frame(0)],
            error: None,
        })
    }

    #[test]
    fn reads_each_goroutines_words_from_its_copy_and_shares_equal_ones() {
        let (tab, gofunc) = liveness_table(&[0, 8, 8, 4, 0xff], &[0]);
        let p = Pclntab::parse(&tab, 0, None)
            .unwrap()
            .with_gofunc(0, &gofunc);
        let mut r = ArgReader::new(Arch::Amd64);
        // One shape for every goroutine, alive throughout (the interner's
        // job in a capture: plans are keyed by its address).
        let sh = shape();
        let stack_of = |sp0: u64, a: u64, b: u64| {
            let mut data = vec![0xEEu8; 0x40];
            data[0x20..0x28].copy_from_slice(&a.to_le_bytes());
            data[0x28..0x30].copy_from_slice(&b.to_le_bytes());
            (sp0, data)
        };
        let mut read = |sp0: u64, data: &[u8]| {
            let mut st = SharedStack {
                shape: sh.clone(),
                sp0,
                args: None,
            };
            r.attach(&p, &mut st, &SliceMemory { base: sp0, data });
            st.args.unwrap()
        };
        let (sp, d) = stack_of(0x7000, 7, 0xaaaa_bbbb_0000_0009);
        let a = read(sp, &d);
        // The outer frame's argument pointer is unknown: its words too.
        assert_eq!(&a[..], &[Some(7), Some(9), None, None]);
        // Another goroutine elsewhere with the same words shares them.
        let (sp, d) = stack_of(0x9000, 7, 9);
        let b = read(sp, &d);
        assert!(Arc::ptr_eq(&a, &b));
        let (sp, d) = stack_of(0x9000, 8, 9);
        assert_eq!(&read(sp, &d)[..2], &[Some(8), Some(9)]);
        // A copy that stops short of the argument area: nothing is made up.
        let (sp, d) = stack_of(0x9000, 7, 9);
        assert_eq!(&read(sp, &d[..0x24])[..2], &[None, None]);
    }
}
