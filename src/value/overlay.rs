//! A frame variable's bytes: at its address, or assembled from the
//! pieces of its location (`DW_OP_piece`) into an [`Overlay`], a memory
//! that serves them at addresses no user process maps, so that the one
//! decoder reads them like any other value.

use super::locals::{FrameVar, Piece, PieceLoc};
use crate::memory::{Memory, MemoryError};

/// Largest variable assembled from pieces.
const MAX_PIECED: u64 = 1 << 16;

/// Where a readable variable is: its address, or the bytes its pieces
/// assemble (read now from `mem`).
#[derive(Debug, Clone)]
pub enum Slot {
    /// In memory, whole.
    At(u64),
    /// Assembled from pieces in several places.
    Bytes(Vec<u8>),
}

/// The slot of `v` (of `size` bytes), reading pieces from `mem`; an
/// escaped variable's pointer is followed.
pub fn slot<M: Memory + ?Sized>(v: &FrameVar, size: u64, mem: &M) -> Result<Slot, String> {
    let pieces = v.loc.as_ref().map_err(Clone::clone)?;
    if let Some(bad) = pieces.iter().find_map(|p| match &p.loc {
        PieceLoc::Unavailable(w) => Some(w.clone()),
        PieceLoc::Addr(_) | PieceLoc::Reg(_) => None,
    }) {
        return Err(bad);
    }
    let whole = match pieces.as_slice() {
        [Piece {
            size: None,
            loc: PieceLoc::Addr(a),
        }] => Slot::At(*a),
        _ => {
            let mut bytes = Vec::new();
            for p in pieces {
                let n = p.size.unwrap_or(if v.escaped { 8 } else { size });
                if (bytes.len() as u64).saturating_add(n) > MAX_PIECED {
                    return Err("variable larger than gopeek assembles from pieces".into());
                }
                match p.loc {
                    PieceLoc::Addr(a) => {
                        let mut b = vec![0u8; n as usize];
                        mem.read_at(a, &mut b).map_err(|e| e.to_string())?;
                        bytes.extend_from_slice(&b);
                    }
                    // The register's low bytes (both architectures are
                    // little-endian).
                    PieceLoc::Reg(v) => match v.to_le_bytes().get(..n as usize) {
                        Some(b) => bytes.extend_from_slice(b),
                        None => return Err(format!("a {n}-byte piece in one 8-byte register")),
                    },
                    PieceLoc::Unavailable(_) => {}
                }
            }
            Slot::Bytes(bytes)
        }
    };
    if !v.escaped {
        return Ok(whole);
    }
    let ptr = match whole {
        Slot::At(a) => {
            let mut b = [0u8; 8];
            mem.read_at(a, &mut b).map_err(|e| e.to_string())?;
            u64::from_le_bytes(b)
        }
        Slot::Bytes(b) if b.len() >= 8 => u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
        Slot::Bytes(_) => return Err("escaped variable's pointer is cut".into()),
    };
    if ptr == 0 {
        return Err("escaped variable's pointer is nil".into());
    }
    Ok(Slot::At(ptr))
}

/// Where the assembled variables live: addresses no user process maps
/// (just under the decoder's highest address, above any user space but
/// a 5-level-paging one's last 16 TiB), one 1 MiB window each.
pub const OVERLAY_BASE: u64 = 0x00ff_f000_0000_0000;

/// A memory that serves assembled variables at [`OVERLAY_BASE`] and
/// everything else from the target.
pub struct Overlay<'m, M: Memory + ?Sized> {
    inner: &'m M,
    bufs: Vec<Vec<u8>>,
}

impl<'m, M: Memory + ?Sized> Overlay<'m, M> {
    /// Over `inner`, nothing assembled yet.
    pub fn new(inner: &'m M) -> Self {
        Overlay {
            inner,
            bufs: Vec::new(),
        }
    }

    /// Places `bytes`; returns their address.
    pub fn place(&mut self, bytes: Vec<u8>) -> u64 {
        let a = OVERLAY_BASE + ((self.bufs.len() as u64) << 20);
        self.bufs.push(bytes);
        a
    }
}

impl<M: Memory + ?Sized> Memory for Overlay<'_, M> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if addr >= OVERLAY_BASE {
            let i = ((addr - OVERLAY_BASE) >> 20) as usize;
            let off = ((addr - OVERLAY_BASE) & 0xf_ffff) as usize;
            let src = self
                .bufs
                .get(i)
                .and_then(|b| b.get(off..off.checked_add(buf.len())?))
                .ok_or_else(|| {
                    MemoryError::new(addr, buf.len(), "outside an assembled variable")
                })?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        self.inner.read_at(addr, buf)
    }
}
