//! The one small memory interface every walker is generic over.
//!
//! A live process ([`crate::process::LiveMemory`]), the static image of an
//! executable ([`crate::binary::elf::GoBinary`]), one copied goroutine stack
//! ([`SliceMemory`]) and the fake target of unit tests and the fuzzer
//! ([`RegionMemory`]) all implement [`Memory`], so the goroutine walker and
//! the unwinder run unchanged on any of them and can be tested without a
//! process.
//!
//! A live process is read while it runs and read again, to confirm, while
//! it is held (the walker's capture strategies); [`BatchRead`] is what
//! makes those reads cheap: a few hundred syscalls for 100k goroutines.

mod region;

pub use region::RegionMemory;

use thiserror::Error;

/// A read that could not be satisfied: the address is unmapped, was not
/// copied, or the process is gone.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("cannot read {len} bytes at {addr:#x}: {reason}")]
pub struct MemoryError {
    /// Start of the failed read, as asked for.
    pub(crate) addr: u64,
    /// Bytes asked for.
    pub(crate) len: usize,
    /// Why, in words for the user (the errno, "not in the snapshot").
    pub(crate) reason: String,
}

impl MemoryError {
    /// The error for a read of `len` bytes at `addr`.
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
    /// Fills `buf` from `addr`, or fails without saying how much was read:
    /// a partial copy of target memory is never used.
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
    /// A byte at `addr`.
    fn read_u8(&self, addr: u64) -> Result<u8, MemoryError> {
        let mut b = [0u8; 1];
        self.read_at(addr, &mut b)?;
        Ok(b[0])
    }
    /// A little-endian `u32` at `addr`.
    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut b = [0u8; 4];
        self.read_at(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// A little-endian `u64` at `addr` (a pointer, a length).
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

/// One contiguous copy of target memory (a goroutine's live stack), read
/// where it was copied from. Reads outside it fail like reads of memory
/// that was never copied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceMemory<'a> {
    /// Target address of `data[0]`.
    pub(crate) base: u64,
    /// The bytes copied from `base` on.
    pub(crate) data: &'a [u8],
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
    fn read_vec_refuses_huge_lengths() {
        let m = RegionMemory::new();
        assert!(m.read_vec(0, 1 << 40, 1 << 20).is_err());
    }

    #[test]
    fn slice_memory_reads_only_its_copy() {
        let m = SliceMemory {
            base: 0x1000,
            data: &[1, 2, 3, 4],
        };
        let mut b = [0u8; 2];
        m.read_at(0x1002, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(m.read_at(0x1003, &mut b).is_err());
        assert!(m.read_at(0xfff, &mut b).is_err());
        assert!(m.read_at(u64::MAX, &mut b).is_err());
    }
}
