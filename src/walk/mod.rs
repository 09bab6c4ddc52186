//! Walking the runtime's goroutines: read them, holding the target only
//! to confirm what was read ([`capture`]), then symbolize and apply Go's
//! printing rules ([`build_goroutines`]) after the target runs again.

pub(crate) mod args;
pub mod capture;
pub mod census;
pub(crate) mod gscan;
pub(crate) mod gstruct;
pub(crate) mod gtable;
pub(crate) mod labels;
pub mod sched;
pub mod sched_stack;
pub(crate) mod signal;
pub mod threads;
pub(crate) mod unwind;

use crate::binary::program::GoProgram;
use crate::binary::symbolize::{frames_at, SymFrame};
use crate::dump::{CreatedBy, Frame, GoroutineSnapshot};
use crate::gotrace::frames::{is_system_start, mark_hidden, shows_frame, FuncIds, RawFrame};
use crate::gotrace::status::{status_text, wait_minutes};
use crate::layout::offsets::RuntimeOffsets;
pub use capture::{Capture, CaptureStats, GoroutineCopy};
use gstruct::GInfo;
use rustc_hash::FxHashMap as HashMap;
use std::rc::Rc;
use std::sync::Arc;
use thiserror::Error;

/// Most goroutines accepted from `allgs` (a corrupt length beyond this is
/// refused rather than allocated).
pub(crate) const MAX_GOROUTINES: u64 = 1 << 24;
/// Largest goroutine stack Go allows (runtime.maxstacksize on 64-bit).
pub(crate) const MAX_STACK: u64 = 1 << 30;

/// Why the goroutine list itself could not be read (one bad goroutine only
/// marks that goroutine).
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum WalkError {
    #[error("runtime.allgs was not found in the binary; cannot list goroutines")]
    NoAllgs,
    #[error("cannot read runtime.allgs at {addr:#x}: {source}")]
    Allgs {
        addr: u64,
        source: crate::memory::MemoryError,
    },
    #[error("runtime.allgs claims {0} goroutines, more than gopeek accepts ({MAX_GOROUTINES}); is this the right binary for the process?")]
    TooMany(u64),
    #[error("runtime.allgs does not look like a goroutine list ({0}); the binary may not match the process")]
    Implausible(String),
    /// The caller said stop (the pause budget ran out): the copy is
    /// incomplete and must not be used.
    #[error("copy abandoned: the pause budget ran out")]
    Abandoned,
}

impl crate::exit::ExitStatus for WalkError {
    fn exit_code(&self) -> u8 {
        crate::exit::FAILURE
    }
}

/// Registers of one thread, as much as the walker needs.
#[derive(Debug, Clone, Copy)]
pub struct ThreadRegs {
    pub(crate) tid: i32,
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    /// The link register (arm64), 0 where there is none.
    pub(crate) lr: u64,
    /// The frame pointer (rbp, x29), 0 where unknown: the way past an
    /// assembly function that switched stacks, where pclntab stops.
    pub(crate) fp: u64,
}

/// What the walker needs to know about the target besides its memory.
pub struct WalkConfig<'p, 'a> {
    /// The executable: symbols, PC tables, version.
    pub prog: &'p GoProgram<'a>,
    /// Where each runtime field sits in this version.
    pub off: &'p RuntimeOffsets,
    /// PIE load bias (runtime address = link address + bias).
    pub bias: u64,
    /// `waitReasonStrings` of the target (from the binary, else the
    /// version's table).
    pub wait_reasons: Vec<String>,
    /// `gStatusStrings` of the target's version.
    pub gstatus: Vec<String>,
    /// Keep each frame's SP and FP (`--system` text prints them); without
    /// it, goroutines with the same stack share one frame list.
    pub frame_registers: bool,
}

/// Symbolizes PCs once each: 100k goroutines parked in the same code cost
/// one lookup per distinct PC.
struct Symbolizer<'p, 'a> {
    prog: &'p GoProgram<'a>,
    cache: HashMap<u64, Rc<Vec<SymFrame>>>,
}

impl Symbolizer<'_, '_> {
    fn frames(&mut self, sym_pc: u64) -> Rc<Vec<SymFrame>> {
        if let Some(v) = self.cache.get(&sym_pc) {
            return v.clone();
        }
        // The frames `gopeek symbolize` gives for this PC; where the
        // tables are damaged a traceback still needs a line, so the
        // function's name at `?:0`, as Go prints it.
        let v: Vec<SymFrame> = match self.prog.pclntab.find_func(sym_pc) {
            Ok(f) => frames_at(&f, sym_pc).unwrap_or_else(|_| vec![SymFrame::unknown_line(&f)]),
            Err(_) => vec![SymFrame::unknown()],
        };
        let v = Rc::new(v);
        self.cache.insert(sym_pc, v.clone());
        v
    }
}

/// `true` for goroutines Go hides at GOTRACEBACK=all (`isSystemGoroutine`).
pub(crate) fn is_system(prog: &GoProgram<'_>, startpc_link: u64) -> bool {
    match prog.pclntab.find_func(startpc_link) {
        Ok(f) => is_system_start(&f.name()),
        Err(_) => false,
    }
}

/// Symbolized frames per distinct stack shape: goroutines parked in the
/// same code share one `Arc<[Frame]>` (when frame registers are not kept).
type FrameCache = HashMap<*const unwind::StackShape, Arc<[Frame]>>;

/// Go's frames for one stack: symbolized, inlined frames expanded,
/// runtime frames and wrappers marked as Go's traceback would hide them.
fn symbolized_frames(
    cfg: &WalkConfig<'_, '_>,
    sym: &mut Symbolizer<'_, '_>,
    ids: &FuncIds,
    stack: &unwind::SharedStack,
    registers: bool,
) -> Arc<[Frame]> {
    let mut raw = Vec::new();
    for pf in stack.frames() {
        let lf = sym.frames(pf.sym_pc);
        for sf in lf.iter() {
            raw.push(RawFrame {
                frame: Frame {
                    function: sf.print_name.clone(),
                    file: sf.file.clone(),
                    line: i64::from(sf.line),
                    pc: pf.pc,
                    inlined: sf.inlined,
                    runtime: false,
                    offset: if sf.inlined || pf.pc.wrapping_sub(cfg.bias) <= pf.entry {
                        None
                    } else {
                        Some(pf.pc.wrapping_sub(cfg.bias) - pf.entry)
                    },
                    sp: if registers { pf.sp } else { 0 },
                    fp: if registers { pf.fp } else { 0 },
                },
                raw_name: sf.name.clone(),
                func_id: sf.func_id,
            });
        }
    }
    mark_hidden(&mut raw, ids);
    raw.into_iter().map(|r| r.frame).collect()
}

/// Symbolizes every goroutine of a capture and applies Go's printing
/// rules (hidden runtime frames, wrappers); runs after the target is
/// released. Work is done once per distinct stack, creation site and
/// start function, so 100k goroutines parked in the same few places cost
/// little more than one.
/// The capture's goroutines are consumed from the last to the first and
/// their memory given back as they go (`cap.goroutines` is left empty).
pub fn build_goroutines(cfg: &WalkConfig<'_, '_>, cap: &mut Capture) -> Vec<GoroutineSnapshot> {
    let minor = cfg.prog.version.minor;
    let ids = FuncIds::for_minor(minor);
    let mut sym = Symbolizer {
        prog: cfg.prog,
        cache: HashMap::default(),
    };
    let mut frames_cache: FrameCache = HashMap::default();
    let mut arg_text = args::ArgText::new(minor);
    let mut created_cache: HashMap<(u64, u64), Option<Arc<CreatedBy>>> = HashMap::default();
    let mut status_cache: HashMap<(u32, u8), Arc<str>> = HashMap::default();
    let mut system_cache: HashMap<u64, bool> = HashMap::default();
    let empty: Arc<[Frame]> = Arc::from(Vec::new());
    let mut out = Vec::with_capacity(cap.goroutines.len());
    let nanotime = cap.nanotime;
    for (_, gc) in capture::reads::drain_back(std::mem::take(&mut cap.goroutines)) {
        let gc = &gc;
        let g = &gc.rec;
        let startpc = g.startpc.wrapping_sub(cfg.bias);
        let system = *system_cache
            .entry(startpc)
            .or_insert_with(|| is_system(cfg.prog, startpc));
        let args = match &gc.stack {
            Ok(st) => arg_text.frame_args(&mut sym, st),
            Err(_) => None,
        };
        let (frames, error) = match &gc.stack {
            Ok(st) => {
                let frames = if cfg.frame_registers {
                    symbolized_frames(cfg, &mut sym, &ids, st, true)
                } else {
                    frames_cache
                        .entry(Arc::as_ptr(&st.shape))
                        .or_insert_with(|| symbolized_frames(cfg, &mut sym, &ids, st, false))
                        .clone()
                };
                (frames, st.shape.error.clone())
            }
            Err(e) => (empty.clone(), Some(e.clone())),
        };
        let created_by = if g.goid == 1 || g.gopc == 0 {
            None
        } else {
            created_cache
                .entry((g.gopc, g.parent_goid))
                .or_insert_with(|| created_by(cfg, &ids, g).map(Arc::new))
                .clone()
        };
        out.push(GoroutineSnapshot {
            id: g.goid,
            status: status_cache
                .entry((g.status, g.waitreason))
                .or_insert_with(|| {
                    status_text(g.status, g.waitreason, &cfg.gstatus, &cfg.wait_reasons).into()
                })
                .clone(),
            wait_minutes: wait_minutes(g.status, g.waitsince, nanotime),
            locked_to_thread: g.locked,
            thread: gc.thread,
            labels: gc.labels.clone(),
            created_by,
            frames,
            error,
            args,
            raw_status: g.base_status(),
            system,
            g_addr: g.addr,
            m: gc.m,
        });
    }
    out.reverse();
    out
}

fn created_by(cfg: &WalkConfig<'_, '_>, ids: &FuncIds, g: &GInfo) -> Option<CreatedBy> {
    if g.goid == 1 || g.gopc == 0 {
        return None;
    }
    let pc = g.gopc.wrapping_sub(cfg.bias);
    let f = cfg.prog.pclntab.find_func(pc).ok()?;
    let raw = f.name();
    let hidden = !shows_frame(ids, &raw, f.func_id.0, false, 0);
    let trace_pc = if pc > f.entry { pc - 1 } else { pc };
    let (file, line) = f
        .file_line(trace_pc)
        .map(|(f, l)| (String::from_utf8_lossy(f).into_owned(), i64::from(l)))
        .unwrap_or(("?".into(), 0));
    Some(CreatedBy {
        function: f.print_name(),
        file,
        line,
        goroutine: if cfg.prog.version.minor >= 21 && g.parent_goid != 0 {
            Some(g.parent_goid)
        } else {
            None
        },
        offset: pc - f.entry,
        runtime: hidden,
    })
}
