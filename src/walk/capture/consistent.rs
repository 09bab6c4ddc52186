//! The default strategy: every goroutine as it was at one instant, with
//! the whole process held only while the g's are read again.
//!
//! Before the hold, every g is read and every goroutine off CPU or in a
//! syscall is unwound. While held, every g is read again in a few large
//! copies and compared with its fingerprint on the reading thread; only the
//! g's that changed or appeared are decoded, and only their stacks are
//! copied. After release, those are unwound and joined with the confirmed
//! stacks read earlier.

use super::pre_read::{pre_read, HeldStacks, PreRead, Stacks};
use super::reads::{copy_of, inconsistent, monotonic_ns, read_allgs, start_context};
use super::{Capture, Hold, Phase, Strategy};
use crate::memory::BatchRead;
use crate::walk::gstruct::{GFingerprint, GRecord};
use crate::walk::gtable::GTable;
use crate::walk::{ThreadRegs, WalkConfig, WalkError};

/// State of a consistent snapshot between its phases.
#[derive(Default)]
pub(super) struct Consistent {
    pre: Option<PreRead>,
    held: Option<HeldRead>,
}

/// What was read while the target was held.
struct HeldRead {
    /// Every g as read while held (`allgs` and its table), decoded only
    /// after the target is released.
    gs: Vec<u64>,
    table: GTable,
    stacks: HeldStacks,
    nanotime: i64,
}

impl<R: BatchRead + Sync + ?Sized> Strategy<R> for Consistent {
    fn before_hold(&mut self, cfg: &WalkConfig<'_, '_>, mem: &R) -> Result<Hold, WalkError> {
        let (pre, _) = pre_read(cfg, mem, Stacks::Parked)?;
        self.pre = Some(pre);
        Ok(Hold::All)
    }

    fn while_held(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        mem: &R,
        threads: Vec<ThreadRegs>,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<(), WalkError> {
        let nanotime = monotonic_ns();
        let pre = self.pre.get_or_insert_with(|| PreRead::nothing(cfg));
        let off = cfg.off;
        let t0 = std::time::Instant::now();
        let gs = read_allgs(cfg, mem)?;
        let t1 = std::time::Instant::now();
        let buffer = std::mem::take(&mut pre.buffer);
        // Compared on the reading thread as each batch arrives; only what
        // changed is decoded (decoding all of them would fault in a fresh
        // array while the target waits).
        let (fps, pre_gs, g_off) = (&pre.fps, &pre.gs, &off.g);
        let changed = |i: usize, b: &[u8]| {
            let same = pre_gs.get(i) == gs.get(i)
                && fps
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|f| f.is_off_cpu() && f == GFingerprint::from_bytes(b, g_off));
            !same
        };
        let (table, mut flagged) = GTable::read_visit(mem, &gs, pre.window, buffer, &changed);
        let t2 = std::time::Instant::now();
        flagged.sort_unstable();
        // The g's whose stacks must be read now, with their records.
        let mut need: Vec<(usize, GRecord)> = Vec::new();
        for i in flagged {
            let Some(b) = table.get(i) else { continue };
            let g = GRecord::decode(gs[i], b, &off.g);
            if !g.is_dead() && g.looks_valid() {
                need.push((i, g));
            }
        }
        pre.phases.push(Phase::Held {
            allgs: t1 - t0,
            g_table: t2 - t1,
            ranges: table.ranges,
            bytes: table.bytes,
            compare: t2.elapsed(),
        });
        let stacks = pre.copy_held_stacks(cfg, mem, &need, threads, keep_going)?;
        self.held = Some(HeldRead {
            gs,
            table,
            stacks,
            nanotime,
        });
        Ok(())
    }

    /// Unwinds what was read while held and joins it with the confirmed
    /// stacks read before the hold.
    fn after_release(
        self: Box<Self>,
        cfg: &WalkConfig<'_, '_>,
        _mem: &R,
    ) -> Result<Capture, WalkError> {
        let Consistent { pre, held } = *self;
        let held = held.ok_or(WalkError::Abandoned)?;
        let mut pre = pre.unwrap_or_else(|| PreRead::nothing(cfg));
        let (mut stats, mut fresh) = pre.unwind_held(cfg, &held.stacks);
        // Not needed any more: freed before the goroutines are built.
        pre.fps = Vec::new();
        let threads = &held.stacks.threads;
        let mut goroutines = Vec::with_capacity(held.gs.len());
        // Each g decoded as it is used (a decoded copy of the whole table
        // would be one more record per goroutine at the peak).
        for (i, &addr) in held.gs.iter().enumerate() {
            let Some(b) = held.table.get(i) else { continue };
            let g = GRecord::decode(addr, b, &cfg.off.g);
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
                match start_context(&g, pre.ms.get(&g.m), threads) {
                    Err(e) => Err(e),
                    Ok(_) => Err("stack could not be read".to_string()),
                }
            };
            goroutines.push(copy_of(g, &pre.ms, threads, stack, &pre.labels));
        }
        Ok(Capture {
            goroutines,
            nanotime: held.nanotime,
            warnings: pre.warnings,
            stats,
        })
    }
}
