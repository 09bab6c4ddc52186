//! Reading the scheduler out of a target's memory into
//! [`gotrace::sched::SchedState`](crate::gotrace::sched::SchedState): the
//! same walk `runtime.schedtrace` makes (`sched`, `allp`, `allm` through
//! `alllink`, `allgs`), field by field as that function reads them.
//!
//! Generic over [`Memory`], so it runs the same on a live process (racy,
//! as the runtime's own trace is, or under a hold) and on a fake in the
//! unit tests. Every count and pointer from the target is bounded; a bad
//! pointer fails the read of that item with an error naming it.

use crate::binary::locate::{Located, RuntimeGlobals};
use crate::gotrace::sched::{gc_phase_name, GState, GcState, MAddrs, MState, PState, SchedState};
use crate::layout::offsets::{RuntimeOffsets, SchedDetailOffsets};
use crate::memory::{Memory, MemoryError, MemoryExt};
use std::collections::HashMap;
use thiserror::Error;

/// `stackPreempt` (stack.go): the `stackguard0` that asks a goroutine to
/// yield at its next function prologue.
pub(crate) const STACK_PREEMPT: u64 = 0xffff_ffff_ffff_fade;
/// `_Prunning`.
pub(crate) const P_RUNNING: u32 = 1;
/// Most Ps, Ms and gs accepted (a corrupt count is refused).
const MAX_PS: u64 = 1 << 16;
const MAX_MS: usize = 1 << 16;
const MAX_GS: u64 = 1 << 24;
/// Longest `m.preemptoff` string read.
const MAX_PREEMPTOFF: u64 = 256;

/// Why the scheduler could not be read.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum SchedError {
    #[error("runtime.{0} was not found in the binary; cannot read the scheduler (run `gopeek info` on the executable to see which globals were found)")]
    NoGlobal(&'static str),
    #[error("cannot read {what}: {source}")]
    Memory { what: String, source: MemoryError },
    #[error("{what} claims {count} entries, more than gopeek accepts; is this the right binary for the process?")]
    TooMany { what: &'static str, count: u64 },
}

impl crate::exit::ExitStatus for SchedError {
    fn exit_code(&self) -> u8 {
        crate::exit::FAILURE
    }
}

/// Everything the reader needs besides the memory.
pub struct SchedConfig<'a> {
    /// Where the runtime's globals are (link-time addresses).
    pub globals: &'a RuntimeGlobals,
    /// The g/m/p/schedt offsets shared with the goroutine walker.
    pub off: &'a RuntimeOffsets,
    /// The scheduler-only offsets.
    pub det: &'a SchedDetailOffsets,
    /// `waitReasonStrings` of the target.
    pub wait_reasons: &'a [String],
    /// The target's Go minor version.
    pub go_minor: u32,
    /// PIE load bias: runtime address of a global = link address + bias.
    pub bias: u64,
    /// The target's `nanotime()` now (CLOCK_MONOTONIC is system-wide).
    pub now_ns: i64,
}

/// Little-endian fields out of a struct copied in one read.
struct Fields<'b>(&'b [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, off: u64) -> [u8; N] {
        let mut b = [0u8; N];
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        if let Some(s) = start.checked_add(N).and_then(|end| self.0.get(start..end)) {
            b.copy_from_slice(s);
        }
        b
    }
    fn u8(&self, off: u64) -> u8 {
        self.bytes::<1>(off)[0]
    }
    fn u32(&self, off: u64) -> u32 {
        u32::from_le_bytes(self.bytes(off))
    }
    fn i32(&self, off: u64) -> i32 {
        i32::from_le_bytes(self.bytes(off))
    }
    fn u64(&self, off: u64) -> u64 {
        u64::from_le_bytes(self.bytes(off))
    }
    fn i64(&self, off: u64) -> i64 {
        i64::from_le_bytes(self.bytes(off))
    }
}

fn mem_err(what: impl Into<String>) -> impl FnOnce(MemoryError) -> SchedError {
    let what = what.into();
    move |source| SchedError::Memory { what, source }
}

fn global(g: &Option<Located>, name: &'static str, bias: u64) -> Result<u64, SchedError> {
    g.as_ref()
        .map(|l| l.addr.wrapping_add(bias))
        .ok_or(SchedError::NoGlobal(name))
}

fn read_struct<M: Memory>(
    mem: &M,
    addr: u64,
    size: u64,
    what: &str,
) -> Result<Vec<u8>, SchedError> {
    mem.read_vec(addr, size, 1 << 20)
        .map_err(mem_err(format!("{what} at {addr:#x}")))
}

/// Reads the scheduler: the SCHED figures, every P, M and g.
pub fn read_sched<M: Memory>(mem: &M, cfg: &SchedConfig<'_>) -> Result<SchedState, SchedError> {
    let (off, det, bias) = (cfg.off, cfg.det, cfg.bias);
    let sched_addr = global(&cfg.globals.sched, "sched", bias)?;
    let sched = read_struct(mem, sched_addr, off.sched.size, "runtime.sched")?;
    let s = Fields(&sched);

    // allm first: P and G lines print M ids, so map M address → id.
    let mut ms_raw: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut mp = mem
        .read_u64(global(&cfg.globals.allm, "allm", bias)?)
        .map_err(mem_err("runtime.allm"))?;
    while mp != 0 {
        if ms_raw.len() >= MAX_MS {
            return Err(SchedError::TooMany {
                what: "runtime.allm",
                count: ms_raw.len() as u64,
            });
        }
        let b = read_struct(mem, mp, off.m.size, "an m on runtime.allm")?;
        let next = Fields(&b).u64(off.m.alllink);
        ms_raw.push((mp, b));
        mp = next;
    }
    let m_ids: HashMap<u64, i64> = ms_raw
        .iter()
        .map(|(a, b)| (*a, Fields(b).i64(off.m.id)))
        .collect();
    let m_id = |addr: u64| -> Option<i64> {
        if addr == 0 {
            return None;
        }
        m_ids.get(&addr).copied().or_else(|| {
            mem.read_u64(addr.wrapping_add(off.m.id))
                .ok()
                .map(|v| v as i64)
        })
    };
    let goid_of = |addr: u64| -> Option<u64> {
        (addr != 0)
            .then(|| mem.read_u64(addr.wrapping_add(off.g.goid)).ok())
            .flatten()
    };

    // allp: a slice header {ptr, len, cap}.
    let allp = global(&cfg.globals.allp, "allp", bias)?;
    let allp_ptr = mem.read_u64(allp).map_err(mem_err("runtime.allp"))?;
    let allp_len = mem.read_u64(allp + 8).map_err(mem_err("runtime.allp"))?;
    if allp_len > MAX_PS {
        return Err(SchedError::TooMany {
            what: "runtime.allp",
            count: allp_len,
        });
    }
    let mut ps = Vec::with_capacity(allp_len as usize);
    let mut p_ids: HashMap<u64, i32> = HashMap::new();
    for i in 0..allp_len {
        let pp = mem
            .read_u64(allp_ptr.wrapping_add(8 * i))
            .map_err(mem_err(format!("allp[{i}]")))?;
        let b = read_struct(mem, pp, off.p.size, &format!("P {i}"))?;
        let f = Fields(&b);
        p_ids.insert(pp, f.i32(off.p.id));
        let status = f.u32(off.p.status);
        let schedtick = f.u32(off.p.schedtick);
        let sysmon_schedtick = f.u32(det.p_sysmon_schedtick);
        let sysmon_schedwhen = f.i64(det.p_sysmon_schedwhen);
        let running_ms = (status == P_RUNNING
            && sysmon_schedtick == schedtick
            && sysmon_schedwhen > 0
            && cfg.now_ns >= sysmon_schedwhen)
            .then(|| cfg.now_ns.saturating_sub(sysmon_schedwhen) / 1_000_000);
        ps.push(PState {
            id: i as i32,
            status,
            schedtick,
            syscalltick: f.u32(off.p.syscalltick),
            m: m_id(f.u64(off.p.m)),
            runqsize: f.u32(off.p.runqtail).wrapping_sub(f.u32(off.p.runqhead)),
            gfreecnt: f.i32(det.p_gfree_n),
            timers: f.i64(det.p_timers_len),
            preempt: f.u8(det.p_preempt) != 0,
            run_safe_point_fn: f.u32(det.p_run_safe_point_fn) != 0,
            gc_stop_time: det.p_gc_stop_time.map(|o| f.i64(o)).unwrap_or(0),
            sysmon_schedtick,
            sysmon_schedwhen,
            running_ms,
        });
    }

    let ms = ms_raw
        .iter()
        .map(|(addr, b)| {
            let f = Fields(b);
            let pp = f.u64(off.m.p);
            MState {
                id: f.i64(off.m.id),
                thread_id: f.u64(off.m.procid),
                p: (pp != 0).then(|| {
                    p_ids
                        .get(&pp)
                        .copied()
                        .or_else(|| {
                            mem.read_u32(pp.wrapping_add(off.p.id))
                                .ok()
                                .map(|v| v as i32)
                        })
                        .unwrap_or(-1)
                }),
                curg: goid_of(f.u64(off.m.curg)),
                mallocing: f.i32(off.m.mallocing),
                throwing: f.i32(off.m.throwing),
                preemptoff: read_preemptoff(mem, &f, off.m.preemptoff),
                locks: f.i32(off.m.locks),
                dying: f.i32(off.m.dying),
                spinning: f.u8(off.m.spinning) != 0,
                blocked: f.u8(off.m.blocked) != 0,
                lockedg: goid_of(f.u64(off.m.lockedg)),
                preempt_gen: f.u32(det.m_preempt_gen),
                signal_pending: f.u32(det.m_signal_pending) != 0,
                addrs: MAddrs {
                    m: *addr,
                    g0: f.u64(off.m.g0),
                    curg: f.u64(off.m.curg),
                    gsignal: f.u64(off.m.gsignal),
                    vdso_sp: f.u64(off.m.vdso_sp),
                    vdso_pc: f.u64(off.m.vdso_pc),
                },
            }
        })
        .collect();

    let gs = read_gs(mem, cfg, &m_id)?;

    let gomaxprocs = match &cfg.globals.sched_extra.gomaxprocs {
        Some(l) => mem
            .read_u32(l.addr.wrapping_add(bias))
            .map_err(mem_err("runtime.gomaxprocs"))? as i32,
        // The runtime keeps len(allp) == gomaxprocs outside procresize.
        None => allp_len as i32,
    };
    let base = uptime_base(mem, cfg);
    let ex = &cfg.globals.sched_extra;
    let read_u32 = |l: &Option<Located>| {
        l.as_ref()
            .and_then(|l| mem.read_u32(l.addr.wrapping_add(bias)).ok())
    };
    let work = ex.work.as_ref().map(|l| l.addr.wrapping_add(bias));
    let work_i64 = |o: u64| work.and_then(|w| mem.read_u64(w + o).ok()).unwrap_or(0) as i64;
    let runqueue = s.i32(off.sched.runq_size);
    Ok(SchedState {
        go_minor: cfg.go_minor,
        uptime_ms: if base > 0 {
            cfg.now_ns.saturating_sub(base) / 1_000_000
        } else {
            0
        },
        gomaxprocs,
        idleprocs: s.i32(off.sched.npidle),
        threads: s
            .i64(off.sched.mnext)
            .wrapping_sub(s.i64(off.sched.nmfreed)) as i32,
        spinningthreads: s.i32(off.sched.nmspinning),
        needspinning: off.sched.needspinning.map(|o| s.u32(o)),
        idlethreads: s.i32(off.sched.nmidle),
        runqueue,
        gcwaiting: s.u8(off.sched.gcwaiting) != 0,
        nmidlelocked: s.i32(off.sched.nmidlelocked),
        stopwait: s.i32(off.sched.stopwait),
        sysmonwait: s.u8(off.sched.sysmonwait) != 0,
        ps,
        ms,
        gs,
        gc: read_gc(mem, cfg),
        safe_point_wait: s.i32(det.sched_safe_point_wait),
        worldsema: read_u32(&ex.worldsema),
        gcsema: read_u32(&ex.gcsema),
        t_sweep_term: work_i64(det.work_t_sweep_term),
        t_mark_term: work_i64(det.work_t_mark_term),
        t_end: work_i64(det.work_t_end),
        now_ns: cfg.now_ns,
        stacks: Vec::new(),
    })
}

/// The GC figures; `None` without `gcphase` and `work`.
fn read_gc<M: Memory>(mem: &M, cfg: &SchedConfig<'_>) -> Option<GcState> {
    let (ex, det, bias) = (&cfg.globals.sched_extra, cfg.det, cfg.bias);
    let at = |l: &Option<Located>| l.as_ref().map(|l| l.addr.wrapping_add(bias));
    let phase = mem.read_u32(at(&ex.gcphase)?).ok()?;
    let cycles = mem.read_u32(at(&ex.work)? + det.work_cycles).ok()?;
    let ms = at(&ex.memstats);
    let gcc = at(&ex.gc_controller);
    let u64_at = |base: Option<u64>, o: u64| base.and_then(|b| mem.read_u64(b + o).ok());
    Some(GcState {
        phase: gc_phase_name(phase),
        cycles,
        num_gc: ms.and_then(|b| mem.read_u32(b + det.memstats_numgc).ok()),
        heap_live: u64_at(gcc, det.gcc_heap_live),
        heap_goal: u64_at(gcc, det.gcc_heap_goal),
        gogc: gcc.and_then(|b| mem.read_u32(b + det.gcc_gc_percent).ok().map(|v| v as i32)),
        memory_limit: u64_at(gcc, det.gcc_memory_limit).map(|v| v as i64),
    })
}

/// `m.preemptoff`, a Go string; unreadable text reads as empty.
fn read_preemptoff<M: Memory>(mem: &M, f: &Fields<'_>, off: u64) -> String {
    let (ptr, len) = (f.u64(off), f.u64(off + 8));
    if len == 0 || len > MAX_PREEMPTOFF {
        return String::new();
    }
    mem.read_vec(ptr, len, MAX_PREEMPTOFF)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

/// `starttime` (set by the first schedtrace), else `runtimeInitTime`.
fn uptime_base<M: Memory>(mem: &M, cfg: &SchedConfig<'_>) -> i64 {
    let read = |l: &Option<Located>| {
        l.as_ref()
            .and_then(|l| mem.read_u64(l.addr.wrapping_add(cfg.bias)).ok())
            .unwrap_or(0) as i64
    };
    let ex = &cfg.globals.sched_extra;
    match read(&ex.starttime) {
        0 => read(&ex.runtime_init_time),
        t => t,
    }
}

/// Every g of `allgs`, as `forEachG` visits them.
fn read_gs<M: Memory>(
    mem: &M,
    cfg: &SchedConfig<'_>,
    m_id: &dyn Fn(u64) -> Option<i64>,
) -> Result<Vec<GState>, SchedError> {
    let off = cfg.off;
    let allgs = global(&cfg.globals.allgs, "allgs", cfg.bias)?;
    let ptr = mem.read_u64(allgs).map_err(mem_err("runtime.allgs"))?;
    let len = mem.read_u64(allgs + 8).map_err(mem_err("runtime.allgs"))?;
    if len > MAX_GS {
        return Err(SchedError::TooMany {
            what: "runtime.allgs",
            count: len,
        });
    }
    let ptrs = mem
        .read_vec(ptr, len * 8, MAX_GS * 8)
        .map_err(mem_err("the runtime.allgs array"))?;
    let mut gs = Vec::with_capacity(len as usize);
    for c in ptrs.chunks_exact(8) {
        let gp = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let b = read_struct(mem, gp, off.g.size, "a g on runtime.allgs")?;
        let f = Fields(&b);
        let reason = f.u8(off.g.waitreason) as usize;
        gs.push(GState {
            goid: f.u64(off.g.goid),
            status: f.u32(off.g.atomicstatus),
            waitreason: cfg
                .wait_reasons
                .get(reason)
                .cloned()
                .unwrap_or_else(|| "unknown wait reason".to_string()),
            m: m_id(f.u64(off.g.m)),
            lockedm: m_id(f.u64(off.g.lockedm)),
            preempt: f.u8(cfg.det.g_preempt) != 0,
            stackguard_preempt: f.u64(cfg.det.g_stackguard0) == STACK_PREEMPT,
            startpc: f.u64(off.g.startpc),
        });
    }
    Ok(gs)
}
