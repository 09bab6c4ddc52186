//! [`GTable`]: the first bytes of every g, read in as few large copies as
//! the heap layout allows.
//!
//! The runtime allocates g structs from the heap like any object of their
//! size class, so goroutines created together sit next to each other in
//! the same spans. Reading each g as its own range costs one iovec (one
//! page pin and a small copy) per goroutine: at 100k goroutines that is
//! what dominated the pause. Sorting the addresses and reading each run of
//! nearby g's as one range (the bytes between them included) turns 100k
//! small ranges into a few hundred large ones. A run that cannot be read
//! whole (it crosses into unmapped memory) falls back to one read per g.

use crate::memory::BatchRead;

/// Two g's at most this far apart (end of one window to the start of the
/// next) are read as one range: the gap costs less to copy than an iovec.
const MAX_GAP: u64 = 1024;
/// Longest single range: keeps one failing run cheap to retry.
const MAX_RUN: u64 = 4 << 20;

/// The first `window` bytes of every g of a list, by index in that list.
#[derive(Debug, Default)]
pub(crate) struct GTable {
    window: usize,
    buf: Vec<u8>,
    /// Offset of each g's window in `buf`, or `usize::MAX` if unreadable.
    slot: Vec<usize>,
    /// Ranges actually read (runs plus per-g retries), for the report.
    pub(crate) ranges: usize,
    /// Bytes copied.
    pub(crate) bytes: usize,
}

/// One run of nearby g's: `order[first..end]` (indices sorted by
/// address), read as the range `[start, stop)` at `buf_off` in the buffer.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: usize,
    end: usize,
    start: u64,
    stop: u64,
    buf_off: usize,
}

impl Run {
    fn len(&self) -> usize {
        (self.stop - self.start) as usize
    }
}

/// Runs handed to one reading thread per read call.
const RUNS_PER_BATCH: usize = 64;

impl GTable {
    /// Reads `window` bytes at each address of `gs`. `reuse` is a buffer
    /// from an earlier table (its pages are already faulted in, which keeps
    /// page faults out of a read made while the target is held).
    pub(crate) fn read<R: BatchRead + Sync + ?Sized>(
        src: &R,
        gs: &[u64],
        window: usize,
        reuse: Vec<u8>,
    ) -> GTable {
        Self::read_visit(src, gs, window, reuse, &|_, _| false).0
    }

    /// [`Self::read`], calling `visit(i, bytes)` for every g read, on the
    /// thread that read it, right after its batch arrived (while the bytes
    /// are still in that core's cache); returns the indices for which
    /// `visit` said `true`, in no particular order.
    pub(crate) fn read_visit<R, F>(
        src: &R,
        gs: &[u64],
        window: usize,
        reuse: Vec<u8>,
        visit: &F,
    ) -> (GTable, Vec<usize>)
    where
        R: BatchRead + Sync + ?Sized,
        F: Fn(usize, &[u8]) -> bool + Sync,
    {
        let mut order: Vec<usize> = (0..gs.len()).collect();
        order.sort_unstable_by_key(|&i| gs[i]);
        let w = window as u64;
        let mut runs: Vec<Run> = Vec::new();
        let mut total = 0usize;
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
                _ => {
                    if let Some(r) = runs.last() {
                        total += r.len();
                    }
                    runs.push(Run {
                        first: k,
                        end: k + 1,
                        start: a,
                        stop: end,
                        buf_off: total,
                    });
                }
            }
        }
        if let Some(r) = runs.last() {
            total += r.len();
        }
        let mut buf = reuse;
        // Old contents need no clearing: every byte handed out is either
        // overwritten by a successful read or marked unreadable.
        if buf.len() < total {
            buf.resize(total, 0);
        } else {
            buf.truncate(total);
        }
        let mut slot = vec![usize::MAX; gs.len()];
        for r in &runs {
            for &i in &order[r.first..r.end] {
                slot[i] = r.buf_off + (gs[i] - r.start) as usize;
            }
        }
        // Split the runs (and the buffer with them) across threads.
        let threads = reader_threads(total);
        let share = total.div_ceil(threads).max(1);
        let mut pieces: Vec<(&[Run], &mut [u8])> = Vec::with_capacity(threads);
        {
            let mut rest_runs: &[Run] = &runs;
            let mut rest_buf: &mut [u8] = &mut buf;
            for (k, acc) in shares(runs.iter().map(Run::len), share) {
                let (head_runs, tail_runs) = rest_runs.split_at(k);
                let (head_buf, tail_buf) = std::mem::take(&mut rest_buf).split_at_mut(acc);
                pieces.push((head_runs, head_buf));
                rest_runs = tail_runs;
                rest_buf = tail_buf;
            }
        }
        let order = &order;
        let work = |runs: &[Run], piece: &mut [u8]| -> Outcome {
            read_runs(src, gs, order, window, runs, piece, visit)
        };
        let outcomes: Vec<Outcome> = if pieces.len() <= 1 {
            pieces.into_iter().map(|(r, b)| work(r, b)).collect()
        } else {
            std::thread::scope(|scope| {
                let work = &work;
                let handles: Vec<_> = pieces
                    .into_iter()
                    .map(|(r, b)| scope.spawn(move || work(r, b)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut flagged = Vec::new();
        let mut ranges = 0;
        for o in outcomes {
            ranges += o.ranges;
            flagged.extend(o.flagged);
            for i in o.unreadable {
                slot[i] = usize::MAX;
            }
        }
        let table = GTable {
            window,
            bytes: total,
            buf,
            slot,
            ranges,
        };
        (table, flagged)
    }

    /// The window of the `i`-th g, if it was read.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let off = *self.slot.get(i)?;
        if off == usize::MAX {
            return None;
        }
        self.buf.get(off..off + self.window)
    }

    /// Gives the buffer back for reuse by the next table.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// Copies at least this much per thread before splitting the read across
/// threads: below it, starting a thread costs more than it saves.
/// `process_vm_readv` of large ranges is bound by page pinning and copying
/// on the calling CPU, and while the target is held the other cores are
/// idle, so splitting a 48 MB table over two cores halves the pause.
const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// Threads to read `total` bytes with: one per [`PARALLEL_MIN_BYTES`], at
/// most 4 and no more than there are cores.
fn reader_threads(total: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(4).min(total / PARALLEL_MIN_BYTES).max(1)
}

/// Splits items of the given byte lengths, in order, into consecutive
/// pieces of about `share` bytes each (at least one item per piece):
/// `(items, bytes)` of each piece, one piece per reading thread.
fn shares(lens: impl Iterator<Item = usize>, share: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut k, mut acc) = (0usize, 0usize);
    for len in lens {
        if k > 0 && acc >= share {
            out.push((k, acc));
            (k, acc) = (0, 0);
        }
        acc += len;
        k += 1;
    }
    if k > 0 {
        out.push((k, acc));
    }
    out
}

/// [`BatchRead::read_batch`] split across cores for large batches (the
/// same reasoning as the table: copying is bound by the calling CPU).
pub(crate) fn read_batch_parallel<R: BatchRead + Sync + ?Sized>(
    src: &R,
    reqs: &mut [(u64, &mut [u8])],
) -> Vec<Result<(), crate::memory::MemoryError>> {
    let total: usize = reqs.iter().map(|r| r.1.len()).sum();
    let threads = reader_threads(total);
    if threads == 1 || reqs.len() < 2 {
        return src.read_batch(reqs);
    }
    let share = total.div_ceil(threads);
    let mut pieces: Vec<&mut [(u64, &mut [u8])]> = Vec::with_capacity(threads);
    let sizes = shares(reqs.iter().map(|r| r.1.len()), share);
    let mut rest = reqs;
    for (k, _) in sizes {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(k);
        pieces.push(head);
        rest = tail;
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .into_iter()
            .map(|piece| {
                let n = piece.len();
                (n, scope.spawn(move || src.read_batch(piece)))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| {
                h.join().unwrap_or_else(|_| {
                    vec![
                        Err(crate::memory::MemoryError::new(
                            0,
                            0,
                            "reader thread panicked"
                        ));
                        n
                    ]
                })
            })
            .collect()
    })
}

/// What one reading thread reports.
#[derive(Debug, Default)]
struct Outcome {
    flagged: Vec<usize>,
    unreadable: Vec<usize>,
    ranges: usize,
}

/// Reads `runs` into `piece` (the part of the table's buffer they map to,
/// starting at the first run's `buf_off`), batch by batch, visiting each
/// g as soon as its batch is in.
fn read_runs<R, F>(
    src: &R,
    gs: &[u64],
    order: &[usize],
    window: usize,
    runs: &[Run],
    piece: &mut [u8],
    visit: &F,
) -> Outcome
where
    R: BatchRead + ?Sized,
    F: Fn(usize, &[u8]) -> bool,
{
    let mut out = Outcome::default();
    let Some(base) = runs.first().map(|r| r.buf_off) else {
        return out;
    };
    for batch in runs.chunks(RUNS_PER_BATCH) {
        let results = {
            let mut reqs: Vec<(u64, &mut [u8])> = Vec::with_capacity(batch.len());
            let start = batch[0].buf_off - base;
            let mut rest = &mut piece[start..];
            for r in batch {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.len());
                reqs.push((r.start, head));
                rest = tail;
            }
            src.read_batch(&mut reqs)
        };
        out.ranges += batch.len();
        for (r, res) in batch.iter().zip(results) {
            let run_buf = &mut piece[r.buf_off - base..r.buf_off - base + r.len()];
            let members = &order[r.first..r.end];
            // Per member: readable?
            let mut ok = vec![res.is_ok(); members.len()];
            if res.is_err() {
                // Retry each g of the run on its own, in place. Windows in
                // a run may overlap (g's closer than the window); such a g
                // is left unread.
                let mut reqs: Vec<(u64, &mut [u8])> = Vec::new();
                let mut idx = Vec::new();
                let mut cursor = 0u64;
                let mut rest: &mut [u8] = &mut run_buf[..];
                for (k, &i) in members.iter().enumerate() {
                    let rel = gs[i] - r.start;
                    if rel < cursor {
                        continue;
                    }
                    let (_, tail) = std::mem::take(&mut rest).split_at_mut((rel - cursor) as usize);
                    let (head, tail) = tail.split_at_mut(window);
                    reqs.push((gs[i], head));
                    idx.push(k);
                    rest = tail;
                    cursor = rel + window as u64;
                }
                out.ranges += reqs.len();
                let results = src.read_batch(&mut reqs);
                for (k, res) in idx.into_iter().zip(results) {
                    ok[k] = res.is_ok();
                }
            }
            for (&i, ok) in members.iter().zip(ok) {
                if !ok {
                    out.unreadable.push(i);
                    continue;
                }
                let rel = (gs[i] - r.start) as usize;
                if visit(i, &run_buf[rel..rel + window]) {
                    out.flagged.push(i);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;

    fn mem_with(ranges: &[(u64, usize)]) -> RegionMemory {
        let mut m = RegionMemory::new();
        for &(a, len) in ranges {
            m.insert(a, (0..len).map(|i| (a as usize + i) as u8).collect());
        }
        m
    }

    #[test]
    fn adjacent_gs_are_read_as_one_range() {
        let m = mem_with(&[(0x1000, 0x1000)]);
        let gs = [0x1200, 0x1000, 0x1100, 0x1300];
        let t = GTable::read(&m, &gs, 0x80, Vec::new());
        assert_eq!(t.ranges, 1);
        for (i, &g) in gs.iter().enumerate() {
            let w = t.get(i).unwrap();
            assert_eq!(w.len(), 0x80);
            assert_eq!(w[0], g as u8);
            assert_eq!(w[0x7f], (g + 0x7f) as u8);
        }
    }

    #[test]
    fn a_run_over_a_hole_falls_back_to_single_reads() {
        // Two mapped pieces with an unmapped gap smaller than MAX_GAP.
        let m = mem_with(&[(0x1000, 0x100), (0x1200, 0x100)]);
        let gs = [0x1000, 0x1200, 0x1180];
        let t = GTable::read(&m, &gs, 0x40, Vec::new());
        assert_eq!(t.get(0).unwrap()[1], 0x01);
        assert_eq!(t.get(1).unwrap()[0], 0x00);
        assert_eq!(t.get(1).unwrap()[2], 0x02);
        assert!(t.get(2).is_none(), "0x1180 is unmapped");
        assert_eq!((0..gs.len()).filter(|&i| t.get(i).is_none()).count(), 1);
    }

    #[test]
    fn far_apart_gs_are_separate_ranges_and_buffers_are_reused() {
        let m = mem_with(&[(0x1000, 0x100), (0x900000, 0x100)]);
        let gs = [0x900000, 0x1000];
        let t = GTable::read(&m, &gs, 0x10, vec![0xAA; 1 << 16]);
        assert_eq!(t.ranges, 2);
        assert_eq!(t.bytes, 0x20);
        assert_eq!(t.get(0).unwrap()[0], 0x00);
        assert_eq!(t.get(1).unwrap()[3], 0x03);
        assert!(t.into_buffer().capacity() >= 1 << 16);
    }

    #[test]
    fn large_tables_are_read_on_several_threads_and_visited_once() {
        // 12 MB of g's 480 bytes apart (several threads' worth), with a
        // hole in the middle that forces per-g retries in one run.
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
        let seen = std::sync::Mutex::new(vec![0u32; gs.len()]);
        let visit = |i: usize, b: &[u8]| {
            assert_eq!(b.len(), 360);
            seen.lock().unwrap()[i] += 1;
            i % 7 == 0
        };
        let (t, mut flagged) = GTable::read_visit(&m, &gs, 360, Vec::new(), &visit);
        flagged.sort_unstable();
        let seen = seen.into_inner().unwrap();
        for (i, &g) in gs.iter().enumerate() {
            let readable = g + 360 <= hole || g >= hole + 4096;
            assert_eq!(t.get(i).is_some(), readable, "g {i} at {g:#x}");
            assert_eq!(seen[i], readable as u32, "visited once iff readable");
            if let Some(b) = t.get(i) {
                assert!(b.iter().all(|&x| x == if g < hole { 7 } else { 9 }));
            }
        }
        let want: Vec<usize> = (0..gs.len())
            .filter(|&i| i % 7 == 0 && t.get(i).is_some())
            .collect();
        assert_eq!(flagged, want);
    }

    #[test]
    fn shares_hand_out_items_in_order_until_each_piece_is_full() {
        assert_eq!(
            shares([3, 3, 3, 3, 3].into_iter(), 5),
            [(2, 6), (2, 6), (1, 3)]
        );
        assert_eq!(shares([10, 1].into_iter(), 5), [(1, 10), (1, 1)]);
        assert_eq!(shares([0, 0].into_iter(), 5), [(2, 0)]);
        assert!(shares(std::iter::empty(), 5).is_empty());
    }

    #[test]
    fn parallel_batches_keep_request_order_and_failures() {
        let m = mem_with(&[(0x100_0000, 12 << 20)]);
        let mut bufs: Vec<Vec<u8>> = (0..13).map(|_| vec![0u8; 1 << 20]).collect();
        let mut reqs: Vec<(u64, &mut [u8])> = bufs
            .iter_mut()
            .enumerate()
            .map(|(k, b)| (0x100_0000 + (k as u64) * (1 << 20) + 1, b.as_mut_slice()))
            .collect();
        let res = read_batch_parallel(&m, &mut reqs);
        assert_eq!(res.len(), 13);
        assert!(res[..11].iter().all(|r| r.is_ok()));
        assert!(res[12].is_err(), "past the end of the mapping");
        for (k, b) in bufs.iter().take(11).enumerate() {
            let a = 0x100_0000 + k * (1 << 20) + 1;
            assert_eq!(b[0], a as u8);
            assert_eq!(b[5], (a + 5) as u8);
        }
    }

    #[test]
    fn hostile_addresses_do_not_panic() {
        let m = mem_with(&[(0x1000, 0x100)]);
        let gs = [u64::MAX - 3, 0, u64::MAX, 0x1000, 0x1000];
        let t = GTable::read(&m, &gs, 0x40, Vec::new());
        assert!(t.get(0).is_none() && t.get(1).is_none() && t.get(2).is_none());
        assert!(t.get(3).is_some() && t.get(4).is_some());
        assert!(t.get(99).is_none());
    }
}
