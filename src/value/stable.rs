//! Reading a running target: every byte a value's decoding read is read a
//! second time, and the value is kept only if both copies agree (as
//! `dump --nonblocking` does for stacks). A writer racing the first read
//! shows up as a difference; the caller decodes again, a few times, then
//! gives up for that value with an error rather than print a torn one.

use crate::memory::{Memory, MemoryError};
use std::cell::RefCell;

/// A memory that remembers what was read through it.
pub struct Recording<'m, M: Memory + ?Sized> {
    inner: &'m M,
    reads: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl<'m, M: Memory + ?Sized> Recording<'m, M> {
    /// Records reads of `inner`.
    pub fn new(inner: &'m M) -> Self {
        Recording {
            inner,
            reads: RefCell::new(Vec::new()),
        }
    }

    /// Reads everything again; `Ok(true)` if every range still holds the
    /// bytes read the first time.
    pub fn still_equal(&self) -> Result<bool, MemoryError> {
        for (addr, bytes) in self.reads.borrow().iter() {
            let mut again = vec![0u8; bytes.len()];
            self.inner.read_at(*addr, &mut again)?;
            if &again != bytes {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Bytes read through this memory.
    pub fn bytes_read(&self) -> u64 {
        self.reads
            .borrow()
            .iter()
            .map(|(_, b)| b.len() as u64)
            .sum()
    }
}

impl<M: Memory + ?Sized> Memory for Recording<'_, M> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.inner.read_at(addr, buf)?;
        self.reads.borrow_mut().push((addr, buf.to_vec()));
        Ok(())
    }
}
