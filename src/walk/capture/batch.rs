//! The one batch helper: copying many goroutine stacks with one batched
//! read into one buffer ([`copy_stacks`]). Every strategy copies stacks
//! through it; they differ only in how they group goroutines into batches
//! and which reader they hand it (split across cores or not).

use super::reads::{start_context, MRecord};
use crate::memory::{BatchRead, MemoryError, SliceMemory};
use crate::walk::args::ArgReader;
use crate::walk::gstruct::GRecord;
use crate::walk::unwind::{
    unwind_into, SharedStack, StackInterner, UnwindCache, UnwindStart, Unwound,
};
use crate::walk::{ThreadRegs, WalkConfig, MAX_STACK};
use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Stacks copied per batch while the process runs: bounds the memory held
/// for stack bytes at once.
const STACK_BATCH_BYTES: usize = 16 << 20;

/// One stack to copy and unwind: where the walk starts and the stack's
/// bounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct StackJob {
    pub(super) start: UnwindStart,
    pub(super) lo: u64,
    pub(super) hi: u64,
}

/// The stack job of `g`, or why its stack cannot be walked.
pub(super) fn stack_job(
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
pub(super) fn live_range(job: &StackJob) -> (u64, usize) {
    let sp = job.start.sp;
    if sp >= job.lo && sp < job.hi && job.hi - sp <= MAX_STACK {
        (sp, (job.hi - sp) as usize)
    } else {
        (sp, 0)
    }
}

/// Copies the live stack of every job, back to back, into `buf` (resized
/// to fit; the old bytes are overwritten or left unused) with one call of
/// `read`; where each job's bytes sit in `buf`, or `None` when its read
/// failed. Every job gets a request, empty ones included, so the results
/// line up with the jobs.
pub(super) fn copy_stacks<'j>(
    jobs: impl Iterator<Item = &'j StackJob> + Clone,
    buf: &mut Vec<u8>,
    read: impl FnOnce(&mut [(u64, &mut [u8])]) -> Vec<Result<(), MemoryError>>,
) -> Vec<Option<Range<usize>>> {
    let total: usize = jobs.clone().map(|j| live_range(j).1).sum();
    if buf.capacity() == 0 {
        // Zeroed pages straight from the allocator rather than zeroed by
        // hand: this may run while the target is held.
        *buf = vec![0u8; total];
    } else {
        buf.resize(total, 0);
    }
    let results = {
        let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(jobs.size_hint().0);
        let mut rest = buf.as_mut_slice();
        for job in jobs.clone() {
            let (addr, len) = live_range(job);
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            reqs.push((addr, head));
            rest = tail;
        }
        read(&mut reqs)
    };
    let mut off = 0usize;
    jobs.zip(results)
        .map(|(job, ok)| {
            let len = live_range(job).1;
            let r = off..off + len;
            off += len;
            ok.is_ok().then_some(r)
        })
        .collect()
}

/// What unwinding needs besides the copy: the per-PC memo, a reused frame
/// buffer, the interner that shares stack shapes and the reader of
/// argument words. A snapshot keeps one (in `PreRead`) for every stack it
/// unwinds, so that goroutines parked in the same code share one shape.
pub(super) struct Unwinder {
    pub(super) cache: UnwindCache,
    scratch: Unwound,
    pub(super) interner: StackInterner,
    args: ArgReader,
}

impl Unwinder {
    /// A worker for the target's Go version and architecture.
    pub(super) fn new(cfg: &WalkConfig<'_, '_>) -> Unwinder {
        Unwinder {
            cache: UnwindCache::for_target(cfg.prog.version.minor, cfg.prog.bin.arch()),
            scratch: Unwound::default(),
            interner: StackInterner::new(),
            args: ArgReader::new(cfg.prog.bin.arch()),
        }
    }

    /// Unwinds one stack copied from `job.start.sp` (`data`, empty if the
    /// copy failed), shares its shape and reads its argument words.
    pub(super) fn unwind_copy(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        job: &StackJob,
        data: &[u8],
    ) -> SharedStack {
        let mem = SliceMemory {
            base: job.start.sp,
            data,
        };
        unwind_into(
            &cfg.prog.pclntab,
            &mut self.cache,
            cfg.bias,
            &mem,
            job.start,
            job.lo,
            job.hi,
            &mut self.scratch,
        );
        let mut st = self.interner.intern_ref(&self.scratch);
        self.args.attach(&cfg.prog.pclntab, &mut st, &mem);
        st
    }
}

/// Copies the live stacks of `jobs` in batches of [`STACK_BATCH_BYTES`]
/// (each batch split across cores) and unwinds each with `unw` as soon as
/// its batch is in; the bytes are dropped right after. `sink` gets each
/// job's index and stack, in order. Returns the time spent reading (not
/// unwinding). (Unwinding on several threads as well was measured: at a
/// million stacks it saved nothing, the copies already keep both cores
/// busy, and it cost 50 MB.)
pub(super) fn read_and_unwind<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    unw: &mut Unwinder,
    jobs: &[(usize, StackJob)],
    mut sink: impl FnMut(usize, SharedStack),
) -> Duration {
    let mut buf: Vec<u8> = Vec::new();
    let mut read_time = Duration::ZERO;
    let mut i = 0;
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
        let tr = Instant::now();
        let ranges = copy_stacks(jobs[i..j].iter().map(|(_, job)| job), &mut buf, |reqs| {
            crate::walk::gtable::read_batch_parallel(src, reqs)
        });
        read_time += tr.elapsed();
        for ((idx, job), range) in jobs[i..j].iter().zip(ranges) {
            let data = range.map_or(&[][..], |r| &buf[r]);
            sink(*idx, unw.unwind_copy(cfg, job, data));
        }
        i = j;
    }
    read_time
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;

    fn job(sp: u64, lo: u64, hi: u64) -> StackJob {
        StackJob {
            start: UnwindStart {
                pc: 0,
                sp,
                trap: false,
                syscall: false,
                lr: 0,
            },
            lo,
            hi,
        }
    }

    #[test]
    fn stacks_are_laid_out_back_to_back_and_failures_stay_apart() {
        let mut m = RegionMemory::new();
        m.insert(0x1000, (0..0x100).map(|i| i as u8).collect());
        let jobs = [
            job(0x1010, 0x1000, 0x1020), // 0x10 bytes
            job(0x5000, 0x4000, 0x5010), // unmapped
            job(0x3000, 0x1000, 0x2000), // SP outside: nothing to copy
            job(0x10f0, 0x1000, 0x1100), // 0x10 bytes
        ];
        let mut buf = vec![0xEE; 4];
        let ranges = copy_stacks(jobs.iter(), &mut buf, |reqs| m.read_batch(reqs));
        assert_eq!(
            ranges,
            vec![Some(0..0x10), None, Some(0x20..0x20), Some(0x20..0x30)]
        );
        assert_eq!(buf.len(), 0x30);
        assert_eq!(buf[0], 0x10);
        assert_eq!(buf[0x20], 0xf0);
        assert_eq!(buf[0x2f], 0xff);
    }
}
