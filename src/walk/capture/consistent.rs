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
use super::reads::{copy_of, drain_back, inconsistent, monotonic_ns, read_allgs, start_context};
use super::{Capture, Hold, Phase, Strategy};
use crate::memory::BatchRead;
use crate::walk::gscan::ScanPlan;
use crate::walk::gstruct::{word, GFingerprint, GRecord};
use crate::walk::{ThreadRegs, WalkConfig, WalkError};

/// State of a consistent snapshot between its phases.
#[derive(Default)]
pub(super) struct Consistent {
    pre: Option<PreRead>,
    held: Option<HeldRead>,
}

/// What was read while the target was held. Only what differs from the
/// first read is kept: a g that did not change is taken from
/// [`PreRead::recs`] after release.
struct HeldRead {
    /// `allgs` as read while held.
    gs: Vec<u64>,
    /// The g's that changed, appeared or could not be read (`None`), by
    /// index, sorted.
    changed: Vec<(usize, Option<GRecord>)>,
    /// Unchanged g's whose `waitsince` moved (the GC stamps it on parked
    /// goroutines it scans): the held value, by index.
    waitsince: Vec<(usize, i64)>,
    stacks: HeldStacks,
    nanotime: i64,
}

/// What one reading thread finds while held.
#[derive(Default)]
struct HeldPart {
    changed: Vec<(usize, Option<GRecord>)>,
    waitsince: Vec<(usize, i64)>,
}

impl<R: BatchRead + Sync + ?Sized> Strategy<R> for Consistent {
    fn before_hold(&mut self, cfg: &WalkConfig<'_, '_>, mem: &R) -> Result<Hold, WalkError> {
        self.pre = Some(pre_read(cfg, mem, Stacks::Parked)?);
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
        if !pre.plan.reads(&gs, pre.window) {
            pre.plan = ScanPlan::new(&gs, pre.window);
        }
        // Compared on the reading thread as each step arrives; only what
        // changed is decoded and kept (the whole table is never held).
        let (recs, stacks, pre_gs, g_off) = (&pre.recs, &pre.stacks, &pre.gs, &off.g);
        let visit = |part: &mut HeldPart, _: usize, i: usize, b: Option<&[u8]>| {
            let before = recs.get(i).and_then(Option::as_ref);
            let (Some(b), Some(before)) = (b, before) else {
                part.changed
                    .push((i, b.map(|b| GRecord::decode(gs[i], b, g_off))));
                return;
            };
            let confirmable = before.is_dead()
                || (before.is_off_cpu() && stacks.get(i).is_some_and(Option::is_some));
            let same = pre_gs.get(i) == gs.get(i)
                && confirmable
                && GFingerprint::of(before) == GFingerprint::from_bytes(b, g_off);
            if !same {
                part.changed
                    .push((i, Some(GRecord::decode(gs[i], b, g_off))));
            } else {
                let now = word(b, g_off.waitsince) as i64;
                if now != before.waitsince {
                    part.waitsince.push((i, now));
                }
            }
        };
        let parts = pre
            .plan
            .share_positions()
            .map(|_| HeldPart::default())
            .collect();
        let (parts, scan) = pre.plan.scan(mem, parts, &visit);
        let t2 = std::time::Instant::now();
        let (mut changed, mut waitsince) = (Vec::new(), Vec::new());
        for p in parts {
            changed.extend(p.changed);
            waitsince.extend(p.waitsince);
        }
        changed.sort_unstable_by_key(|c| c.0);
        // The g's whose stacks must be read now, with their records.
        let need: Vec<(usize, GRecord)> = changed
            .iter()
            .filter_map(|(i, g)| Some((*i, g.clone()?)))
            .filter(|(_, g)| !g.is_dead() && g.looks_valid())
            .collect();
        pre.phases.push(Phase::Held {
            allgs: t1 - t0,
            g_table: t2 - t1,
            ranges: scan.ranges,
            bytes: pre.plan.bytes,
            compare: t2.elapsed(),
        });
        let stacks = pre.copy_held_stacks(cfg, mem, &need, threads, keep_going)?;
        self.held = Some(HeldRead {
            gs,
            changed,
            waitsince,
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
        let threads = &held.stacks.threads;
        for &(i, w) in &held.waitsince {
            if let Some(Some(g)) = pre.recs.get_mut(i) {
                g.waitsince = w;
            }
        }
        // From the last g to the first, so that the first read's records
        // and stacks are freed as the goroutines are built from them.
        let n = held.gs.len();
        let mut recs = std::mem::take(&mut pre.recs);
        let mut pre_stacks = std::mem::take(&mut pre.stacks);
        recs.resize_with(n, || None);
        pre_stacks.resize_with(n, || None);
        let mut changed = held.changed.into_iter().rev().peekable();
        let mut goroutines = Vec::with_capacity(n);
        for ((i, rec), (_, pre_stack)) in drain_back(recs).zip(drain_back(pre_stacks)) {
            while changed.peek().is_some_and(|c| c.0 > i) {
                changed.next();
            }
            let g = if changed.peek().is_some_and(|c| c.0 == i) {
                changed.next().and_then(|c| c.1)
            } else {
                rec
            };
            let Some(g) = g else { continue };
            if g.is_dead() {
                continue;
            }
            let stack = if !g.looks_valid() {
                Err(inconsistent(&g))
            } else if let Some(uw) = fresh.remove(&i) {
                stats.reread += 1;
                Ok(uw)
            } else if let Some(uw) = pre_stack {
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
        goroutines.reverse();
        Ok(Capture {
            goroutines,
            nanotime: held.nanotime,
            warnings: pre.warnings,
            stats,
        })
    }
}
