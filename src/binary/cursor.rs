//! Bounds-checked reading of bytes that the target (or its binary) controls.
//!
//! Every parser in gopeek reads through [`Cursor`] or the `*_at` helpers so
//! that a truncated or hostile input ends in a [`ReadError`] that names the
//! table and the offset, never in a panic or an unbounded allocation.

use thiserror::Error;

/// Why a read from untrusted bytes failed; the offset is relative to the
/// start of the named table so that a user can find the bad byte.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The table ended before the value did.
    #[error("{what}: unexpected end of data at offset {offset:#x} (wanted {wanted} bytes, {available} left)")]
    UnexpectedEof {
        what: &'static str,
        offset: usize,
        wanted: usize,
        available: usize,
    },
    /// A varint ran past 10 bytes (64 bits): corrupt or looping data.
    #[error("{what}: varint longer than 64 bits at offset {offset:#x}")]
    VarintOverflow { what: &'static str, offset: usize },
    /// A NUL-terminated string had no NUL within the allowed length.
    #[error("{what}: string at offset {offset:#x} is not terminated within {limit} bytes")]
    Unterminated {
        what: &'static str,
        offset: usize,
        limit: usize,
    },
}

/// A forward reader over a byte slice that remembers what it is reading.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// `what` names the table in error messages ("pcsp table", "buildinfo").
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Cursor { data, pos: 0, what }
    }

    /// Starts at `pos`; a start past the end fails on the first read.
    pub(crate) fn at(data: &'a [u8], pos: usize, what: &'static str) -> Self {
        Cursor { data, pos, what }
    }

    /// Takes the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let s = slice_at(self.data, self.pos, n, self.what)?;
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ReadError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ReadError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Go's unsigned LEB128 (`encoding/binary.Uvarint`), at most 10 bytes.
    pub(crate) fn uvarint(&mut self) -> Result<u64, ReadError> {
        let start = self.pos;
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(ReadError::VarintOverflow {
                    what: self.what,
                    offset: start,
                });
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
        Err(ReadError::VarintOverflow {
            what: self.what,
            offset: start,
        })
    }
}

/// `data[off..off+n]`, or an error naming the table and offset.
pub(crate) fn slice_at<'a>(
    data: &'a [u8],
    off: usize,
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], ReadError> {
    match off.checked_add(n) {
        Some(end) if end <= data.len() => Ok(&data[off..end]),
        _ => Err(ReadError::UnexpectedEof {
            what,
            offset: off,
            wanted: n,
            available: data.len().saturating_sub(off),
        }),
    }
}

pub(crate) fn u8_at(data: &[u8], off: usize, what: &'static str) -> Result<u8, ReadError> {
    Ok(slice_at(data, off, 1, what)?[0])
}

pub(crate) fn u32_at(data: &[u8], off: usize, what: &'static str) -> Result<u32, ReadError> {
    Cursor::at(data, off, what).u32()
}

pub(crate) fn i32_at(data: &[u8], off: usize, what: &'static str) -> Result<i32, ReadError> {
    Ok(u32_at(data, off, what)? as i32)
}

pub(crate) fn u64_at(data: &[u8], off: usize, what: &'static str) -> Result<u64, ReadError> {
    Cursor::at(data, off, what).u64()
}

/// A NUL-terminated string of at most `limit` bytes, decoded lossily
/// (symbol names are UTF-8 in practice, but the target controls them).
pub(crate) fn cstr_at<'a>(
    data: &'a [u8],
    off: usize,
    limit: usize,
    what: &'static str,
) -> Result<&'a [u8], ReadError> {
    let tail = data.get(off..).ok_or(ReadError::UnexpectedEof {
        what,
        offset: off,
        wanted: 1,
        available: 0,
    })?;
    let window = &tail[..tail.len().min(limit)];
    match window.iter().position(|&b| b == 0) {
        Some(n) => Ok(&window[..n]),
        None if tail.len() <= limit => Err(ReadError::UnexpectedEof {
            what,
            offset: off,
            wanted: tail.len() + 1,
            available: tail.len(),
        }),
        None => Err(ReadError::Unterminated {
            what,
            offset: off,
            limit,
        }),
    }
}

/// The bytes of a file gopeek parses (an executable, a core): mapped, or
/// owned (tests, the fuzzer, a file read whole).
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trips_and_bounds() {
        let mut c = Cursor::new(&[0x96, 0x01, 0x7f], "t");
        assert_eq!(c.uvarint().unwrap(), 150);
        assert_eq!(c.uvarint().unwrap(), 127);
        assert!(matches!(
            c.uvarint(),
            Err(ReadError::UnexpectedEof { offset: 3, .. })
        ));
        let long = [0xffu8; 11];
        assert!(matches!(
            Cursor::new(&long, "t").uvarint(),
            Err(ReadError::VarintOverflow { .. })
        ));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Cursor::new(&max, "t").uvarint().unwrap(), u64::MAX);
    }

    #[test]
    fn slices_never_overflow() {
        assert!(slice_at(&[1, 2, 3], usize::MAX, 2, "t").is_err());
        assert!(slice_at(&[1, 2, 3], 2, 2, "t").is_err());
        assert_eq!(slice_at(&[1, 2, 3], 1, 2, "t").unwrap(), &[2, 3]);
    }

    #[test]
    fn cstr_limits() {
        assert_eq!(cstr_at(b"ab\0cd", 0, 10, "t").unwrap(), b"ab");
        assert!(matches!(
            cstr_at(b"abcd", 0, 10, "t"),
            Err(ReadError::UnexpectedEof { .. })
        ));
        assert!(matches!(
            cstr_at(b"abcdef\0", 0, 3, "t"),
            Err(ReadError::Unterminated { .. })
        ));
        assert!(cstr_at(b"ab", 7, 3, "t").is_err());
    }
}
