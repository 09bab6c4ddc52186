//! What Go's traceback prints between a function's parentheses: the
//! argument-info funcdata (`FUNCDATA_ArgInfo`, which words of the argument
//! area to print and how they nest) and, for arguments passed in registers
//! (Go 1.17+ register ABI), the liveness of their spill slots
//! (`FUNCDATA_ArgLiveInfo` indexed by `PCDATA_ArgLiveIndex`), which says
//! whether the word in memory is the argument's value or may be stale.
//!
//! The encoding is the compiler's (`cmd/compile/internal/ssagen.emitArgInfo`,
//! `cmd/compile/internal/liveness/arg.go`) and is the same in every release
//! gopeek reads (1.18 through 1.27); the rules that read it are
//! `runtime.printArgs`. Everything here is bounded: a program is at most
//! [`ARG_INFO_MAX_LEN`] bytes, as the runtime assumes.

use super::{Func, PclntabError};
use crate::binary::cursor::ReadError;

/// `FUNCDATA_ArgInfo`.
pub const ARG_INFO_FUNCDATA: u8 = 5;
/// `FUNCDATA_ArgLiveInfo`.
pub const ARG_LIVE_INFO_FUNCDATA: u8 = 6;
/// `PCDATA_ArgLiveIndex`.
pub const ARG_LIVE_INDEX_PCDATA: u32 = 3;

/// Longest argument-info program: `(maxDepth*3+2)*limit + 1` with Go's
/// limits of 5 levels of nesting and 10 components (`abi.TraceArgsMaxLen`).
pub const ARG_INFO_MAX_LEN: usize = (5 * 3 + 2) * 10 + 1;

const END_SEQ: u8 = 0xff;
const START_AGG: u8 = 0xfe;
const END_AGG: u8 = 0xfd;
const DOTDOTDOT: u8 = 0xfc;
const OFFSET_TOO_LARGE: u8 = 0xfb;

/// One instruction of an argument-info program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgOp {
    /// Print the `size`-byte word at `off` bytes into the argument area,
    /// in hex.
    Word {
        /// Offset from the frame's argument pointer (`argp`).
        off: u8,
        /// Bytes (1 to 8); fewer than 8 are the low bytes of the word.
        size: u8,
    },
    /// `{`: an aggregate (struct, array) starts.
    StartAgg,
    /// `}`.
    EndAgg,
    /// `...`: more components than Go prints.
    Dotdotdot,
    /// `_`: a component whose offset does not fit the encoding.
    OffsetTooLarge,
}

/// Decodes an argument-info program (the bytes at the funcdata, up to
/// [`ARG_INFO_MAX_LEN`]); the end marker is not included.
pub fn parse_arg_info(bytes: &[u8]) -> Result<Vec<ArgOp>, PclntabError> {
    let bytes = &bytes[..bytes.len().min(ARG_INFO_MAX_LEN)];
    let eof = |at: usize| {
        PclntabError::Read(ReadError::UnexpectedEof {
            what: "argument info (no end marker)",
            offset: at,
            wanted: 1,
            available: 0,
        })
    };
    let mut ops = Vec::new();
    let mut i = 0;
    loop {
        let o = *bytes.get(i).ok_or_else(|| eof(i))?;
        i += 1;
        ops.push(match o {
            END_SEQ => return Ok(ops),
            START_AGG => ArgOp::StartAgg,
            END_AGG => ArgOp::EndAgg,
            DOTDOTDOT => ArgOp::Dotdotdot,
            OFFSET_TOO_LARGE => ArgOp::OffsetTooLarge,
            off => {
                let size = *bytes.get(i).ok_or_else(|| eof(i))?;
                i += 1;
                ArgOp::Word { off, size }
            }
        });
    }
}

/// The liveness of register-argument spill slots at one PC
/// (`printArgs`'s `isLive`).
#[derive(Debug, Clone, Copy)]
pub struct ArgLiveness<'a> {
    /// The liveness funcdata and the byte offset of this PC's bitmap in it;
    /// `None`: every slot is live (no funcdata, or an index ≤ 0).
    bitmap: Option<(&'a [u8], usize)>,
    /// Smallest offset that needs liveness (stack-passed arguments come
    /// first and are always live); 0xff without liveness data.
    start_offset: u8,
}

impl ArgLiveness<'_> {
    /// Liveness without any data: everything live.
    pub const ALL_LIVE: ArgLiveness<'static> = ArgLiveness {
        bitmap: None,
        start_offset: 0xff,
    };

    /// Offsets at or above this one are spill slots, counted by `slot`.
    pub fn start_offset(&self) -> u8 {
        self.start_offset
    }

    /// Whether the word at `off`, spill slot number `slot` (counted among
    /// words at or above [`Self::start_offset`]), holds the argument's
    /// value; an error when the bitmap runs past its funcdata.
    pub fn is_live(&self, off: u8, slot: u8) -> Result<bool, PclntabError> {
        let Some((info, idx)) = self.bitmap else {
            return Ok(true);
        };
        if off < self.start_offset {
            return Ok(true);
        }
        let at = idx.saturating_add(usize::from(slot / 8));
        let bits = *info
            .get(at)
            .ok_or(PclntabError::Read(ReadError::UnexpectedEof {
                what: "argument liveness bitmap",
                offset: at,
                wanted: 1,
                available: info.len().saturating_sub(at),
            }))?;
        Ok(bits & (1 << (slot % 8)) != 0)
    }
}

impl<'a> Func<'_, 'a> {
    /// The function's argument-info program: `Ok(None)` when it has none
    /// (Go then prints `()`); an error when it has one that cannot be read,
    /// including when the `go:func.*` area it lives in was not found.
    pub fn arg_info(&self) -> Result<Option<Vec<ArgOp>>, PclntabError> {
        if self.funcdata_offset(ARG_INFO_FUNCDATA)?.is_none() {
            return Ok(None);
        }
        match self.funcdata(ARG_INFO_FUNCDATA)? {
            Some(b) => parse_arg_info(b).map(Some),
            None => Err(PclntabError::NoGofunc),
        }
    }

    /// The liveness of the register-argument spill slots at `pc` (the
    /// PC Go passes to `printArgs`).
    pub fn arg_liveness(&self, pc: u64) -> Result<ArgLiveness<'a>, PclntabError> {
        if self.funcdata_offset(ARG_LIVE_INFO_FUNCDATA)?.is_none() {
            return Ok(ArgLiveness::ALL_LIVE);
        }
        let info = self
            .funcdata(ARG_LIVE_INFO_FUNCDATA)?
            .ok_or(PclntabError::NoGofunc)?;
        let start_offset = *info
            .first()
            .ok_or(PclntabError::Read(ReadError::UnexpectedEof {
                what: "argument liveness info",
                offset: 0,
                wanted: 1,
                available: 0,
            }))?;
        let idx = self.pcdata(ARG_LIVE_INDEX_PCDATA, pc)?.unwrap_or(-1);
        Ok(ArgLiveness {
            bitmap: (idx > 0).then_some((info, idx as usize)),
            start_offset,
        })
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
pub(crate) mod tests;
