//! [`RegionMemory`]: target memory made of ranges given by hand.

use super::{BatchRead, Memory, MemoryError};
use std::collections::BTreeMap;

/// A set of address ranges standing for a target's memory: the fake target
/// of unit tests and the fuzzer (g structs, stacks, `allgs`, written where
/// the walker will look), and what [`crate::process::LiveMemory`] returns
/// when asked to copy a list of ranges. Reads outside every range fail
/// like reads of unmapped memory, and a read may span adjacent ranges.
///
/// Ranges may share one buffer ("arena", see [`Self::insert_arena`]), so
/// that many ranges copied in one batch cost one allocation, not one each.
#[derive(Debug, Default, Clone)]
pub struct RegionMemory {
    regions: BTreeMap<u64, Slot>,
    arenas: Vec<Vec<u8>>,
}

/// Where one range's bytes sit.
#[derive(Debug, Clone, Copy)]
struct Slot {
    arena: usize,
    off: usize,
    len: usize,
}

impl RegionMemory {
    /// Memory with nothing mapped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `data` at `addr`. A range inserted at the start address of an
    /// earlier one replaces it (tests change a g or a stack this way);
    /// other overlaps are not supported.
    pub fn insert(&mut self, addr: u64, data: Vec<u8>) {
        let len = data.len();
        self.arenas.push(data);
        let arena = self.arenas.len() - 1;
        self.regions.insert(addr, Slot { arena, off: 0, len });
    }

    /// Maps many ranges backed by one buffer: `pieces` are
    /// `(address, offset in buffer, length)`; pieces outside the buffer
    /// are ignored.
    pub(crate) fn insert_arena(&mut self, buffer: Vec<u8>, pieces: &[(u64, usize, usize)]) {
        let arena = self.arenas.len();
        let size = buffer.len();
        self.arenas.push(buffer);
        for &(addr, off, len) in pieces {
            if off.checked_add(len).is_some_and(|e| e <= size) {
                self.regions.insert(addr, Slot { arena, off, len });
            }
        }
    }

    fn slice(&self, slot: Slot) -> &[u8] {
        &self.arenas[slot.arena][slot.off..slot.off + slot.len]
    }

    /// Number of ranges mapped.
    #[cfg(test)]
    pub(crate) fn region_count(&self) -> usize {
        self.regions.len()
    }
}

impl Memory for RegionMemory {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let end = addr
            .checked_add(buf.len() as u64)
            .ok_or_else(|| MemoryError::new(addr, buf.len(), "address wraps around"))?;
        // Ranges may be adjacent; assemble the read across them.
        let mut cur = addr;
        let mut out = 0usize;
        while cur < end {
            let (start, slot) = self
                .regions
                .range(..=cur)
                .next_back()
                .ok_or_else(|| MemoryError::new(addr, buf.len(), "not in the snapshot"))?;
            let data = self.slice(*slot);
            let off = (cur - start) as usize;
            if off >= data.len() {
                return Err(MemoryError::new(addr, buf.len(), "not in the snapshot"));
            }
            let n = (data.len() - off).min((end - cur) as usize);
            buf[out..out + n].copy_from_slice(&data[off..off + n]);
            out += n;
            cur += n as u64;
        }
        Ok(())
    }
}

/// One read per range: the fake has no syscalls to save.
impl BatchRead for RegionMemory {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryExt;

    #[test]
    fn region_reads_span_adjacent_ranges() {
        let mut m = RegionMemory::new();
        m.insert(0x1000, vec![1, 2, 3, 4]);
        m.insert(0x1004, vec![5, 6, 7, 8]);
        let mut b = [0u8; 6];
        m.read_at(0x1001, &mut b).unwrap();
        assert_eq!(b, [2, 3, 4, 5, 6, 7]);
        assert!(m.read_at(0x1006, &mut [0u8; 4]).is_err());
        assert!(m.read_at(0xfff, &mut [0u8; 1]).is_err());
        assert!(m.read_at(u64::MAX, &mut [0u8; 2]).is_err());
        assert_eq!(m.read_u32(0x1000).unwrap(), 0x04030201);
        assert_eq!(m.region_count(), 2);
    }

    #[test]
    fn a_range_inserted_at_the_same_address_replaces_the_old_one() {
        let mut m = RegionMemory::new();
        m.insert(0x1000, vec![1, 2, 3, 4]);
        m.insert(0x1000, vec![9, 9]);
        assert_eq!(m.read_u8(0x1001).unwrap(), 9);
        assert!(m.read_at(0x1002, &mut [0u8; 1]).is_err());
        assert_eq!(m.region_count(), 1);
    }

    #[test]
    fn arena_pieces_outside_the_buffer_are_ignored() {
        let mut m = RegionMemory::new();
        m.insert_arena(
            vec![1, 2, 3, 4],
            &[(0x10, 0, 2), (0x20, 2, 2), (0x30, 3, 2)],
        );
        assert_eq!(m.read_u8(0x21).unwrap(), 4);
        assert!(m.read_u8(0x30).is_err());
        assert_eq!(m.region_count(), 2);
    }
}
