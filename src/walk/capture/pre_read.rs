//! [`PreRead`]: every g, and the stacks a strategy wants, read in one
//! pass; and the stacks that must be copied again while the target is held
//! ([`HeldStacks`]).

use super::batch::{copy_stacks, read_and_unwind, stack_job, StackJob, Unwinder};
use super::reads::{decode_all, labels_for, read_allgs, read_ms, MRecord};
use super::{CaptureStats, Labels, Phase};
use crate::memory::BatchRead;
use crate::walk::gscan::ScanPlan;
use crate::walk::gstruct::{GRecord, G_RUNNING, G_SYSCALL};
use crate::walk::unwind::{SharedStack, Unwound};
use crate::walk::{ThreadRegs, WalkConfig, WalkError};
use std::collections::HashMap;
use std::ops::Range;

/// Which stacks [`pre_read`] copies and unwinds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stacks<'t> {
    /// None: only the g's (`--nonblocking` reads each stack later, right
    /// between two reads of its g).
    None,
    /// Those of goroutines off CPU or in a syscall: the ones that cannot
    /// change without the g showing it (read while the process runs).
    Parked,
    /// Every live goroutine's, running ones from these thread registers:
    /// the target is held, so everything read is already consistent.
    All(&'t [ThreadRegs]),
}

/// What was read in the first pass over the g's.
pub(super) struct PreRead {
    /// `allgs` as read.
    pub(super) gs: Vec<u64>,
    /// Every g as decoded, by index in `gs` (`None`: unreadable): a g
    /// with a stack read is confirmed later against its record.
    pub(super) recs: Vec<Option<GRecord>>,
    /// `(index, m)` of the goroutines that were running.
    running: Vec<(usize, u64)>,
    /// The unwound stacks, by index in `gs`.
    pub(super) stacks: Vec<Option<SharedStack>>,
    /// Unwinds (and shares the shapes of) every stack of the snapshot.
    pub(super) unw: Unwinder,
    pub(super) ms: HashMap<u64, MRecord>,
    pub(super) labels: HashMap<u64, Option<Labels>>,
    /// Bytes read per g ([`GRecord::bytes_needed`]).
    pub(super) window: usize,
    /// How `gs` was read: reused (sort, runs, step buffers) by the read
    /// while held when `allgs` has not changed.
    pub(super) plan: ScanPlan,
    pub(super) warnings: Vec<String>,
    /// The timed phases so far, handed to [`CaptureStats::phases`].
    pub(super) phases: Vec<Phase>,
}

/// Reads every g (kept decoded in [`PreRead::recs`]) and the stacks
/// `which` asks for.
pub(super) fn pre_read<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    which: Stacks<'_>,
) -> Result<PreRead, WalkError> {
    let off = cfg.off;
    let t0 = std::time::Instant::now();
    let gs = read_allgs(cfg, src)?;
    let window = GRecord::bytes_needed(&off.g) as usize;
    let mut plan = ScanPlan::new(&gs, window);
    let t1 = std::time::Instant::now();
    let recs = decode_all(&mut plan, src, &gs, off);
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
    let (threads, wanted_status): (&[ThreadRegs], fn(&GRecord) -> bool) = match which {
        Stacks::None => (&[], |_| false),
        Stacks::Parked => (&[], |g| g.is_off_cpu() || g.base_status() == G_SYSCALL),
        Stacks::All(threads) => (threads, |_| true),
    };
    let wanted = |g: &GRecord| !g.is_dead() && g.looks_valid() && wanted_status(g);
    let ms = read_ms(src, off, read.iter().filter(|g| wanted(g)).map(|g| g.m));
    let mut jobs = Vec::new();
    let mut stacks: Vec<Option<SharedStack>> = vec![None; gs.len()];
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
    let mut unw = Unwinder::new(cfg);
    let t3 = std::time::Instant::now();
    let read_time = read_and_unwind(cfg, src, &mut unw, &jobs, |i, st| stacks[i] = Some(st));
    let t4 = std::time::Instant::now();
    let phases = vec![
        Phase::StackReads(read_time),
        Phase::Running {
            plan: t1 - t0,
            g_table: t2 - t1,
            jobs: t3 - t2,
            stacks_unwind: t4 - t3,
            stacks: jobs.len(),
            shapes: unw.interner.len(),
        },
    ];
    for (i, e) in failed {
        stacks[i] = Some(unw.interner.intern(Unwound {
            frames: Vec::new(),
            error: Some(e),
        }));
    }
    let minor = cfg.prog.version.minor;
    let mut labels = HashMap::new();
    for g in recs.iter().flatten().filter(|g| !g.is_dead()) {
        labels_for(src, minor, &mut labels, g.labels);
    }
    let running = recs
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            let g = g.as_ref()?;
            (g.base_status() == G_RUNNING).then_some((i, g.m))
        })
        .collect();
    Ok(PreRead {
        gs,
        recs,
        running,
        stacks,
        unw,
        ms,
        labels,
        window,
        plan,
        warnings,
        phases,
    })
}

/// The stacks copied while the target was held: by index in `allgs`,
/// where each one's bytes sit in `buf` (`None`: unreadable), unwound only
/// after the target runs again.
pub(super) struct HeldStacks {
    jobs: Vec<(usize, StackJob, Option<Range<usize>>)>,
    buf: Vec<u8>,
    /// The threads' registers at the held instant.
    pub(super) threads: Vec<ThreadRegs>,
}

impl PreRead {
    /// A first pass that read nothing: the strategy's `before_hold` was
    /// skipped, so every g counts as changed and is read while held.
    pub(super) fn nothing(cfg: &WalkConfig<'_, '_>) -> PreRead {
        PreRead {
            gs: Vec::new(),
            recs: Vec::new(),
            running: Vec::new(),
            stacks: Vec::new(),
            unw: Unwinder::new(cfg),
            ms: HashMap::new(),
            labels: HashMap::new(),
            window: GRecord::bytes_needed(&cfg.off.g) as usize,
            plan: ScanPlan::default(),
            warnings: Vec::new(),
            phases: Vec::new(),
        }
    }

    /// Indices of the goroutines that were running.
    pub(super) fn running_indices(&self) -> Vec<usize> {
        self.running.iter().map(|&(i, _)| i).collect()
    }

    /// The threads (TIDs) running Go code when the g's were read.
    pub(super) fn running_threads<R: BatchRead + Sync + ?Sized>(
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

    /// With the target held, after the strategy picked the g's whose
    /// earlier copy cannot be used (`need`, read while held): their M's,
    /// their stacks (one batch, on this thread) and any label set not seen
    /// before. `keep_going` is asked between steps; once it says no (the
    /// pause budget ran out), the read is abandoned.
    pub(super) fn copy_held_stacks<R: BatchRead + Sync + ?Sized>(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        src: &R,
        need: &[(usize, GRecord)],
        threads: Vec<ThreadRegs>,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<HeldStacks, WalkError> {
        if !keep_going() {
            return Err(WalkError::Abandoned);
        }
        let ms = read_ms(src, cfg.off, need.iter().map(|(_, g)| g.m));
        self.ms.extend(ms.iter().map(|(k, v)| (*k, *v)));
        let mut jobs = Vec::new();
        for (i, g) in need {
            if let Ok(job) = stack_job(g, &self.ms, &threads) {
                jobs.push((*i, job));
            }
        }
        let mut buf = Vec::new();
        let ranges = copy_stacks(jobs.iter().map(|(_, job)| job), &mut buf, |reqs| {
            src.read_batch(reqs)
        });
        let jobs = jobs
            .into_iter()
            .zip(ranges)
            .map(|((i, job), r)| (i, job, r))
            .collect();
        if !keep_going() {
            return Err(WalkError::Abandoned);
        }
        // Labels set or changed since the first read (rare): read them now.
        let minor = cfg.prog.version.minor;
        for (_, g) in need {
            labels_for(src, minor, &mut self.labels, g.labels);
        }
        if !keep_going() {
            return Err(WalkError::Abandoned);
        }
        Ok(HeldStacks { jobs, buf, threads })
    }

    /// Unwinds the stacks copied while held (after the target runs again),
    /// by index in `allgs`, with the stats of the held copy.
    pub(super) fn unwind_held(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        held: &HeldStacks,
    ) -> (CaptureStats, HashMap<usize, SharedStack>) {
        let stats = CaptureStats {
            held_bytes: held.buf.len(),
            held_ranges: held.jobs.len(),
            phases: std::mem::take(&mut self.phases),
            ..CaptureStats::default()
        };
        let mut fresh = HashMap::with_capacity(held.jobs.len());
        for (i, job, r) in &held.jobs {
            let data = r.clone().and_then(|r| held.buf.get(r)).unwrap_or(&[]);
            fresh.insert(*i, self.unw.unwind_copy(cfg, job, data));
        }
        (stats, fresh)
    }
}
