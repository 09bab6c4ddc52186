//! [`RegionMemory`]: target memory made of ranges given by hand.

use super::{BatchRead, Memory, MemoryError};
use std::collections::BTreeMap;

/// A set of address ranges standing for a target's memory: the fake target
/// of unit tests and the fuzzer (g structs, stacks, `allgs`, written where
/// the walker will look). Reads outside every range fail like reads of
/// unmapped memory, and a read may span adjacent ranges.
#[derive(Debug, Default, Clone)]
pub struct RegionMemory {
    regions: BTreeMap<u64, Vec<u8>>,
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
        self.regions.insert(addr, data);
    }

    /// Memory with each `(addr, len)` range mapped, every byte holding
    /// the low byte of its own address: a test can tell from any byte
    /// where it was read.
    #[cfg(test)]
    pub(crate) fn addressed(ranges: &[(u64, usize)]) -> Self {
        let mut m = RegionMemory::new();
        for &(a, len) in ranges {
            m.insert(a, (0..len).map(|i| (a as usize + i) as u8).collect());
        }
        m
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
            let (start, data) = self
                .regions
                .range(..=cur)
                .next_back()
                .ok_or_else(|| MemoryError::new(addr, buf.len(), "not in the snapshot"))?;
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
}
