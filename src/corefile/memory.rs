//! The dead process's memory: the core's PT_LOAD bytes, and for the
//! read-only ranges a core leaves out (text, rodata, the pclntab) the
//! executable's bytes at the file offset NT_FILE (or the executable's own
//! program headers) gives. A read fails, naming why, where neither holds
//! the bytes; it never returns zeros for memory that is not there.

use super::{CoreFile, CoreSegment};
use crate::memory::{BatchRead, Memory, MemoryError};

/// A range of memory that came from the executable's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset of `start`.
    pub file_offset: u64,
}

/// Bytes of the executable used to fill in what the core left out.
struct ExeFill {
    bytes: Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
    ranges: Vec<ExeRange>,
}

/// [`Memory`] over a core file (and its executable).
pub struct CoreMemory {
    core: CoreFile,
    exe: Option<ExeFill>,
}

impl CoreMemory {
    /// Memory from the core alone.
    pub fn new(core: CoreFile) -> CoreMemory {
        CoreMemory { core, exe: None }
    }

    /// Fills read-only ranges the core left out from `exe` (the
    /// executable's bytes) at `ranges`.
    pub fn with_executable(
        mut self,
        exe: Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
        mut ranges: Vec<ExeRange>,
    ) -> CoreMemory {
        ranges.sort_by_key(|r| r.start);
        self.exe = Some(ExeFill { bytes: exe, ranges });
        self
    }

    /// The core underneath.
    pub fn core(&self) -> &CoreFile {
        &self.core
    }

    fn segment(&self, addr: u64) -> Option<&CoreSegment> {
        let segs = &self.core.segments;
        let i = segs.partition_point(|s| s.vaddr <= addr).checked_sub(1)?;
        let s = &segs[i];
        (addr - s.vaddr < s.memsz).then_some(s)
    }

    /// Copies as much as possible of `buf` from `addr` on, from one
    /// source; returns how many bytes, or why none.
    fn read_piece(&self, addr: u64, buf: &mut [u8]) -> Result<usize, String> {
        let seg = self.segment(addr);
        if let Some(s) = seg {
            let off = addr - s.vaddr;
            if off < s.present {
                let n = (s.present - off).min(buf.len() as u64) as usize;
                let start = (s.offset + off) as usize;
                let src = self
                    .core
                    .bytes
                    .get(start..start + n)
                    .ok_or_else(|| "beyond the end of the core file".to_string())?;
                buf[..n].copy_from_slice(src);
                return Ok(n);
            }
        }
        if let Some(fill) = &self.exe {
            let i = fill
                .ranges
                .partition_point(|r| r.start <= addr)
                .checked_sub(1);
            if let Some(r) = i.map(|i| fill.ranges[i]).filter(|r| addr < r.end) {
                if seg.is_none_or(|s| !s.writable) {
                    let mut n = (r.end - addr).min(buf.len() as u64);
                    // Stop where the core's own bytes start again.
                    if let Some(next) = self.core.segments.iter().find(|s| s.vaddr > addr) {
                        n = n.min(next.vaddr - addr);
                    }
                    let start = r.file_offset.saturating_add(addr - r.start);
                    let src = usize::try_from(start)
                        .ok()
                        .and_then(|st| fill.bytes.get(st..st.checked_add(n as usize)?))
                        .ok_or_else(|| "beyond the end of the executable".to_string())?;
                    buf[..n as usize].copy_from_slice(src);
                    return Ok(n as usize);
                }
            }
        }
        Err(match seg {
            Some(s) if s.present < s.filesz.min(s.memsz) => {
                "not in the core: the core file is truncated".to_string()
            }
            Some(_) => "not in the core: the writer left this mapping out".to_string(),
            None => "not mapped in the core".to_string(),
        })
    }
}

impl Memory for CoreMemory {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if addr.checked_add(buf.len() as u64).is_none() {
            return Err(MemoryError::new(addr, buf.len(), "range wraps around"));
        }
        let mut done = 0;
        while done < buf.len() {
            let a = addr + done as u64;
            match self.read_piece(a, &mut buf[done..]) {
                Ok(0) => return Err(MemoryError::new(addr, buf.len(), "not in the core")),
                Ok(n) => done += n,
                Err(why) => return Err(MemoryError::new(addr, buf.len(), why)),
            }
        }
        Ok(())
    }
}

impl BatchRead for CoreMemory {}
