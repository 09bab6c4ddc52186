//! Reading every goroutine with the target held for as short a time as
//! possible: read while it runs, then check while it is held.
//!
//! A goroutine that is off every thread (waiting, runnable, preempted)
//! cannot change its stack until it runs again, and running leaves marks
//! in its g: the status, the saved context (`sched`), and `trackingSeq`,
//! bumped on every transition out of running. So gopeek reads the g's and
//! unwinds the stacks of parked goroutines *while the process runs*
//! ([`pre_read`]), and then, with the target held, reads only the g's again
//! ([`read_held`]), in a few large copies (see [`super::gtable`]). A g whose
//! state is unchanged keeps the stack read earlier: it is exactly the stack
//! at the held instant. Everything else (running goroutines, syscalls, g's
//! that changed or appeared) is read while held, as before. The snapshot is
//! as consistent as one copied entirely while held, and the pause is the
//! time to copy the g's, not their stacks.
//!
//! `--nonblocking` ([`validate_running`]) uses the same pieces without
//! holding the process: only the threads running Go code are stopped, for
//! their registers and stacks; every other goroutine is re-read until two
//! reads around its stack agree, or reported as changing.

use super::gstruct::{GFingerprint, GRecord, G_RUNNING, G_SYSCALL};
use super::gtable::GTable;
use super::labels;
use super::unwind::{
    unwind, unwind_into, SharedStack, StackInterner, UnwindCache, UnwindStart, Unwound,
};
use super::{ThreadRegs, WalkConfig, WalkError, MAX_GOROUTINES, MAX_STACK};
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::{BatchRead, SliceMemory};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// pprof labels of one goroutine, shared by every goroutine that carries
/// the same label set (they share the runtime's map too).
pub type Labels = Arc<BTreeMap<String, String>>;

/// Stacks copied per batch: bounds the memory held for stack bytes.
const STACK_BATCH_BYTES: usize = 16 << 20;
/// Rounds of re-reading a goroutine that keeps changing (`--nonblocking`).
const MAX_RETRIES: usize = 8;
/// Goroutines (and stack bytes) confirmed together in `--nonblocking`:
/// small, so that little time passes between a stack read and the re-read
/// of its g.
const CONFIRM_BATCH: usize = 256;
const CONFIRM_BATCH_BYTES: usize = 1 << 20;

/// The M fields the walker uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct MRecord {
    pub procid: u64,
    pub vdso_sp: u64,
    pub vdso_pc: u64,
    pub id: i64,
}

/// Everything the dump needs about one live goroutine, its stack already
/// unwound to physical frames; symbolizing comes later.
#[derive(Debug, Clone)]
pub struct GoroutineCopy {
    pub rec: GRecord,
    /// `(m.id, m address)` of the M running it.
    pub m: Option<(i64, u64)>,
    /// Thread (TID) of a running or syscall goroutine.
    pub thread: Option<i32>,
    /// The unwound stack (shared with every goroutine parked in the same
    /// code), or why there is none.
    pub stack: Result<SharedStack, String>,
    pub labels: Option<Labels>,
}

/// How a snapshot was read, for `GOPEEK_DEBUG_TIMING` and the bench.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    /// Goroutines whose stack read while the target ran was confirmed.
    pub reused: usize,
    /// Goroutines read (again) while held or stopped.
    pub reread: usize,
    /// Re-read rounds in `--nonblocking` mode.
    pub retry_rounds: usize,
    /// Goroutines given up on as changing (`--nonblocking`).
    pub changing: usize,
    /// Times a goroutine was seen to change between two reads and was
    /// read again (`--nonblocking`).
    pub changed: usize,
    /// Bytes and ranges copied while the target was held.
    pub held_bytes: usize,
    pub held_ranges: usize,
}

/// The result of a snapshot's reads.
#[derive(Debug, Default)]
pub struct Capture {
    /// Live goroutines, in `allgs` order.
    pub goroutines: Vec<GoroutineCopy>,
    /// CLOCK_MONOTONIC at the held instant, in ns (Go's `nanotime`).
    pub nanotime: i64,
    pub warnings: Vec<String>,
    pub stats: CaptureStats,
}

/// What was read while the process ran.
pub struct PreRead {
    gs: Vec<u64>,
    /// Fingerprints of the g's whose stacks were read (off CPU or in a
    /// syscall), to confirm later that they did not change.
    fps: Vec<Option<GFingerprint>>,
    /// `(index, m)` of the goroutines that were running.
    running: Vec<(usize, u64)>,
    stacks: Vec<Option<SharedStack>>,
    interner: StackInterner,
    ms: HashMap<u64, MRecord>,
    labels: HashMap<u64, Option<Labels>>,
    window: usize,
    buffer: Vec<u8>,
    cache: UnwindCache,
    warnings: Vec<String>,
}

/// What was read while the target was held.
pub struct HeldRead {
    /// Every g as read while held (`allgs` and its table), decoded only
    /// after the target is released.
    table: Option<(Vec<u64>, GTable)>,
    /// With `only`: the records of those g's, by index.
    recs: HashMap<usize, GRecord>,
    /// Indices (into `gs`) whose stacks were read while held, with where
    /// the bytes sit in `stack_buf` and the start context.
    jobs: Vec<(usize, StackJob, std::ops::Range<usize>)>,
    stack_buf: Vec<u8>,
    threads: Vec<ThreadRegs>,
    nanotime: i64,
    /// Only these g's were re-read (`--nonblocking`); `None`: all of them.
    only: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Copy)]
struct StackJob {
    start: UnwindStart,
    lo: u64,
    hi: u64,
}

pub(super) fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// `runtime.allgs`: the address of every g ever created (dead ones too).
fn read_allgs<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
) -> Result<Vec<u64>, WalkError> {
    let allgs = cfg
        .prog
        .globals
        .allgs
        .as_ref()
        .ok_or(WalkError::NoAllgs)?
        .addr
        .wrapping_add(cfg.bias);
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
    let mut array = vec![0u8; len as usize * 8];
    let mut req = [(ptr, array.as_mut_slice())];
    if let Some(Err(source)) = src.read_batch(&mut req).pop() {
        return Err(WalkError::Allgs { addr: ptr, source });
    }
    Ok(array
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .filter(|&g| g != 0)
        .collect())
}

fn decode_table(table: &GTable, gs: &[u64], off: &RuntimeOffsets) -> Vec<Option<GRecord>> {
    gs.iter()
        .enumerate()
        .map(|(i, &g)| table.get(i).map(|b| GRecord::decode(g, b, &off.g)))
        .collect()
}

/// Reads the M fields of each address in `ms`.
fn read_ms<R: BatchRead + Sync + ?Sized>(
    src: &R,
    off: &RuntimeOffsets,
    ms: impl IntoIterator<Item = u64>,
) -> HashMap<u64, MRecord> {
    let mo = &off.m;
    let window = [mo.procid, mo.vdso_sp, mo.vdso_pc, mo.id]
        .iter()
        .max()
        .map_or(8, |m| m + 8) as usize;
    let mut addrs: Vec<u64> = ms.into_iter().filter(|&m| m != 0).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let mut buf = vec![0u8; window * addrs.len()];
    let results = {
        let mut reqs: Vec<(u64, &mut [u8])> = addrs
            .iter()
            .copied()
            .zip(buf.chunks_exact_mut(window))
            .collect();
        src.read_batch(&mut reqs)
    };
    let word = |b: &[u8], o: u64| {
        b.get(o as usize..o as usize + 8)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or_default()))
    };
    addrs
        .iter()
        .zip(buf.chunks_exact(window))
        .zip(results)
        .filter(|(_, r)| r.is_ok())
        .map(|((&m, b), _)| {
            (
                m,
                MRecord {
                    procid: word(b, mo.procid),
                    vdso_sp: word(b, mo.vdso_sp),
                    vdso_pc: word(b, mo.vdso_pc),
                    id: word(b, mo.id) as i64,
                },
            )
        })
        .collect()
}

/// The start context Go itself would use (traceback1/initAt), improved
/// for running goroutines with the thread's registers.
pub(super) fn start_context(
    g: &GRecord,
    m: Option<&MRecord>,
    threads: &[ThreadRegs],
) -> Result<(UnwindStart, Option<i32>), String> {
    let tid = m.map(|m| m.procid as i32).filter(|&t| t > 0);
    let in_stack = |sp: u64| sp >= g.stack_lo && sp < g.stack_hi;
    let start = |pc, sp, trap, syscall| UnwindStart {
        pc,
        sp,
        trap,
        syscall,
    };
    if let Some(m) = m {
        if m.vdso_sp != 0 && in_stack(m.vdso_sp) {
            return Ok((start(m.vdso_pc, m.vdso_sp, false, false), tid));
        }
    }
    if g.syscallsp != 0 {
        return Ok((start(g.syscallpc, g.syscallsp, false, true), tid));
    }
    if g.base_status() == G_RUNNING {
        if let Some(t) = tid.and_then(|tid| threads.iter().find(|t| t.tid == tid)) {
            if in_stack(t.sp) {
                return Ok((start(t.pc, t.sp, true, false), tid));
            }
        }
        if g.sched_sp != 0 {
            // On the system stack (systemstack/morestack): the user part
            // was saved in g.sched.
            return Ok((start(g.sched_pc, g.sched_sp, false, false), tid));
        }
        return Err(match tid {
            Some(t) => format!("running on thread {t}, which was not on this goroutine's stack"),
            None => "running on another thread; stack unavailable".to_string(),
        });
    }
    Ok((start(g.sched_pc, g.sched_sp, false, false), None))
}

fn stack_job(
    g: &GRecord,
    ms: &HashMap<u64, MRecord>,
    threads: &[ThreadRegs],
) -> Result<StackJob, String> {
    let (start, _) = start_context(g, ms.get(&g.m), threads)?;
    Ok(StackJob {
        start,
        lo: g.stack_lo,
        hi: g.stack_hi,
    })
}

/// The live part of a stack to copy, `[sp, hi)`; empty when the SP is
/// outside the stack (the unwinder then reports it).
fn live_range(job: &StackJob) -> (u64, usize) {
    let sp = job.start.sp;
    if sp >= job.lo && sp < job.hi && job.hi - sp <= MAX_STACK {
        (sp, (job.hi - sp) as usize)
    } else {
        (sp, 0)
    }
}

/// Copies the live stacks of `jobs` in batches and unwinds each as soon as
/// its batch is in (the bytes are dropped right after).
fn read_and_unwind<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    cache: &mut UnwindCache,
    jobs: &[(usize, StackJob)],
    mut sink: impl FnMut(usize, &Unwound),
) {
    let mut uw = Unwound::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut read_time = std::time::Duration::ZERO;
    while i < jobs.len() {
        let mut j = i;
        let mut total = 0usize;
        while j < jobs.len() {
            let len = live_range(&jobs[j].1).1;
            if j > i && total + len > STACK_BATCH_BYTES {
                break;
            }
            total += len;
            j += 1;
        }
        buf.resize(total, 0);
        let tr = std::time::Instant::now();
        let results = {
            let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(j - i);
            let mut rest = buf.as_mut_slice();
            for (_, job) in &jobs[i..j] {
                let (addr, len) = live_range(job);
                let (head, tail) = rest.split_at_mut(len);
                reqs.push((addr, head));
                rest = tail;
            }
            super::gtable::read_batch_parallel(src, &mut reqs)
        };
        read_time += tr.elapsed();
        let mut off = 0usize;
        for ((idx, job), ok) in jobs[i..j].iter().zip(results) {
            let (addr, len) = live_range(job);
            let data = if ok.is_ok() {
                &buf[off..off + len]
            } else {
                &[][..]
            };
            off += len;
            let mem = SliceMemory { base: addr, data };
            unwind_into(
                &cfg.prog.pclntab,
                cache,
                cfg.bias,
                &mem,
                job.start,
                job.lo,
                job.hi,
                &mut uw,
            );
            sink(*idx, &uw);
        }
        i = j;
    }
    if std::env::var_os("GOPEEK_DEBUG_TIMING").is_some() {
        eprintln!("gopeek: timing: stack reads {} us", read_time.as_micros());
    }
}

/// Copies the live stacks of `jobs` into `buf`; where each one sits, or
/// `None` if it could not be read.
fn read_stacks<R: BatchRead + Sync + ?Sized>(
    src: &R,
    jobs: &[(usize, StackJob)],
    buf: &mut Vec<u8>,
) -> Vec<Option<std::ops::Range<usize>>> {
    let total: usize = jobs.iter().map(|(_, j)| live_range(j).1).sum();
    buf.resize(total, 0);
    let results = {
        let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(jobs.len());
        let mut rest = buf.as_mut_slice();
        for (_, job) in jobs {
            let (addr, len) = live_range(job);
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            reqs.push((addr, head));
            rest = tail;
        }
        src.read_batch(&mut reqs)
    };
    let mut off = 0usize;
    jobs.iter()
        .zip(results)
        .map(|((_, job), ok)| {
            let len = live_range(job).1;
            let r = off..off + len;
            off += len;
            ok.is_ok().then_some(r)
        })
        .collect()
}

/// The labels at `ptr`, read once per distinct label set.
fn labels_for<R: BatchRead + Sync + ?Sized>(
    src: &R,
    minor: u32,
    cache: &mut HashMap<u64, Option<Labels>>,
    ptr: u64,
) -> Option<Labels> {
    if ptr == 0 {
        return None;
    }
    cache
        .entry(ptr)
        .or_insert_with(|| labels::read_labels(&src, ptr, minor).map(Arc::new))
        .clone()
}

/// Reads every g and unwinds every goroutine that is off CPU or in a
/// syscall, with the process running (nothing is held). With `held`, the
/// target is already stopped and every live goroutine is read, running
/// ones included (a core file, a test's fake memory, or the fallback).
pub fn pre_read<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    threads: &[ThreadRegs],
    held: bool,
) -> Result<PreRead, WalkError> {
    pre_read_records(cfg, src, threads, held, true).map(|(pre, _)| pre)
}

/// Only the g's, no stacks, with the process running: where
/// `--nonblocking` starts (it reads each stack later, right between two
/// reads of its g).
pub fn pre_read_gs<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
) -> Result<PreRead, WalkError> {
    pre_read_records(cfg, src, &[], false, false).map(|(pre, _)| pre)
}

/// [`pre_read`], also returning every decoded g.
fn pre_read_records<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    threads: &[ThreadRegs],
    held: bool,
    with_stacks: bool,
) -> Result<(PreRead, Vec<Option<GRecord>>), WalkError> {
    let off = cfg.off;
    let t0 = std::time::Instant::now();
    let gs = read_allgs(cfg, src)?;
    let window = GRecord::bytes_needed(&off.g) as usize;
    let table = GTable::read(src, &gs, window, Vec::new());
    let t1 = std::time::Instant::now();
    let recs = decode_table(&table, &gs, off);
    let t2 = std::time::Instant::now();
    let mut warnings = Vec::new();
    let unread = recs.iter().filter(|r| r.is_none()).count();
    if unread > 0 {
        warnings.push(format!(
            "{unread} of {} g structs could not be read",
            gs.len()
        ));
    }
    let read: Vec<&GRecord> = recs.iter().flatten().collect();
    if !read.is_empty() && !read.iter().any(|g| g.looks_valid()) {
        return Err(WalkError::Implausible("no entry has g.sched.g == g".into()));
    }
    let wanted = |g: &GRecord| {
        with_stacks
            && !g.is_dead()
            && g.looks_valid()
            && (held || g.is_off_cpu() || g.base_status() == G_SYSCALL)
    };
    let ms = read_ms(src, off, read.iter().filter(|g| wanted(g)).map(|g| g.m));
    let mut jobs = Vec::new();
    let mut stacks: Vec<Option<SharedStack>> = vec![None; gs.len()];
    let mut interner = StackInterner::new();
    let mut failed = Vec::new();
    for (i, g) in recs.iter().enumerate() {
        let Some(g) = g.as_ref().filter(|g| wanted(g)) else {
            continue;
        };
        match stack_job(g, &ms, threads) {
            Ok(job) => jobs.push((i, job)),
            Err(e) => failed.push((i, e)),
        }
    }
    let mut cache = UnwindCache::new();
    let t3 = std::time::Instant::now();
    read_and_unwind(cfg, src, &mut cache, &jobs, |i, uw| {
        stacks[i] = Some(interner.intern_ref(uw))
    });
    let t4 = std::time::Instant::now();
    if std::env::var_os("GOPEEK_DEBUG_TIMING").is_some() {
        eprintln!(
            "gopeek: timing: running: g table {} us, decode {} us, jobs {} us, stacks+unwind {} us ({} stacks, {} shapes)",
            (t1 - t0).as_micros(),
            (t2 - t1).as_micros(),
            (t3 - t2).as_micros(),
            (t4 - t3).as_micros(),
            jobs.len(),
            interner.len()
        );
    }
    for (i, e) in failed {
        stacks[i] = Some(interner.intern(Unwound {
            frames: Vec::new(),
            error: Some(e),
        }));
    }
    let minor = cfg.prog.version.minor;
    let mut labels = HashMap::new();
    for g in recs.iter().flatten().filter(|g| !g.is_dead()) {
        labels_for(src, minor, &mut labels, g.labels);
    }
    let fps = recs
        .iter()
        .zip(&stacks)
        .map(|(g, st)| match (g, st) {
            (Some(g), Some(_)) => Some(GFingerprint::of(g)),
            _ => None,
        })
        .collect();
    let running = recs
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            let g = g.as_ref()?;
            (g.base_status() == G_RUNNING).then_some((i, g.m))
        })
        .collect();
    let pre = PreRead {
        gs,
        fps,
        running,
        stacks,
        interner,
        ms,
        labels,
        window,
        buffer: table.into_buffer(),
        cache,
        warnings,
    };
    Ok((pre, recs))
}

impl PreRead {
    /// Unwinds one stack copied from `job.start.sp` (`data`, empty if the
    /// copy failed) and shares its shape with the snapshot's other stacks.
    fn unwind_copy(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        job: &StackJob,
        data: &[u8],
    ) -> SharedStack {
        let mem = SliceMemory {
            base: job.start.sp,
            data,
        };
        let uw = unwind(
            &cfg.prog.pclntab,
            &mut self.cache,
            cfg.bias,
            &mem,
            job.start,
            job.lo,
            job.hi,
        );
        self.interner.intern(uw)
    }

    /// The threads (TIDs) running Go code when the g's were read: the ones
    /// `--nonblocking` stops.
    pub fn running_threads<R: BatchRead + Sync + ?Sized>(
        &self,
        cfg: &WalkConfig<'_, '_>,
        src: &R,
    ) -> Vec<i32> {
        let running = self.running.iter().map(|&(_, m)| m);
        let ms = read_ms(src, cfg.off, running);
        let mut tids: Vec<i32> = ms
            .values()
            .map(|m| m.procid as i32)
            .filter(|&t| t > 0)
            .collect();
        tids.sort_unstable();
        tids.dedup();
        tids
    }
}

/// With the target held: reads the g's again (all of them, or with
/// `only`, those indices of `pre`), and the stacks of every goroutine whose
/// earlier copy cannot be confirmed. `keep_going` is asked between steps;
/// once it says no (the pause budget ran out), the read is abandoned.
pub fn read_held<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    pre: &mut PreRead,
    threads: Vec<ThreadRegs>,
    only: Option<Vec<usize>>,
    keep_going: &dyn Fn() -> bool,
) -> Result<HeldRead, WalkError> {
    let nanotime = monotonic_ns();
    let off = cfg.off;
    let mut table = None;
    let mut recs: HashMap<usize, GRecord> = HashMap::new();
    // Indices of the g's whose stacks must be read now, with their records.
    let mut need: Vec<(usize, GRecord)> = Vec::new();
    match &only {
        None => {
            let t0 = std::time::Instant::now();
            let gs = read_allgs(cfg, src)?;
            let t1 = std::time::Instant::now();
            let buffer = std::mem::take(&mut pre.buffer);
            // Compared on the reading thread as each batch arrives; only
            // what changed is decoded (decoding all of them would fault in
            // a fresh array while the target waits).
            let (fps, pre_gs, g_off) = (&pre.fps, &pre.gs, &off.g);
            let changed = |i: usize, b: &[u8]| {
                let same =
                    pre_gs.get(i) == gs.get(i)
                        && fps.get(i).copied().flatten().is_some_and(|f| {
                            f.is_off_cpu() && f == GFingerprint::from_bytes(b, g_off)
                        });
                !same
            };
            let (t, mut flagged) = GTable::read_visit(src, &gs, pre.window, buffer, &changed);
            let t2 = std::time::Instant::now();
            flagged.sort_unstable();
            for i in flagged {
                let Some(b) = t.get(i) else { continue };
                let g = GRecord::decode(gs[i], b, &off.g);
                if !g.is_dead() && g.looks_valid() {
                    need.push((i, g));
                }
            }
            if std::env::var_os("GOPEEK_DEBUG_TIMING").is_some() {
                eprintln!(
                    "gopeek: timing: held: allgs {} us, g table {} us ({} ranges, {} bytes), compare {} us",
                    (t1 - t0).as_micros(),
                    (t2 - t1).as_micros(),
                    t.ranges,
                    t.bytes,
                    t2.elapsed().as_micros()
                );
            }
            table = Some((gs, t));
        }
        Some(idx) => {
            let picked: Vec<u64> = idx.iter().map(|&i| pre.gs[i]).collect();
            let t = GTable::read(src, &picked, pre.window, Vec::new());
            for (k, &i) in idx.iter().enumerate() {
                let Some(b) = t.get(k) else { continue };
                let g = GRecord::decode(pre.gs[i], b, &off.g);
                if !g.is_dead() && g.looks_valid() {
                    need.push((i, g.clone()));
                }
                recs.insert(i, g);
            }
        }
    }
    if !keep_going() {
        return Err(WalkError::Abandoned);
    }
    let ms = read_ms(src, off, need.iter().map(|(_, g)| g.m));
    pre.ms.extend(ms.iter().map(|(k, v)| (*k, *v)));
    let mut jobs = Vec::new();
    let mut total = 0usize;
    for (i, g) in &need {
        if let Ok(job) = stack_job(g, &pre.ms, &threads) {
            let (_, len) = live_range(&job);
            jobs.push((*i, job, total..total + len));
            total += len;
        }
    }
    let mut stack_buf = vec![0u8; total];
    let results = {
        let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(jobs.len());
        let mut rest = stack_buf.as_mut_slice();
        for (_, job, r) in &jobs {
            let (head, tail) = rest.split_at_mut(r.len());
            reqs.push((job.start.sp, head));
            rest = tail;
        }
        src.read_batch(&mut reqs)
    };
    for ((_, _, r), ok) in jobs.iter_mut().zip(results) {
        if ok.is_err() {
            *r = r.start..r.start;
        }
    }
    if !keep_going() {
        return Err(WalkError::Abandoned);
    }
    // Labels set or changed since the first read (rare): read them now.
    let minor = cfg.prog.version.minor;
    for (_, g) in &need {
        labels_for(src, minor, &mut pre.labels, g.labels);
    }
    if !keep_going() {
        return Err(WalkError::Abandoned);
    }
    Ok(HeldRead {
        table,
        recs,
        jobs,
        stack_buf,
        threads,
        nanotime,
        only,
    })
}

fn copy_of(
    g: GRecord,
    ms: &HashMap<u64, MRecord>,
    threads: &[ThreadRegs],
    stack: Result<SharedStack, String>,
    labels: &HashMap<u64, Option<Labels>>,
) -> GoroutineCopy {
    let m = ms.get(&g.m);
    let tid = start_context(&g, m, threads).ok().and_then(|(_, t)| t);
    GoroutineCopy {
        m: m.filter(|_| g.m != 0).map(|m| (m.id, g.m)),
        thread: if g.base_status() == G_RUNNING || g.syscallsp != 0 {
            tid
        } else {
            None
        },
        labels: labels.get(&g.labels).cloned().flatten(),
        stack,
        rec: g,
    }
}

fn inconsistent(g: &GRecord) -> String {
    format!(
        "g at {:#x} is inconsistent (sched.g {:#x}, stack [{:#x}, {:#x}))",
        g.addr, g.sched_g, g.stack_lo, g.stack_hi
    )
}

/// Unwinds the stacks copied while held (after the target runs again),
/// by index in `allgs`, with the stats of the held copy.
fn unwind_held(
    cfg: &WalkConfig<'_, '_>,
    pre: &mut PreRead,
    held: &HeldRead,
) -> (CaptureStats, HashMap<usize, SharedStack>) {
    let stats = CaptureStats {
        held_bytes: held.stack_buf.len(),
        held_ranges: held.jobs.len(),
        ..CaptureStats::default()
    };
    let mut fresh = HashMap::with_capacity(held.jobs.len());
    for (i, job, r) in &held.jobs {
        let data = held.stack_buf.get(r.clone()).unwrap_or(&[]);
        fresh.insert(*i, pre.unwind_copy(cfg, job, data));
    }
    (stats, fresh)
}

/// After the target runs again: unwinds what was read while held and
/// joins it with the confirmed stacks read earlier (default mode).
pub fn finish(cfg: &WalkConfig<'_, '_>, mut pre: PreRead, held: HeldRead) -> Capture {
    let (mut stats, mut fresh) = unwind_held(cfg, &mut pre, &held);
    let recs = match &held.table {
        Some((gs, table)) => decode_table(table, gs, cfg.off),
        None => Vec::new(),
    };
    let mut goroutines = Vec::new();
    for (i, g) in recs.into_iter().enumerate() {
        let Some(g) = g else { continue };
        if g.is_dead() {
            continue;
        }
        let stack = if !g.looks_valid() {
            Err(inconsistent(&g))
        } else if let Some(uw) = fresh.remove(&i) {
            stats.reread += 1;
            Ok(uw)
        } else if let Some(Some(uw)) = pre.stacks.get_mut(i).map(Option::take) {
            stats.reused += 1;
            Ok(uw)
        } else {
            match start_context(&g, pre.ms.get(&g.m), &held.threads) {
                Err(e) => Err(e),
                Ok(_) => Err("stack could not be read".to_string()),
            }
        };
        goroutines.push(copy_of(g, &pre.ms, &held.threads, stack, &pre.labels));
    }
    Capture {
        goroutines,
        nanotime: held.nanotime,
        warnings: pre.warnings,
        stats,
    }
}

/// Everything from memory that is already consistent (a held target, a
/// core file, a test's fake memory): one pass, no confirmation needed.
pub fn capture_once<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    threads: Vec<ThreadRegs>,
) -> Result<Capture, WalkError> {
    let nanotime = monotonic_ns();
    let (mut pre, recs) = pre_read_records(cfg, src, &threads, true, true)?;
    let mut goroutines = Vec::new();
    let mut stats = CaptureStats::default();
    for (i, g) in recs.into_iter().enumerate() {
        let Some(g) = g else { continue };
        if g.is_dead() {
            continue;
        }
        let stack = if !g.looks_valid() {
            Err(inconsistent(&g))
        } else {
            match pre.stacks[i].take() {
                Some(uw) => Ok(uw),
                None => Err("stack not read".to_string()),
            }
        };
        stats.reread += 1;
        goroutines.push(copy_of(g, &pre.ms, &threads, stack, &pre.labels));
    }
    Ok(Capture {
        goroutines,
        nanotime,
        warnings: pre.warnings,
        stats,
    })
}

/// Goroutines settled by `--nonblocking`, by index in `allgs`: a vector
/// rather than a map, since there may be a million of them.
#[derive(Default)]
struct Done(Vec<Option<(GRecord, Result<SharedStack, String>)>>);

impl Done {
    fn insert(&mut self, i: usize, v: (GRecord, Result<SharedStack, String>)) {
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i] = Some(v);
    }

    fn contains_key(&self, i: &usize) -> bool {
        self.0.get(*i).is_some_and(Option::is_some)
    }
}

/// `--nonblocking`: the running goroutines were read while their threads
/// were stopped (`held`, with `only` set); every other goroutine is
/// confirmed by reading its g again, with the process running, and
/// re-read (stack between two g reads) until two reads agree, at most
/// [`MAX_RETRIES`] rounds; one that keeps changing is reported as such,
/// never shown with a torn stack.
pub fn validate_running<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    mut pre: PreRead,
    held: HeldRead,
) -> Result<Capture, WalkError> {
    let off = cfg.off;
    let (mut stats, mut fresh) = unwind_held(cfg, &mut pre, &held);
    // Goroutines read while their thread was stopped.
    let mut final_ = Done::default();
    let stopped: Vec<usize> = held.only.clone().unwrap_or_default();
    for &i in &stopped {
        let Some(g) = held.recs.get(&i).cloned() else {
            continue;
        };
        // Still running when its thread was stopped: that copy is exact.
        if g.base_status() == G_RUNNING {
            if let Some(uw) = fresh.remove(&i) {
                final_.insert(i, (g, Ok(uw)));
            }
        }
    }
    // Confirm everything else against a fresh read of every g.
    let gs = read_allgs(cfg, src)?;
    let buffer = std::mem::take(&mut pre.buffer);
    let table = GTable::read(src, &gs, pre.window, buffer);
    let mut latest = decode_table(&table, &gs, off);
    drop(table);
    let confirmable = |g: &GRecord| g.is_off_cpu() || g.base_status() == G_SYSCALL;
    let mut pending: Vec<usize> = Vec::new();
    for (i, g) in latest.iter().enumerate() {
        let Some(g) = g else { continue };
        if g.is_dead() || final_.contains_key(&i) {
            continue;
        }
        let ok_status = g.is_off_cpu() || g.base_status() == G_SYSCALL;
        let confirmed = ok_status
            && pre.gs.get(i) == Some(&g.addr)
            && pre.stacks.get(i).is_some_and(|s| s.is_some())
            && pre.fps.get(i).copied().flatten() == Some(GFingerprint::of(g));
        if !g.looks_valid() {
            final_.insert(i, (g.clone(), Err(inconsistent(g))));
        } else if confirmed {
            let uw = pre.stacks[i].take().unwrap_or_default();
            stats.reused += 1;
            final_.insert(i, (g.clone(), Ok(uw)));
        } else {
            pending.push(i);
        }
    }
    let minor = cfg.prog.version.minor;
    let mut stack_buf = Vec::new();
    for round in 0..MAX_RETRIES {
        if pending.is_empty() {
            break;
        }
        stats.retry_rounds += 1;
        if round > 0 {
            // Refresh the g's that were running or unreadable last round.
            let stale: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&i| latest[i].as_ref().is_none_or(|g| !confirmable(g)))
                .collect();
            let picked: Vec<u64> = stale.iter().map(|&i| gs[i]).collect();
            let table = GTable::read(src, &picked, pre.window, Vec::new());
            for (k, &i) in stale.iter().enumerate() {
                if let Some(b) = table.get(k) {
                    latest[i] = Some(GRecord::decode(gs[i], b, &off.g));
                }
            }
        }
        let ms = read_ms(
            src,
            off,
            pending
                .iter()
                .filter_map(|&i| latest[i].as_ref().map(|g| g.m)),
        );
        pre.ms.extend(ms);
        let mut still = Vec::new();
        let mut k = 0;
        while k < pending.len() {
            // A small batch: its stacks, then its g's again right away, so
            // that the window in which a goroutine may wake is short.
            let mut batch: Vec<(usize, StackJob)> = Vec::new();
            let mut bytes = 0usize;
            while k < pending.len() && batch.len() < CONFIRM_BATCH && bytes < CONFIRM_BATCH_BYTES {
                let i = pending[k];
                k += 1;
                let Some(g) = latest[i].as_ref() else {
                    still.push(i);
                    continue;
                };
                if g.is_dead() {
                    continue; // exited meanwhile
                }
                if !confirmable(g) {
                    still.push(i); // running now: next round
                    continue;
                }
                match stack_job(g, &pre.ms, &[]) {
                    Ok(job) => {
                        bytes += live_range(&job).1;
                        batch.push((i, job));
                    }
                    Err(e) => {
                        final_.insert(i, (g.clone(), Err(e)));
                    }
                }
            }
            let ranges = read_stacks(src, &batch, &mut stack_buf);
            let picked: Vec<u64> = batch.iter().map(|&(i, _)| gs[i]).collect();
            let table = GTable::read(src, &picked, pre.window, Vec::new());
            for (b, ((i, job), range)) in batch.iter().zip(ranges).enumerate() {
                let now = table
                    .get(b)
                    .map(|bytes| GRecord::decode(gs[*i], bytes, &off.g));
                let same = match (&latest[*i], &now) {
                    (Some(before), Some(n)) => before.same_state(n),
                    _ => false,
                };
                match now {
                    Some(n) if same => {
                        let data = range.and_then(|r| stack_buf.get(r)).unwrap_or(&[]);
                        let stack = pre.unwind_copy(cfg, job, data);
                        stats.reread += 1;
                        final_.insert(*i, (n, Ok(stack)));
                    }
                    Some(n) if n.is_dead() => {}
                    Some(n) => {
                        stats.changed += 1;
                        latest[*i] = Some(n);
                        still.push(*i);
                    }
                    None => still.push(*i),
                }
            }
        }
        pending = still;
    }
    for i in pending {
        let Some(g) = latest[i].take() else { continue };
        stats.changing += 1;
        let what = if g.base_status() == G_RUNNING {
            "running on a thread that was not stopped"
        } else {
            "changing"
        };
        final_.insert(
            i,
            (
                g,
                Err(format!(
                    "{what} while read with --nonblocking ({MAX_RETRIES} attempts); \
                     run again, or without --nonblocking for a consistent snapshot"
                )),
            ),
        );
    }
    let mut goroutines = Vec::with_capacity(final_.0.len());
    for (g, stack) in final_.0.into_iter().flatten() {
        labels_for(src, minor, &mut pre.labels, g.labels);
        goroutines.push(copy_of(g, &pre.ms, &held.threads, stack, &pre.labels));
    }
    Ok(Capture {
        goroutines,
        nanotime: held.nanotime,
        warnings: pre.warnings,
        stats,
    })
}

impl PreRead {
    /// Indices of the goroutines that were running (for `read_held`'s
    /// `only`, in `--nonblocking` mode).
    pub fn running_indices(&self) -> Vec<usize> {
        self.running.iter().map(|&(i, _)| i).collect()
    }

    /// Number of g's listed in `allgs` when read.
    pub fn len(&self) -> usize {
        self.gs.len()
    }

    /// `true` when `allgs` was empty.
    pub fn is_empty(&self) -> bool {
        self.gs.is_empty()
    }
}
