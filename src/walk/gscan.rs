//! [`ScanPlan`]: the first bytes of every g, read in a few large copies
//! and in bounded steps, each g handed to a visitor as soon as its step
//! arrives.
//!
//! The runtime allocates g structs from the heap like any object of their
//! size class, so goroutines created together sit next to each other in
//! the same spans. Reading each g as its own range costs one iovec (one
//! page pin and a small copy) per goroutine: at 100k goroutines that is
//! what dominated the pause. Sorting the addresses and reading each run of
//! nearby g's as one range (the bytes between them included) turns 100k
//! small ranges into a few hundred large ones. A run that cannot be read
//! whole (it crosses into unmapped memory) falls back to one read per g.
//!
//! The table is never held whole: at a million goroutines it is about
//! 480 MB. Each reading thread walks its own share of the runs through
//! its own buffer of [`STEP`] bytes, reused step after step (it stays in
//! the core's cache, and no fresh pages are faulted in while the target
//! is held); callers keep what they need of each g (a decoded record, a
//! comparison) and nothing else.

use crate::memory::BatchRead;
use std::ops::Range;

/// Two g's at most this far apart (end of one window to the start of the
/// next) are read as one range: the gap costs less to copy than an iovec.
const MAX_GAP: u64 = 1024;
/// Longest single range: keeps one failing run cheap to retry, and fits
/// one step.
const MAX_RUN: u64 = 1 << 20;
/// Bytes one reading thread copies per read call (its buffer's size).
const STEP: usize = 1 << 20;
/// Most runs per read call (iovecs per `process_vm_readv`).
const RUNS_PER_STEP: usize = 64;

/// One run of nearby g's: `order[first..end]` (indices sorted by
/// address), read as the range `[start, stop)`.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: usize,
    end: usize,
    start: u64,
    stop: u64,
}

impl Run {
    fn len(&self) -> usize {
        (self.stop - self.start) as usize
    }
}

/// How to read the first `window` bytes of every g of a list: the g's in
/// address order, grouped into runs, the runs split into one share per
/// reading thread. Built once and reused when the list has not changed
/// (the read while the target is held then skips the sort).
#[derive(Debug, Default)]
pub(crate) struct ScanPlan {
    gs: Vec<u64>,
    window: usize,
    /// Indices into `gs`, by address.
    order: Vec<usize>,
    runs: Vec<Run>,
    /// Per reading thread: its runs and their positions in `order`.
    shares: Vec<(Range<usize>, Range<usize>)>,
    /// Step buffers, one per share, kept for the next scan.
    buffers: Vec<Vec<u8>>,
    /// Bytes one scan copies (gaps included).
    pub(crate) bytes: usize,
}

/// What one scan did, for the timing report.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScanStats {
    /// Ranges read (runs plus per-g retries).
    pub(crate) ranges: usize,
}

impl ScanPlan {
    /// The plan for `window` bytes at each address of `gs`.
    pub(crate) fn new(gs: &[u64], window: usize) -> ScanPlan {
        let mut order: Vec<usize> = (0..gs.len()).collect();
        order.sort_unstable_by_key(|&i| gs[i]);
        let w = window as u64;
        let mut runs: Vec<Run> = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let a = gs[i];
            let Some(end) = a.checked_add(w) else {
                continue;
            };
            match runs.last_mut() {
                Some(r)
                    if r.end == k
                        && a <= r.stop.saturating_add(MAX_GAP)
                        && end.saturating_sub(r.start) <= MAX_RUN =>
                {
                    r.end = k + 1;
                    r.stop = r.stop.max(end);
                }
                _ => runs.push(Run {
                    first: k,
                    end: k + 1,
                    start: a,
                    stop: end,
                }),
            }
        }
        let bytes: usize = runs.iter().map(Run::len).sum();
        let threads = super::gtable::reader_threads(bytes);
        let share = bytes.div_ceil(threads).max(1);
        let mut shares = Vec::with_capacity(threads);
        let mut next_run = 0;
        for (k, _) in super::gtable::shares(runs.iter().map(Run::len), share) {
            let rs = next_run..next_run + k;
            let pos = runs[rs.start].first..runs[rs.end - 1].end;
            shares.push((rs, pos));
            next_run += k;
        }
        ScanPlan {
            gs: gs.to_vec(),
            window,
            order,
            runs,
            shares,
            buffers: Vec::new(),
            bytes,
        }
    }

    /// `true` when this plan reads exactly `gs` with `window` bytes each.
    pub(crate) fn reads(&self, gs: &[u64], window: usize) -> bool {
        self.window == window && self.gs == gs
    }

    /// How many g's the plan hands out (those whose window does not
    /// overflow the address space): positions `0..len()`.
    pub(crate) fn len(&self) -> usize {
        self.runs.last().map_or(0, |r| r.end)
    }

    /// The positions each reading thread visits, in order: split a
    /// by-position array along these to give each thread its part.
    pub(crate) fn share_positions(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.shares.iter().map(|(_, p)| p.clone())
    }

    /// The index in the g list of the g at position `pos`.
    pub(crate) fn index_at(&self, pos: usize) -> usize {
        self.order[pos]
    }

    /// Reads every g, calling `visit(part, pos, i, bytes)` on the thread
    /// that read it, right after its step arrived: `part` is that thread's
    /// entry of `parts` (one per [`Self::share_positions`]), `pos` the g's
    /// position relative to the start of its share, `i` its index in the
    /// list, `bytes` its window (`None`: unreadable).
    pub(crate) fn scan<R, S, F>(&mut self, src: &R, parts: Vec<S>, visit: &F) -> (Vec<S>, ScanStats)
    where
        R: BatchRead + Sync + ?Sized,
        S: Send,
        F: Fn(&mut S, usize, usize, Option<&[u8]>) + Sync,
    {
        debug_assert_eq!(parts.len(), self.shares.len());
        let mut buffers = std::mem::take(&mut self.buffers);
        buffers.resize_with(self.shares.len(), Vec::new);
        let this = &*self;
        type Job<S> = (((Range<usize>, Range<usize>), S), Vec<u8>);
        let work = |(((runs, pos), mut part), mut buf): Job<S>| {
            let ranges = this.read_share(src, runs, pos.start, &mut part, &mut buf, visit);
            (ranges, buf, part)
        };
        let jobs = this.shares.iter().cloned().zip(parts).zip(buffers);
        let done: Vec<(usize, Vec<u8>, S)> = if this.shares.len() <= 1 {
            jobs.map(work).collect()
        } else {
            std::thread::scope(|scope| {
                let work = &work;
                let handles: Vec<_> = jobs.map(|j| scope.spawn(move || work(j))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut stats = ScanStats::default();
        let mut parts = Vec::with_capacity(done.len());
        self.buffers = done
            .into_iter()
            .map(|(ranges, buf, part)| {
                stats.ranges += ranges;
                parts.push(part);
                buf
            })
            .collect();
        (parts, stats)
    }

    /// One thread's share: its runs, step by step through `buf`.
    fn read_share<R, S, F>(
        &self,
        src: &R,
        runs: Range<usize>,
        base: usize,
        part: &mut S,
        buf: &mut Vec<u8>,
        visit: &F,
    ) -> usize
    where
        R: BatchRead + ?Sized,
        F: Fn(&mut S, usize, usize, Option<&[u8]>),
    {
        let runs = &self.runs[runs];
        let window = self.window;
        let mut ranges = 0;
        let mut k = 0;
        while k < runs.len() {
            // One step: as many runs as fit the buffer (at least one).
            let mut end = k;
            let mut bytes = 0;
            while end < runs.len()
                && end - k < RUNS_PER_STEP
                && (end == k || bytes + runs[end].len() <= STEP)
            {
                bytes += runs[end].len();
                end += 1;
            }
            if buf.len() < bytes {
                buf.resize(bytes.max(STEP.min(self.bytes)), 0);
            }
            let step = &runs[k..end];
            let results = {
                let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(step.len());
                let mut rest = &mut buf[..bytes];
                for r in step {
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.len());
                    reqs.push((r.start, head));
                    rest = tail;
                }
                src.read_batch(&mut reqs)
            };
            ranges += step.len();
            let mut off = 0;
            for (r, res) in step.iter().zip(results) {
                let run_buf = &mut buf[off..off + r.len()];
                off += r.len();
                let members = &self.order[r.first..r.end];
                // Per member, only for a run that failed whole (no
                // allocation per run while the target is held).
                let retried = if res.is_ok() {
                    None
                } else {
                    let (ok, n) = self.retry_each(src, r, run_buf);
                    ranges += n;
                    Some(ok)
                };
                for (j, &i) in members.iter().enumerate() {
                    let ok = retried.as_ref().is_none_or(|v| v.get(j) == Some(&true));
                    let rel = (self.gs[i] - r.start) as usize;
                    let bytes = ok.then(|| &run_buf[rel..rel + window]);
                    visit(part, r.first + j - base, i, bytes);
                }
            }
            k = end;
        }
        ranges
    }

    /// Reads each g of a run that failed whole on its own, in place;
    /// which ones were read, and how many reads that took. Windows in a
    /// run may overlap (g's closer than the window); such a g is left
    /// unread.
    fn retry_each<R: BatchRead + ?Sized>(
        &self,
        src: &R,
        r: &Run,
        run_buf: &mut [u8],
    ) -> (Vec<bool>, usize) {
        let members = &self.order[r.first..r.end];
        let mut ok = vec![false; members.len()];
        let mut reqs: Vec<(u64, &mut [u8])> = Vec::new();
        let mut idx = Vec::new();
        let mut cursor = 0u64;
        let mut rest: &mut [u8] = run_buf;
        for (k, &i) in members.iter().enumerate() {
            let rel = self.gs[i] - r.start;
            if rel < cursor {
                continue;
            }
            let (_, tail) = std::mem::take(&mut rest).split_at_mut((rel - cursor) as usize);
            let (head, tail) = tail.split_at_mut(self.window);
            reqs.push((self.gs[i], head));
            idx.push(k);
            rest = tail;
            cursor = rel + self.window as u64;
        }
        let n = reqs.len();
        for (k, res) in idx.into_iter().zip(src.read_batch(&mut reqs)) {
            ok[k] = res.is_ok();
        }
        (ok, n)
    }

    /// Reads every g and keeps `f(i, bytes)` of each, by index in the g
    /// list (`None` for a g never handed out: its window would overflow).
    /// Results are written per thread by position, then put in list order
    /// in place: no second array of the results is ever allocated.
    pub(crate) fn collect<R, T, F>(&mut self, src: &R, f: &F) -> (Vec<Option<T>>, ScanStats)
    where
        R: BatchRead + Sync + ?Sized,
        T: Send,
        F: Fn(usize, Option<&[u8]>) -> Option<T> + Sync,
    {
        let mut by_pos: Vec<Option<T>> = Vec::with_capacity(self.gs.len());
        by_pos.resize_with(self.gs.len(), || None);
        let stats = {
            let mut parts = Vec::with_capacity(self.shares.len());
            let mut rest: &mut [Option<T>] = &mut by_pos[..self.len()];
            for p in self.share_positions() {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(p.len());
                parts.push(head);
                rest = tail;
            }
            let visit = |part: &mut &mut [Option<T>], pos: usize, i: usize, b: Option<&[u8]>| {
                part[pos] = f(i, b);
            };
            self.scan(src, parts, &visit).1
        };
        // Position k holds the result of g `order[k]`; the g's never
        // handed out (their windows overflow) have the highest addresses,
        // so they sit at the end, holding `None`.
        let mut placed = vec![false; by_pos.len()];
        permute(&mut by_pos, &self.order, &mut placed);
        (by_pos, stats)
    }
}

/// Moves `v[k]` to `v[to[k]]` for every `k` (`to` a permutation), in place,
/// one cycle at a time; `done` (all `false`, as long as `v`) marks the
/// positions moved.
fn permute<T>(v: &mut [Option<T>], to: &[usize], done: &mut [bool]) {
    for start in 0..v.len() {
        if done[start] {
            continue;
        }
        let mut carry = v[start].take();
        let mut cur = start;
        loop {
            done[cur] = true;
            let dst = to[cur];
            std::mem::swap(&mut carry, &mut v[dst]);
            if dst == start {
                break;
            }
            cur = dst;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;

    fn mem_with(ranges: &[(u64, usize)]) -> RegionMemory {
        RegionMemory::addressed(ranges)
    }

    fn first_bytes(plan: &mut ScanPlan, m: &RegionMemory) -> Vec<Option<(u8, u8)>> {
        let w = plan.window;
        plan.collect(m, &|_, b: Option<&[u8]>| b.map(|b| (b[0], b[w - 1])))
            .0
    }

    #[test]
    fn adjacent_gs_are_read_as_one_range_in_list_order() {
        let m = mem_with(&[(0x1000, 0x1000)]);
        let gs = [0x1200, 0x1000, 0x1100, 0x1300];
        let mut plan = ScanPlan::new(&gs, 0x80);
        let (got, stats) = plan.collect(&m, &|i, b: Option<&[u8]>| b.map(|b| (i, b[0], b[0x7f])));
        assert_eq!(stats.ranges, 1);
        for (i, &g) in gs.iter().enumerate() {
            assert_eq!(got[i], Some((i, g as u8, (g + 0x7f) as u8)));
        }
        assert!(plan.reads(&gs, 0x80) && !plan.reads(&gs, 0x40) && !plan.reads(&gs[1..], 0x80));
    }

    #[test]
    fn a_run_over_a_hole_falls_back_to_single_reads() {
        // Two mapped pieces with an unmapped gap smaller than MAX_GAP.
        let m = mem_with(&[(0x1000, 0x100), (0x1200, 0x100)]);
        let gs = [0x1000, 0x1200, 0x1180];
        let mut plan = ScanPlan::new(&gs, 0x40);
        let got = first_bytes(&mut plan, &m);
        assert_eq!(got, vec![Some((0x00, 0x3f)), Some((0x00, 0x3f)), None]);
    }

    #[test]
    fn large_tables_are_read_on_several_threads_in_steps_and_visited_once() {
        // 12 MB of g's 480 bytes apart (several threads' and many steps'
        // worth), with a hole in the middle that forces per-g retries.
        let base = 0x10_0000u64;
        let n = 25_000u64;
        let mut m = RegionMemory::new();
        let hole = base + 480 * 12_000;
        m.insert(base, vec![7u8; (hole - base) as usize]);
        m.insert(
            hole + 4096,
            vec![9u8; (480 * n - (hole + 4096 - base)) as usize],
        );
        let gs: Vec<u64> = (0..n).rev().map(|i| base + 480 * i).collect();
        let mut plan = ScanPlan::new(&gs, 360);
        assert!(plan.share_positions().count() > 1 || reader_cores() == 1);
        let seen = std::sync::Mutex::new(vec![0u32; gs.len()]);
        let f = |i: usize, b: Option<&[u8]>| {
            seen.lock().unwrap()[i] += 1;
            let b = b?;
            assert_eq!(b.len(), 360);
            assert!(b.iter().all(|&x| x == b[0]));
            Some(b[0])
        };
        let (got, _) = plan.collect(&m, &f);
        for (i, &g) in gs.iter().enumerate() {
            let readable = g + 360 <= hole || g >= hole + 4096;
            let want = readable.then_some(if g < hole { 7 } else { 9 });
            assert_eq!(got[i], want, "g {i} at {g:#x}");
        }
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
        // A second scan through the same plan reuses its step buffers.
        let again = plan.collect(&m, &|_, b: Option<&[u8]>| b.map(|b| b[0])).0;
        assert_eq!(again, got);
        assert!(plan.buffers.iter().all(|b| b.len() <= STEP));
    }

    fn reader_cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    #[test]
    fn hostile_addresses_do_not_panic() {
        let m = mem_with(&[(0x1000, 0x100)]);
        let gs = [u64::MAX - 3, 0, u64::MAX, 0x1000, 0x1000];
        let mut plan = ScanPlan::new(&gs, 0x40);
        let got = first_bytes(&mut plan, &m);
        assert_eq!(got[..3], [None, None, None]);
        assert!(got[3].is_some() && got[4].is_some());
        let empty = ScanPlan::new(&[], 0x40).collect(&m, &|_, _| Some(())).0;
        assert!(empty.is_empty());
    }

    #[test]
    fn permute_moves_every_item_to_its_place() {
        let mut v: Vec<Option<char>> = "abcde".chars().map(Some).collect();
        let to = [2, 0, 1, 4, 3];
        permute(&mut v, &to, &mut [false; 5]);
        assert_eq!(v, ['b', 'c', 'a', 'e', 'd'].map(Some));
    }
}
