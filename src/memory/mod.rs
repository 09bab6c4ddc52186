//! The one small memory interface every walker is generic over.
//!
//! A live process ([`crate::process::LiveMemory`]), the copy taken while the
//! target was stopped ([`RegionMemory`]), the static image of an executable
//! ([`crate::binary::elf::GoBinary`]) and the fakes of unit tests all implement
//! [`Memory`], so the goroutine walker and the unwinder run unchanged on any
//! of them and can be tested without a process.

use std::collections::BTreeMap;
use thiserror::Error;

/// A read that could not be satisfied: the address is unmapped, was not
/// copied, or the process is gone.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("cannot read {len} bytes at {addr:#x}: {reason}")]
pub struct MemoryError {
    pub addr: u64,
    pub len: usize,
    pub reason: String,
}

impl MemoryError {
    pub fn new(addr: u64, len: usize, reason: impl Into<String>) -> Self {
        MemoryError {
            addr,
            len,
            reason: reason.into(),
        }
    }
}

/// Reads the target's address space. Implementations fill all of `buf` or fail.
pub trait Memory {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
}

impl<M: Memory + ?Sized> Memory for &M {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read_at(addr, buf)
    }
}

/// Typed little-endian helpers over [`Memory`] (linux/amd64 and arm64 are
/// both little-endian with 8-byte pointers).
pub trait MemoryExt: Memory {
    fn read_u8(&self, addr: u64) -> Result<u8, MemoryError> {
        let mut b = [0u8; 1];
        self.read_at(addr, &mut b)?;
        Ok(b[0])
    }
    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut b = [0u8; 4];
        self.read_at(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read_at(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Reads `len` bytes, refusing lengths over `limit` so that a corrupt
    /// length word in the target never turns into a huge allocation.
    fn read_vec(&self, addr: u64, len: u64, limit: u64) -> Result<Vec<u8>, MemoryError> {
        if len > limit {
            return Err(MemoryError::new(
                addr,
                len.min(usize::MAX as u64) as usize,
                format!("length exceeds the limit of {limit} bytes"),
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_at(addr, &mut v)?;
        Ok(v)
    }
    /// A Go `string` header `{ptr, len}` at `addr`, decoded lossily.
    fn read_go_string(&self, addr: u64, limit: u64) -> Result<String, MemoryError> {
        let ptr = self.read_u64(addr)?;
        let len = self.read_u64(addr.wrapping_add(8))?;
        if len == 0 {
            return Ok(String::new());
        }
        let v = self.read_vec(ptr, len, limit)?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    }
}

impl<M: Memory + ?Sized> MemoryExt for M {}

/// A set of copied address ranges: what gopeek took from a stopped target
/// (read later, after detach) and what unit tests build by hand.
///
/// Ranges live in a few large buffers ("arenas"), one per batch copied,
/// rather than one allocation per range: a 100k-goroutine snapshot holds
/// 200k ranges, and allocating them one by one while the target is held
/// cost more than the copying itself.
#[derive(Debug, Default, Clone)]
pub struct RegionMemory {
    regions: BTreeMap<u64, Slot>,
    arenas: Vec<Vec<u8>>,
    bytes: usize,
}

/// Where one range's bytes sit.
#[derive(Debug, Clone, Copy)]
struct Slot {
    arena: usize,
    off: usize,
    len: usize,
}

impl RegionMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a range; later ranges win where they overlap earlier ones only
    /// if they start at the same address (the walker never overlaps copies
    /// except for identical re-reads).
    pub fn insert(&mut self, addr: u64, data: Vec<u8>) {
        let len = data.len();
        self.arenas.push(data);
        self.put(
            addr,
            Slot {
                arena: self.arenas.len() - 1,
                off: 0,
                len,
            },
        );
    }

    /// Adds many ranges backed by one buffer: `pieces` are
    /// `(address, offset in buffer, length)`; pieces outside the buffer
    /// are ignored.
    pub fn insert_arena(&mut self, buffer: Vec<u8>, pieces: &[(u64, usize, usize)]) {
        let arena = self.arenas.len();
        let size = buffer.len();
        self.arenas.push(buffer);
        for &(addr, off, len) in pieces {
            if off.checked_add(len).is_some_and(|e| e <= size) {
                self.put(addr, Slot { arena, off, len });
            }
        }
    }

    fn put(&mut self, addr: u64, slot: Slot) {
        self.bytes += slot.len;
        if let Some(old) = self.regions.insert(addr, slot) {
            self.bytes -= old.len;
        }
    }

    fn slice(&self, slot: Slot) -> &[u8] {
        &self.arenas[slot.arena][slot.off..slot.off + slot.len]
    }

    /// Total bytes held, for the memory budget and the report.
    pub fn total_bytes(&self) -> usize {
        self.bytes
    }

    pub fn region_count(&self) -> usize {
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

impl RegionMemory {
    /// Moves every range of `other` into `self`.
    pub fn absorb(&mut self, other: RegionMemory) {
        let shift = self.arenas.len();
        self.arenas.extend(other.arenas);
        for (addr, slot) in other.regions {
            self.put(
                addr,
                Slot {
                    arena: slot.arena + shift,
                    ..slot
                },
            );
        }
    }

    /// Copies the listed ranges out of this memory into a new one,
    /// skipping those that are not held (the copier for tests and for
    /// re-reading a snapshot).
    pub fn copy_ranges(&self, ranges: &[(u64, usize)]) -> RegionMemory {
        let mut out = RegionMemory::new();
        for &(addr, len) in ranges {
            let mut buf = vec![0u8; len];
            if self.read_at(addr, &mut buf).is_ok() {
                out.insert(addr, buf);
            }
        }
        out
    }
}

/// Something that reads many ranges in one go (batched
/// `process_vm_readv` for a live process), so the walker reads 100k
/// goroutines with a few hundred syscalls, not 200k. One result per
/// request, in order; a failing range fails alone.
pub trait BatchRead: Memory {
    /// Fills each request's buffer from its address.
    fn read_batch(&self, requests: &mut [(u64, &mut [u8])]) -> Vec<Result<(), MemoryError>> {
        requests
            .iter_mut()
            .map(|(addr, buf)| self.read_at(*addr, buf))
            .collect()
    }
}

impl BatchRead for RegionMemory {}

/// One contiguous copy of target memory (a goroutine's live stack), read
/// where it was copied from. Reads outside it fail like reads of memory
/// that was never copied.
#[derive(Debug, Clone, Copy)]
pub struct SliceMemory<'a> {
    /// Target address of `data[0]`.
    pub base: u64,
    pub data: &'a [u8],
}

impl Memory for SliceMemory<'_> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let off = addr
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|&o| {
                o.checked_add(buf.len())
                    .is_some_and(|e| e <= self.data.len())
            })
            .ok_or_else(|| MemoryError::new(addr, buf.len(), "not in the snapshot"))?;
        buf.copy_from_slice(&self.data[off..off + buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(m.total_bytes(), 8);
    }

    #[test]
    fn read_vec_refuses_huge_lengths() {
        let m = RegionMemory::new();
        assert!(m.read_vec(0, 1 << 40, 1 << 20).is_err());
    }
}
