//! The small reads and decisions every strategy shares: the `allgs` list,
//! the M's of some goroutines, label sets, where a stack walk starts, and
//! how a goroutine ends up in the [`Capture`](super::Capture).

use super::{GoroutineCopy, Labels};
use crate::layout::offsets::RuntimeOffsets;
use crate::memory::BatchRead;
use crate::walk::gscan::ScanPlan;
use crate::walk::gstruct::{GRecord, G_RUNNING};
use crate::walk::labels;
use crate::walk::unwind::{SharedStack, UnwindStart};
use crate::walk::{ThreadRegs, WalkConfig, WalkError, MAX_GOROUTINES};
use std::collections::HashMap;
use std::sync::Arc;

/// The M fields the walker uses.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MRecord {
    pub(super) procid: u64,
    pub(super) vdso_sp: u64,
    pub(super) vdso_pc: u64,
    pub(super) id: i64,
}

/// CLOCK_MONOTONIC in ns, Go's `nanotime`: the clock `g.waitsince` is
/// measured on, so that "N minutes" can be computed after release.
pub(super) fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the timespec we own, and
    // CLOCK_MONOTONIC is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// `runtime.allgs`: the address of every g ever created (dead ones too).
pub(crate) fn read_allgs<R: BatchRead + Sync + ?Sized>(
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

/// Every g of `gs` read through `plan` (made for `gs`) and decoded, by
/// index in `gs`; `None` where unreadable.
pub(super) fn decode_all<R: BatchRead + Sync + ?Sized>(
    plan: &mut ScanPlan,
    src: &R,
    gs: &[u64],
    off: &RuntimeOffsets,
) -> Vec<Option<GRecord>> {
    plan.collect(src, &|i, b: Option<&[u8]>| {
        b.map(|b| GRecord::decode(gs[i], b, &off.g))
    })
    .0
}

/// Items given back to the allocator at a time by [`drain_back`].
const SHRINK_EVERY: usize = 1 << 16;

/// The items of `v` with their indices, from the last to the first,
/// giving its memory back as it goes: a million-entry table is never held
/// whole beside what is built from it (a large vector's tail pages are
/// unmapped as it shrinks). The caller reverses what it builds.
pub(crate) fn drain_back<T>(mut v: Vec<T>) -> impl Iterator<Item = (usize, T)> {
    std::iter::from_fn(move || {
        let item = v.pop()?;
        if v.len() % SHRINK_EVERY == 0 {
            v.shrink_to_fit();
        }
        Some((v.len(), item))
    })
}

/// Reads the M fields of each address in `ms` (each distinct M once).
pub(super) fn read_ms<R: BatchRead + Sync + ?Sized>(
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

/// The labels at `ptr`, read once per distinct label set (goroutines that
/// share a set share the runtime's map too).
pub(super) fn labels_for<R: BatchRead + Sync + ?Sized>(
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

/// The start context Go itself would use (traceback1/initAt), improved
/// for running goroutines with the thread's registers; with the thread
/// the goroutine is on, if any.
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
        lr: 0,
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
                let lr = t.lr;
                return Ok((
                    UnwindStart {
                        lr,
                        ..start(t.pc, t.sp, true, false)
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
                    lr: g.sched_lr,
                    ..start(g.sched_pc, g.sched_sp, false, false)
                },
                tid,
            ));
        }
        return Err(match tid {
            Some(t) => format!("running on thread {t}, which was not on this goroutine's stack"),
            None => "running on another thread; stack unavailable".to_string(),
        });
    }
    // As Go's initAt: the saved context's LR too (arm64; always 0 on
    // amd64), the return address of a frameless innermost function.
    Ok((
        UnwindStart {
            lr: g.sched_lr,
            ..start(g.sched_pc, g.sched_sp, false, false)
        },
        None,
    ))
}

/// One goroutine as the capture reports it: its M, its thread when it is
/// on one, its labels (read earlier into `labels`) and `stack`.
pub(super) fn copy_of(
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
        rec: g.info(),
    }
}

/// Why a g that fails [`GRecord::looks_valid`] has no stack.
pub(super) fn inconsistent(g: &GRecord) -> String {
    format!(
        "g at {:#x} is inconsistent (sched.g {:#x}, stack [{:#x}, {:#x}))",
        g.addr, g.sched_g, g.stack_lo, g.stack_hi
    )
}
