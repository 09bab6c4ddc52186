//! Walking the runtime's goroutines: copy while the target is held
//! ([`capture`]), then decode, unwind and symbolize on the copy
//! ([`build_goroutines`]), after the target runs again.

pub mod gstruct;
pub mod labels;
pub mod traceback;
pub mod unwind;

use crate::dump::{CreatedBy, Frame, GoroutineSnapshot};
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::{Memory, MemoryExt, RangeCopier, RegionMemory};
use crate::program::GoProgram;
use gstruct::{GRecord, G_RUNNING};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use thiserror::Error;
use traceback::{mark_hidden, shows_frame, FuncIds, RawFrame};
use unwind::{unwind, UnwindCache, UnwindStart};

/// Most goroutines accepted from `allgs` (a corrupt length beyond this is
/// refused rather than allocated).
pub const MAX_GOROUTINES: u64 = 1 << 24;
/// Largest goroutine stack Go allows (runtime.maxstacksize on 64-bit).
pub const MAX_STACK: u64 = 1 << 30;

/// Why the goroutine list itself could not be read (one bad goroutine only
/// marks that goroutine).
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

/// Ranges copied per batch between checks of the pause budget.
const RANGES_PER_CHECK: usize = 8192;

/// Copies `ranges` in batches, asking `keep_going` between them.
fn copy_checked<C: RangeCopier>(
    src: &C,
    ranges: &[(u64, usize)],
    mem: &mut RegionMemory,
    keep_going: &dyn Fn() -> bool,
) -> Result<(), WalkError> {
    for chunk in ranges.chunks(RANGES_PER_CHECK) {
        if !keep_going() {
            return Err(WalkError::Abandoned);
        }
        mem.absorb(src.copy_ranges(chunk));
    }
    Ok(())
}

/// Registers of one thread, as much as the walker needs.
#[derive(Debug, Clone, Copy)]
pub struct ThreadRegs {
    pub tid: i32,
    pub pc: u64,
    pub sp: u64,
    pub tls_base: u64,
}

/// What the walker needs to know about the target besides its memory.
pub struct WalkConfig<'p, 'a> {
    pub prog: &'p GoProgram<'a>,
    pub off: &'p RuntimeOffsets,
    /// PIE load bias (runtime address = link address + bias).
    pub bias: u64,
    pub wait_reasons: Vec<String>,
    pub gstatus: Vec<String>,
}

/// Everything copied while the target was held.
pub struct Capture {
    pub mem: RegionMemory,
    /// Addresses of the g structs, in `allgs` order.
    pub gs: Vec<u64>,
    pub threads: Vec<ThreadRegs>,
    /// CLOCK_MONOTONIC at capture, in ns (Go's `nanotime`).
    pub nanotime: i64,
    pub warnings: Vec<String>,
    /// pprof labels by g address, decoded while the target was held
    /// (they live in the heap, which is not copied wholesale).
    pub labels: HashMap<u64, std::collections::BTreeMap<String, String>>,
}

/// Reads the M fields the start-context choice needs.
struct MRecord {
    procid: u64,
    vdso_sp: u64,
    vdso_pc: u64,
}

fn read_m<M: Memory>(mem: &M, off: &RuntimeOffsets, m: u64) -> Option<MRecord> {
    Some(MRecord {
        procid: mem.read_u64(m.wrapping_add(off.m.procid)).ok()?,
        vdso_sp: mem.read_u64(m.wrapping_add(off.m.vdso_sp)).ok()?,
        vdso_pc: mem.read_u64(m.wrapping_add(off.m.vdso_pc)).ok()?,
    })
}

/// The start context Go itself would use (traceback1/initAt), improved
/// for running goroutines with the thread's registers.
fn start_context<M: Memory>(
    g: &GRecord,
    mem: &M,
    off: &RuntimeOffsets,
    threads: &[ThreadRegs],
) -> Result<(UnwindStart, Option<i32>), String> {
    let m = if g.m != 0 {
        read_m(mem, off, g.m)
    } else {
        None
    };
    let tid = m.as_ref().map(|m| m.procid as i32).filter(|&t| t > 0);
    let in_stack = |sp: u64| sp >= g.stack_lo && sp < g.stack_hi;
    if let Some(m) = &m {
        if m.vdso_sp != 0 && in_stack(m.vdso_sp) {
            return Ok((
                UnwindStart {
                    pc: m.vdso_pc,
                    sp: m.vdso_sp,
                    trap: false,
                    syscall: false,
                },
                tid,
            ));
        }
    }
    if g.syscallsp != 0 {
        return Ok((
            UnwindStart {
                pc: g.syscallpc,
                sp: g.syscallsp,
                trap: false,
                syscall: true,
            },
            tid,
        ));
    }
    if g.base_status() == G_RUNNING {
        if let Some(t) = tid.and_then(|tid| threads.iter().find(|t| t.tid == tid)) {
            if in_stack(t.sp) {
                return Ok((
                    UnwindStart {
                        pc: t.pc,
                        sp: t.sp,
                        trap: true,
                        syscall: false,
                    },
                    tid,
                ));
            }
        }
        if g.sched_sp != 0 {
            // On the system stack (systemstack/morestack): the user part
            // was saved in g.sched.
            return Ok((
                UnwindStart {
                    pc: g.sched_pc,
                    sp: g.sched_sp,
                    trap: false,
                    syscall: false,
                },
                tid,
            ));
        }
        return Err(match tid {
            Some(t) => format!("running on thread {t}, which was not on this goroutine's stack"),
            None => "running on another thread; stack unavailable".to_string(),
        });
    }
    Ok((
        UnwindStart {
            pc: g.sched_pc,
            sp: g.sched_sp,
            trap: false,
            syscall: false,
        },
        None,
    ))
}

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Copies everything the dump needs from `src` (the held target): the
/// goroutine list, every live g, the Ms of running goroutines, and each
/// stack from its start SP to `stack.hi`.
/// `keep_going` is asked between batches; once it says no (the pause
/// budget ran out and the target was released) the copy is abandoned.
pub fn capture<C: RangeCopier>(
    cfg: &WalkConfig<'_, '_>,
    src: &C,
    threads: Vec<ThreadRegs>,
    keep_going: &dyn Fn() -> bool,
) -> Result<Capture, WalkError> {
    let nanotime = monotonic_ns();
    let off = cfg.off;
    let allgs = cfg
        .prog
        .globals
        .allgs
        .as_ref()
        .ok_or(WalkError::NoAllgs)?
        .addr
        + cfg.bias;
    let mut hdr = [0u8; 16];
    src.read_at(allgs, &mut hdr)
        .map_err(|source| WalkError::Allgs {
            addr: allgs,
            source,
        })?;
    let ptr = u64::from_le_bytes(hdr[..8].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(hdr[8..].try_into().unwrap_or_default());
    if len > MAX_GOROUTINES {
        return Err(WalkError::TooMany(len));
    }
    let mut mem = RegionMemory::new();
    let mut warnings = Vec::new();
    let array = src.copy_ranges(&[(ptr, (len * 8) as usize)]);
    let mut gs = Vec::with_capacity(len as usize);
    for i in 0..len {
        let g = array
            .read_u64(ptr.wrapping_add(8 * i))
            .map_err(|source| WalkError::Allgs { addr: ptr, source })?;
        if g != 0 {
            gs.push(g);
        }
    }
    mem.absorb(array);
    let gsize = GRecord::bytes_needed(&off.g) as usize;
    let granges: Vec<(u64, usize)> = gs.iter().map(|&g| (g, gsize)).collect();
    copy_checked(src, &granges, &mut mem, keep_going)?;
    // One scratch buffer for every g: this runs while the target is held.
    let mut scratch = vec![0u8; gsize];
    let records: Vec<GRecord> = gs
        .iter()
        .filter_map(|&g| {
            mem.read_at(g, &mut scratch)
                .ok()
                .map(|_| GRecord::decode(g, &scratch, &off.g))
        })
        .collect();
    if records.len() < gs.len() {
        warnings.push(format!(
            "{} of {} g structs could not be read",
            gs.len() - records.len(),
            gs.len()
        ));
    }
    if !records.is_empty() && !records.iter().any(|g| g.looks_valid()) {
        return Err(WalkError::Implausible("no entry has g.sched.g == g".into()));
    }
    let t_ms = std::time::Instant::now();
    let ms: BTreeSet<u64> = records
        .iter()
        .filter(|g| !g.is_dead() && g.m != 0)
        .map(|g| g.m)
        .collect();
    let mranges: Vec<(u64, usize)> = ms.iter().map(|&m| (m, off.m.size as usize)).collect();
    copy_checked(src, &mranges, &mut mem, keep_going)?;
    let mut stacks = Vec::new();
    for g in records.iter().filter(|g| !g.is_dead() && g.looks_valid()) {
        if let Ok((start, _)) = start_context(g, &mem, off, &threads) {
            let sp = start.sp;
            if sp >= g.stack_lo && sp < g.stack_hi && g.stack_hi - sp <= MAX_STACK {
                stacks.push((sp, (g.stack_hi - sp) as usize));
            }
        }
    }
    let t_stacks = std::time::Instant::now();
    let stack_bytes: usize = stacks.iter().map(|s| s.1).sum();
    copy_checked(src, &stacks, &mut mem, keep_going)?;
    if std::env::var_os("GOPEEK_DEBUG_TIMING").is_some() {
        eprintln!(
            "gopeek: timing: capture: gs+ms {} us, stacks {} us ({} stacks, {} bytes), since start {} us",
            t_stacks.duration_since(t_ms).as_micros(),
            t_stacks.elapsed().as_micros(),
            stacks.len(),
            stack_bytes,
            t_ms.elapsed().as_micros()
        );
    }
    let minor = cfg.prog.version.minor;
    let labels = records
        .iter()
        .filter(|g| !g.is_dead() && g.labels != 0)
        .filter_map(|g| labels::read_labels(src, g.labels, minor).map(|l| (g.addr, l)))
        .collect();
    Ok(Capture {
        mem,
        gs,
        threads,
        nanotime,
        warnings,
        labels,
    })
}

/// A logical frame ready to become a [`Frame`], cached per symbolization PC.
struct SymFrame {
    raw_name: Arc<str>,
    print_name: Arc<str>,
    file: Arc<str>,
    line: i64,
    inlined: bool,
    func_id: u8,
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
        let tab = &self.prog.pclntab;
        let v: Vec<SymFrame> = match tab.find_func(sym_pc) {
            Ok(f) => match f.frames_at(sym_pc) {
                Ok(frames) => frames
                    .iter()
                    .map(|fr| {
                        let raw = fr.name_str().into_owned();
                        SymFrame {
                            print_name: crate::pclntab::name_for_print(&raw).into(),
                            raw_name: raw.into(),
                            file: fr.file_str().into(),
                            line: i64::from(fr.line),
                            inlined: fr.inlined,
                            func_id: fr.func_id.0,
                        }
                    })
                    .collect(),
                Err(_) => vec![SymFrame {
                    raw_name: f.name().into(),
                    print_name: f.print_name().into(),
                    file: "?".into(),
                    line: 0,
                    inlined: false,
                    func_id: f.func_id.0,
                }],
            },
            Err(_) => vec![SymFrame {
                raw_name: "?".into(),
                print_name: "?".into(),
                file: "?".into(),
                line: 0,
                inlined: false,
                func_id: 0,
            }],
        };
        let v = Rc::new(v);
        self.cache.insert(sym_pc, v.clone());
        v
    }
}

/// `true` for goroutines Go hides at GOTRACEBACK=all (`isSystemGoroutine`).
fn is_system(prog: &GoProgram<'_>, startpc_link: u64) -> bool {
    match prog.pclntab.find_func(startpc_link) {
        Ok(f) => {
            let n = f.name();
            n.starts_with("runtime.")
                && !matches!(
                    n.as_str(),
                    "runtime.main" | "runtime.corostart" | "runtime.handleAsyncEvent"
                )
        }
        Err(_) => false,
    }
}

/// Decodes, unwinds and symbolizes every live goroutine of a capture.
pub fn build_goroutines(cfg: &WalkConfig<'_, '_>, cap: &Capture) -> Vec<GoroutineSnapshot> {
    let off = cfg.off;
    let minor = cfg.prog.version.minor;
    let ids = FuncIds::for_minor(minor);
    let mut sym = Symbolizer {
        prog: cfg.prog,
        cache: HashMap::new(),
    };
    let mut pcs = UnwindCache::new();
    let mut out = Vec::new();
    let gsize = GRecord::bytes_needed(&off.g) as usize;
    let mut b = vec![0u8; gsize];
    for &gaddr in &cap.gs {
        if cap.mem.read_at(gaddr, &mut b).is_err() {
            continue;
        }
        let g = GRecord::decode(gaddr, &b, &off.g);
        if g.is_dead() {
            continue;
        }
        let mut snap = GoroutineSnapshot {
            id: g.goid,
            status: traceback::status_text(&g, &cfg.gstatus, &cfg.wait_reasons),
            wait_minutes: traceback::wait_minutes(&g, cap.nanotime),
            locked_to_thread: g.lockedm != 0,
            thread: None,
            labels: cap.labels.get(&gaddr).cloned(),
            created_by: None,
            frames: Vec::new(),
            error: None,
            raw_status: g.base_status(),
            system: is_system(cfg.prog, g.startpc.wrapping_sub(cfg.bias)),
            g_addr: gaddr,
            m: if g.m != 0 {
                cap.mem
                    .read_u64(g.m.wrapping_add(off.m.id))
                    .ok()
                    .map(|id| (id as i64, g.m))
            } else {
                None
            },
        };
        if !g.looks_valid() {
            snap.error = Some(format!(
                "g at {gaddr:#x} is inconsistent (sched.g {:#x}, stack [{:#x}, {:#x}))",
                g.sched_g, g.stack_lo, g.stack_hi
            ));
            out.push(snap);
            continue;
        }
        match start_context(&g, &cap.mem, off, &cap.threads) {
            Ok((start, tid)) => {
                snap.thread = if g.base_status() == G_RUNNING || g.syscallsp != 0 {
                    tid
                } else {
                    None
                };
                let uw = unwind(
                    &cfg.prog.pclntab,
                    &mut pcs,
                    cfg.bias,
                    &cap.mem,
                    start,
                    g.stack_lo,
                    g.stack_hi,
                );
                let mut raw = Vec::new();
                for (i, pf) in uw.frames.iter().enumerate() {
                    let lf = sym.frames(pf.sym_pc);
                    for sf in lf.iter() {
                        raw.push(RawFrame {
                            frame: Frame {
                                function: sf.print_name.clone(),
                                file: sf.file.clone(),
                                line: sf.line,
                                pc: pf.pc,
                                inlined: sf.inlined,
                                runtime: false,
                                offset: if sf.inlined || pf.pc.wrapping_sub(cfg.bias) <= pf.entry {
                                    None
                                } else {
                                    Some(pf.pc.wrapping_sub(cfg.bias) - pf.entry)
                                },
                                sp: pf.sp,
                                fp: pf.fp,
                            },
                            raw_name: sf.raw_name.clone(),
                            func_id: sf.func_id,
                            physical: i,
                        });
                    }
                }
                mark_hidden(&mut raw, &ids);
                snap.frames = raw.into_iter().map(|r| r.frame).collect();
                snap.error = uw.error;
            }
            Err(e) => snap.error = Some(e),
        }
        snap.created_by = created_by(cfg, &ids, &g);
        out.push(snap);
    }
    out
}

fn created_by(cfg: &WalkConfig<'_, '_>, ids: &FuncIds, g: &GRecord) -> Option<CreatedBy> {
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

impl RangeCopier for crate::process::LiveMemory {
    fn copy_ranges(&self, ranges: &[(u64, usize)]) -> RegionMemory {
        crate::process::LiveMemory::copy_ranges(self, ranges)
    }
}
