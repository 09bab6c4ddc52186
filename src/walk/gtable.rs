//! [`GTable`]: the first bytes of a few g's (those picked for a second
//! read), read through a [`ScanPlan`] and kept; and the parallel batch
//! read every large copy goes through.

use super::gscan::ScanPlan;
use crate::memory::BatchRead;

/// The first `window` bytes of every g of a (short) list, by index in
/// that list. A whole `allgs` is never read this way: see [`ScanPlan`].
#[derive(Debug, Default)]
pub(crate) struct GTable {
    window: usize,
    /// The windows, back to back, by position in the plan's order.
    buf: Vec<u8>,
    /// Position of each g's window in `buf`, or `usize::MAX` if unreadable.
    slot: Vec<usize>,
}

impl GTable {
    /// Reads `window` bytes at each address of `gs`. `reuse` is a buffer
    /// from an earlier table (its pages are already faulted in).
    pub(crate) fn read<R: BatchRead + Sync + ?Sized>(
        src: &R,
        gs: &[u64],
        window: usize,
        reuse: Vec<u8>,
    ) -> GTable {
        let mut plan = ScanPlan::new(gs, window);
        let mut buf = reuse;
        buf.resize(plan.len() * window, 0);
        let mut readable = vec![false; plan.len()];
        {
            let mut parts = Vec::new();
            let (mut rest, mut ok): (&mut [u8], &mut [bool]) = (&mut buf, &mut readable);
            for p in plan.share_positions() {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(p.len() * window);
                let (ok_head, ok_tail) = std::mem::take(&mut ok).split_at_mut(p.len());
                parts.push((head, ok_head));
                (rest, ok) = (tail, ok_tail);
            }
            let visit =
                |part: &mut (&mut [u8], &mut [bool]), pos: usize, _: usize, b: Option<&[u8]>| {
                    if let Some(b) = b {
                        part.0[pos * window..(pos + 1) * window].copy_from_slice(b);
                        part.1[pos] = true;
                    }
                };
            plan.scan(src, parts, &visit);
        }
        let mut slot = vec![usize::MAX; gs.len()];
        for (pos, ok) in readable.into_iter().enumerate() {
            if ok {
                slot[plan.index_at(pos)] = pos * window;
            }
        }
        GTable { window, buf, slot }
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
pub(super) fn reader_threads(total: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(4).min(total / PARALLEL_MIN_BYTES).max(1)
}

/// Splits items of the given byte lengths, in order, into consecutive
/// pieces of about `share` bytes each (at least one item per piece):
/// `(items, bytes)` of each piece, one piece per reading thread.
pub(super) fn shares(lens: impl Iterator<Item = usize>, share: usize) -> Vec<(usize, usize)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;

    fn mem_with(ranges: &[(u64, usize)]) -> RegionMemory {
        RegionMemory::addressed(ranges)
    }

    #[test]
    fn far_apart_gs_are_separate_ranges_and_buffers_are_reused() {
        let m = mem_with(&[(0x1000, 0x100), (0x900000, 0x100)]);
        let gs = [0x900000, 0x1000];
        let t = GTable::read(&m, &gs, 0x10, vec![0xAA; 1 << 16]);
        assert_eq!(t.get(0).unwrap()[0], 0x00);
        assert_eq!(t.get(1).unwrap()[3], 0x03);
        assert!(t.into_buffer().capacity() >= 1 << 16);
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
}
