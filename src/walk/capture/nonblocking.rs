//! `--nonblocking`: the process is never held as a whole.
//!
//! Before the hold, every g is read (no stacks). Only the threads running
//! Go code are stopped, for their registers and the stacks of the
//! goroutines on them. After release, every other goroutine is confirmed
//! with the process running ([`confirm_parked`]): its stack is read
//! between two reads of its g (the first is the one before the hold),
//! until two reads agree, at most
//! [`MAX_RETRIES`] rounds; one that keeps changing is reported as such,
//! never shown with a torn stack.

use super::batch::{copy_stacks, live_range, stack_job, StackJob};
use super::pre_read::{pre_read, HeldStacks, PreRead, Stacks};
use super::reads::{
    copy_of, drain_back, inconsistent, labels_for, monotonic_ns, read_allgs, read_ms,
};
use super::{Capture, Hold, Strategy};
use crate::memory::BatchRead;
use crate::walk::gscan::ScanPlan;
use crate::walk::gstruct::{GRecord, G_RUNNING, G_SYSCALL};
use crate::walk::gtable::{read_batch_parallel, GTable};
use crate::walk::unwind::SharedStack;
use crate::walk::{ThreadRegs, WalkConfig, WalkError};
use std::collections::HashMap;

/// Rounds of re-reading a goroutine that keeps changing.
pub(super) const MAX_RETRIES: usize = 8;
/// Goroutines (and stack bytes) confirmed together at first: small, so
/// that little time passes between a stack read and the re-read of its g.
const CONFIRM_BATCH: usize = 256;
const CONFIRM_BATCH_BYTES: usize = 1 << 20;
/// While batch after batch confirms with nothing changed (a process whose
/// goroutines stay parked), the batch doubles up to these: a million
/// parked goroutines then cost a few hundred batches, not thousands. Any
/// change seen sends it back to [`CONFIRM_BATCH`]. The size only decides
/// how often a goroutine has to be read again, never what is accepted:
/// every stack is still confirmed by two equal reads of its g.
const MAX_CONFIRM_BATCH: usize = 16 << 10;
const MAX_CONFIRM_BATCH_BYTES: usize = 16 << 20;

/// State of a `--nonblocking` snapshot between its phases.
#[derive(Default)]
pub(super) struct Nonblocking {
    pre: Option<PreRead>,
    /// Indices (in `allgs`) of the goroutines that were running before
    /// the hold: the ones read while their threads are stopped.
    running: Vec<usize>,
    held: Option<HeldRead>,
}

/// What was read while the running threads were stopped.
struct HeldRead {
    /// The records of the `running` g's, by index.
    recs: HashMap<usize, GRecord>,
    stacks: HeldStacks,
    nanotime: i64,
}

impl<R: BatchRead + Sync + ?Sized> Strategy<R> for Nonblocking {
    /// Reads every g and picks the threads to stop: those running Go code.
    fn before_hold(&mut self, cfg: &WalkConfig<'_, '_>, mem: &R) -> Result<Hold, WalkError> {
        let mut pre = pre_read(cfg, mem, Stacks::None)?;
        // No stack was read: the empty stack slots are not needed. The
        // records are: after release each g's first read is the one its
        // stack read is checked against.
        pre.stacks = Vec::new();
        pre.plan = ScanPlan::default();
        let tids = pre.running_threads(cfg, mem);
        self.running = pre.running_indices();
        self.pre = Some(pre);
        Ok(Hold::Threads(tids))
    }

    /// Reads the g's that were running, and the stacks of those still
    /// valid, while their threads are stopped.
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
        let mut recs: HashMap<usize, GRecord> = HashMap::new();
        let mut need: Vec<(usize, GRecord)> = Vec::new();
        let picked: Vec<u64> = self.running.iter().map(|&i| pre.gs[i]).collect();
        let table = GTable::read(mem, &picked, pre.window, Vec::new());
        for (k, &i) in self.running.iter().enumerate() {
            let Some(b) = table.get(k) else { continue };
            let g = GRecord::decode(pre.gs[i], b, &off.g);
            if !g.is_dead() && g.looks_valid() {
                need.push((i, g.clone()));
            }
            recs.insert(i, g);
        }
        let stacks = pre.copy_held_stacks(cfg, mem, &need, threads, keep_going)?;
        self.held = Some(HeldRead {
            recs,
            stacks,
            nanotime,
        });
        Ok(())
    }

    fn after_release(
        self: Box<Self>,
        cfg: &WalkConfig<'_, '_>,
        mem: &R,
    ) -> Result<Capture, WalkError> {
        let Nonblocking { pre, running, held } = *self;
        let held = held.ok_or(WalkError::Abandoned)?;
        let pre = pre.unwrap_or_else(|| PreRead::nothing(cfg));
        confirm_parked(cfg, mem, pre, &running, held)
    }
}

/// Goroutines settled, by index in `allgs`: their stacks (their records
/// are those of `latest`). A vector rather than a map, since there may be
/// a million of them.
#[derive(Default)]
struct Done(Vec<Option<Result<SharedStack, String>>>);

impl Done {
    fn insert(&mut self, i: usize, v: Result<SharedStack, String>) {
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i] = Some(v);
    }

    fn contains_key(&self, i: &usize) -> bool {
        self.0.get(*i).is_some_and(Option::is_some)
    }
}

/// With the process running again: keeps the running goroutines read
/// while their threads were stopped, and confirms every other goroutine
/// (parked, in a syscall, or running on a thread that was not stopped) by
/// reading its g again, re-reading its stack between two reads of its g
/// until they agree.
fn confirm_parked<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    mut pre: PreRead,
    stopped: &[usize],
    held: HeldRead,
) -> Result<Capture, WalkError> {
    let off = cfg.off;
    let (mut stats, mut fresh) = pre.unwind_held(cfg, &held.stacks);
    // Each g as first read is the read before its stack's; only the g's
    // that read told nothing of (dead, unreadable, or new in `allgs`) are
    // read again first, so that a goroutine started on a reused g since
    // is not missed.
    let gs = read_allgs(cfg, src)?;
    let mut latest = std::mem::take(&mut pre.recs);
    latest.resize_with(gs.len(), || None);
    let refresh: Vec<usize> = (0..gs.len())
        .filter(|&i| {
            pre.gs.get(i) != Some(&gs[i]) || latest[i].as_ref().is_none_or(GRecord::is_dead)
        })
        .collect();
    let picked: Vec<u64> = refresh.iter().map(|&i| gs[i]).collect();
    let table = GTable::read(src, &picked, pre.window, Vec::new());
    for (k, &i) in refresh.iter().enumerate() {
        latest[i] = table.get(k).map(|b| GRecord::decode(gs[i], b, &off.g));
    }
    drop(table);
    let mut final_ = Done::default();
    for &i in stopped {
        let Some(g) = held.recs.get(&i).cloned() else {
            continue;
        };
        // Still running when its thread was stopped: that copy is exact.
        if g.base_status() == G_RUNNING && gs.get(i) == Some(&g.addr) {
            if let Some(uw) = fresh.remove(&i) {
                latest[i] = Some(g);
                final_.insert(i, Ok(uw));
            }
        }
    }
    // Confirm everything else against that read.
    let confirmable = |g: &GRecord| g.is_off_cpu() || g.base_status() == G_SYSCALL;
    let mut pending: Vec<usize> = Vec::new();
    for (i, g) in latest.iter().enumerate() {
        let Some(g) = g else { continue };
        if g.is_dead() || final_.contains_key(&i) {
            continue;
        }
        if !g.looks_valid() {
            final_.insert(i, Err(inconsistent(g)));
        } else {
            pending.push(i);
        }
    }
    let minor = cfg.prog.version.minor;
    let mut stack_buf = Vec::new();
    // The g table's buffer, reused batch after batch (no fresh pages).
    let mut table_buf = Vec::new();
    let (mut batch_max, mut bytes_max) = (CONFIRM_BATCH, CONFIRM_BATCH_BYTES);
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
            while k < pending.len() && batch.len() < batch_max && bytes < bytes_max {
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
                        final_.insert(i, Err(e));
                    }
                }
            }
            let ranges = copy_stacks(batch.iter().map(|(_, job)| job), &mut stack_buf, |reqs| {
                read_batch_parallel(src, reqs)
            });
            let picked: Vec<u64> = batch.iter().map(|&(i, _)| gs[i]).collect();
            let table = GTable::read(src, &picked, pre.window, std::mem::take(&mut table_buf));
            let changed_before = stats.changed;
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
                        let stack = pre.unw.unwind_copy(cfg, job, data);
                        stats.reread += 1;
                        latest[*i] = Some(n);
                        final_.insert(*i, Ok(stack));
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
            table_buf = table.into_buffer();
            if stats.changed == changed_before {
                batch_max = (batch_max * 2).min(MAX_CONFIRM_BATCH);
                bytes_max = (bytes_max * 2).min(MAX_CONFIRM_BATCH_BYTES);
            } else {
                (batch_max, bytes_max) = (CONFIRM_BATCH, CONFIRM_BATCH_BYTES);
            }
        }
        pending = still;
    }
    for i in pending {
        let Some(g) = latest[i].as_ref() else {
            continue;
        };
        stats.changing += 1;
        let what = if g.base_status() == G_RUNNING {
            "running on a thread that was not stopped"
        } else {
            "changing"
        };
        final_.insert(
            i,
            Err(format!(
                "{what} while read with --nonblocking ({MAX_RETRIES} attempts); \
                 run again, or without --nonblocking for a consistent snapshot"
            )),
        );
    }
    // From the last g to the first, freeing both tables as they are used.
    let mut done = final_.0;
    done.resize_with(latest.len(), || None);
    let mut goroutines = Vec::with_capacity(latest.len());
    for ((_, stack), (_, g)) in drain_back(done).zip(drain_back(latest)) {
        let (Some(stack), Some(g)) = (stack, g) else {
            continue;
        };
        labels_for(src, minor, &mut pre.labels, g.labels);
        goroutines.push(copy_of(
            g,
            &pre.ms,
            &held.stacks.threads,
            stack,
            &pre.labels,
        ));
    }
    goroutines.reverse();
    Ok(Capture {
        goroutines,
        nanotime: held.nanotime,
        warnings: pre.warnings,
        stats,
    })
}
