//! Go's PC-line table (`.gopclntab`): the one table a stripped Go binary
//! always keeps, because the runtime itself needs it for tracebacks, stack
//! growth and the GC.
//!
//! [`Pclntab`] is a view over the table's bytes with bounded accessors; it
//! maps a PC to its function ([`Func`]), and a function and PC to the
//! stack-pointer delta (`pcsp`), file, line and inline tree. Formats: the
//! Go 1.18/1.19 layout (magic `0xfffffff0`) and the 1.20+ layout
//! (`0xfffffff1`, every Go release since). The older 1.2 and 1.16 layouts
//! are recognised and refused by name.

mod args;
mod func;
mod inline;

/// Synthetic tables for other modules' unit tests.
#[cfg(test)]
pub(crate) use args::tests as tests_support;
pub use args::{
    parse_arg_info, ArgLiveness, ArgOp, ARG_INFO_FUNCDATA, ARG_INFO_MAX_LEN, ARG_LIVE_INDEX_PCDATA,
    ARG_LIVE_INFO_FUNCDATA,
};
pub use func::{Func, FuncFlags, FuncId};
pub use inline::{InlineFrame, INL_TREE_FUNCDATA, INL_TREE_PCDATA};

use crate::binary::cursor::{cstr_at, slice_at, u32_at, u64_at, ReadError};
use thiserror::Error;

/// Longest function or file name accepted; Go's longest generic names are a
/// few KiB.
pub(crate) const MAX_NAME_LEN: usize = 64 * 1024;

/// What went wrong reading a pclntab, with where.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PclntabError {
    #[error("pclntab: bad magic {magic:#010x} (not a Go 1.2+ pclntab)")]
    BadMagic { magic: u32 },
    #[error("pclntab: format of Go {format} is not supported (gopeek reads Go 1.18 and later)")]
    UnsupportedFormat { format: &'static str },
    #[error("pclntab: implausible header: {0}")]
    BadHeader(String),
    #[error("pclntab: no function contains pc {pc:#x}")]
    NoFunc { pc: u64 },
    #[error("pclntab: function table entry {index} is out of range")]
    BadFuncIndex { index: usize },
    #[error("pclntab: pc-value table at offset {offset:#x} does not cover pc {pc:#x}")]
    PcNotCovered { offset: u32, pc: u64 },
    #[error("pclntab: pc-value table at offset {offset:#x} exceeds its step budget (loop or corruption)")]
    TableTooLong { offset: u32 },
    #[error("pclntab: funcdata lives in go:func.*, which was not found (no module data)")]
    NoGofunc,
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Which pclntab layout a binary carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum PclntabVersion {
    /// `0xfffffff0`: Go 1.18 and 1.19.
    Go118,
    /// `0xfffffff1`: Go 1.20 through 1.27 (at least).
    Go120,
}

impl PclntabVersion {
    /// Human label used by `gopeek info`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            PclntabVersion::Go118 => "1.18",
            PclntabVersion::Go120 => "1.20",
        }
    }
}

/// Recognises the pclntab magic numbers; used by the magic scan when
/// section headers are gone.
pub(crate) fn magic_version(magic: u32) -> Result<PclntabVersion, PclntabError> {
    match magic {
        0xfffffff0 => Ok(PclntabVersion::Go118),
        0xfffffff1 => Ok(PclntabVersion::Go120),
        0xfffffffa => Err(PclntabError::UnsupportedFormat {
            format: "1.16/1.17",
        }),
        0xfffffffb => Err(PclntabError::UnsupportedFormat { format: "1.2-1.15" }),
        magic => Err(PclntabError::BadMagic { magic }),
    }
}

/// Where the pieces of the table are, relative to the header.
#[derive(Debug, Clone, Copy)]
struct Offsets {
    funcname: usize,
    cu: usize,
    filetab: usize,
    pctab: usize,
    functab: usize,
}

/// A parsed pclntab header plus the slices it points into.
///
/// `data` starts at the pcHeader; it may run past the table's end (the
/// rest of the segment), which costs nothing since every read is bounded.
#[derive(Clone)]
pub struct Pclntab<'a> {
    data: &'a [u8],
    addr: u64,
    version: PclntabVersion,
    quantum: u8,
    nfunc: usize,
    nfiles: usize,
    text_start: u64,
    off: Offsets,
    gofunc: Option<(u64, &'a [u8])>,
}

impl std::fmt::Debug for Pclntab<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pclntab")
            .field("addr", &format_args!("{:#x}", self.addr))
            .field("version", &self.version)
            .field("nfunc", &self.nfunc)
            .field("text_start", &format_args!("{:#x}", self.text_start))
            .finish()
    }
}

impl<'a> Pclntab<'a> {
    /// Parses the header at the start of `data`, which sits at link address
    /// `addr`. `text_start` overrides the header's textStart (required for
    /// Go 1.26+, where the header stores 0; take it from the module data).
    pub fn parse(data: &'a [u8], addr: u64, text_start: Option<u64>) -> Result<Self, PclntabError> {
        let what = "pclntab header";
        let magic = u32_at(data, 0, what)?;
        let version = magic_version(magic)?;
        let hdr = slice_at(data, 0, 0x48, what)?;
        if hdr[4] != 0 || hdr[5] != 0 {
            return Err(PclntabError::BadHeader("padding bytes are not zero".into()));
        }
        let quantum = hdr[6];
        if !matches!(quantum, 1 | 2 | 4) {
            return Err(PclntabError::BadHeader(format!(
                "instruction size quantum {quantum}"
            )));
        }
        if hdr[7] != 8 {
            return Err(PclntabError::BadHeader(format!(
                "pointer size {} (only 64-bit targets are supported)",
                hdr[7]
            )));
        }
        let word = |i: usize| u64_at(data, 8 + 8 * i, what);
        let nfunc = word(0)?;
        let nfiles = word(1)?;
        let header_text_start = word(2)?;
        let field = |i: usize, name: &str| -> Result<usize, PclntabError> {
            let v = word(i)?;
            if v < 0x48 || v >= data.len() as u64 {
                return Err(PclntabError::BadHeader(format!(
                    "{name} offset {v:#x} outside the table ({:#x} bytes)",
                    data.len()
                )));
            }
            Ok(v as usize)
        };
        let off = Offsets {
            funcname: field(3, "funcname")?,
            cu: field(4, "cu")?,
            filetab: field(5, "filetab")?,
            pctab: field(6, "pctab")?,
            functab: field(7, "functab")?,
        };
        // functab holds nfunc+1 pairs of u32.
        let need = nfunc.checked_add(1).and_then(|n| n.checked_mul(8));
        match need {
            Some(n) if (off.functab as u64).saturating_add(n) <= data.len() as u64 => {}
            _ => {
                return Err(PclntabError::BadHeader(format!(
                    "{nfunc} functions do not fit in the table"
                )))
            }
        }
        let text_start = match text_start {
            Some(t) => t,
            None if header_text_start != 0 => header_text_start,
            None => {
                return Err(PclntabError::BadHeader(
                    "textStart is 0 (Go 1.26+): the module data's text address is needed".into(),
                ))
            }
        };
        Ok(Pclntab {
            data,
            addr,
            version,
            quantum,
            nfunc: nfunc as usize,
            nfiles: nfiles.min(u32::MAX as u64) as usize,
            text_start,
            off,
            gofunc: None,
        })
    }

    /// Supplies the `go:func.*` area (module data's `gofunc`) that funcdata
    /// offsets are relative to; without it there are no inline trees.
    pub fn with_gofunc(mut self, gofunc_addr: u64, gofunc_bytes: &'a [u8]) -> Self {
        self.gofunc = Some((gofunc_addr, gofunc_bytes));
        self
    }

    pub(crate) fn version(&self) -> PclntabVersion {
        self.version
    }
    /// Link address of the pcHeader.
    pub(crate) fn addr(&self) -> u64 {
        self.addr
    }
    pub(crate) fn nfunc(&self) -> usize {
        self.nfunc
    }
    pub(crate) fn nfiles(&self) -> usize {
        self.nfiles
    }
    /// Base of every function's `entryoff`.
    pub fn text_start(&self) -> u64 {
        self.text_start
    }
    /// Offsets of funcnametab and the function table, for validating a
    /// module-data candidate (its slices point at these).
    pub(crate) fn funcname_offset(&self) -> u64 {
        self.off.funcname as u64
    }
    pub(crate) fn functab_offset(&self) -> u64 {
        self.off.functab as u64
    }
    pub(crate) fn has_gofunc(&self) -> bool {
        self.gofunc.is_some()
    }

    /// `(entryoff, funcoff)` of function `i`; `i == nfunc` is the end-of-text
    /// sentinel.
    fn functab_entry(&self, i: usize) -> Result<(u32, u32), PclntabError> {
        if i > self.nfunc {
            return Err(PclntabError::BadFuncIndex { index: i });
        }
        let o = self.off.functab + 8 * i;
        Ok((
            u32_at(self.data, o, "functab")?,
            u32_at(self.data, o + 4, "functab")?,
        ))
    }

    /// Entry PC of function `i` (or the end of text for `i == nfunc`).
    pub(crate) fn entry_of(&self, i: usize) -> Result<u64, PclntabError> {
        Ok(self
            .text_start
            .wrapping_add(u64::from(self.functab_entry(i)?.0)))
    }

    /// Function `i` of the table, in address order.
    pub(crate) fn func(&self, i: usize) -> Result<Func<'_, 'a>, PclntabError> {
        if i >= self.nfunc {
            return Err(PclntabError::BadFuncIndex { index: i });
        }
        let (entryoff, funcoff) = self.functab_entry(i)?;
        let end = self.entry_of(i + 1)?;
        Func::parse(
            self,
            i,
            self.text_start.wrapping_add(u64::from(entryoff)),
            end,
            funcoff as usize,
        )
    }

    /// The function whose code holds `pc`, by binary search over entries.
    pub fn find_func(&self, pc: u64) -> Result<Func<'_, 'a>, PclntabError> {
        let text_end = self.entry_of(self.nfunc)?;
        if pc < self.text_start || pc >= text_end || self.nfunc == 0 {
            return Err(PclntabError::NoFunc { pc });
        }
        let rel = pc - self.text_start;
        let (mut lo, mut hi) = (0usize, self.nfunc);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if u64::from(self.functab_entry(mid)?.0) <= rel {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let f = self.func(lo)?;
        if pc < f.entry || pc >= f.end {
            return Err(PclntabError::NoFunc { pc });
        }
        Ok(f)
    }

    /// Iterates over all functions (errors included, so a caller can count
    /// bad entries instead of stopping at the first).
    pub fn funcs(&self) -> impl Iterator<Item = Result<Func<'_, 'a>, PclntabError>> + '_ {
        (0..self.nfunc).map(move |i| self.func(i))
    }

    /// Looks a function up by its exact name (linear; used for the handful
    /// of runtime functions the locator disassembles).
    pub(crate) fn func_by_name(&self, name: &str) -> Option<Func<'_, 'a>> {
        self.funcs().filter_map(Result::ok).find(|f| {
            f.name_bytes()
                .map(|n| n == name.as_bytes())
                .unwrap_or(false)
        })
    }

    /// A name from funcnametab.
    pub(crate) fn funcname(&self, name_off: i32) -> Result<&'a [u8], PclntabError> {
        if name_off < 0 {
            return Err(PclntabError::BadHeader(format!(
                "negative name offset {name_off}"
            )));
        }
        Ok(cstr_at(
            self.data,
            self.off.funcname + name_off as usize,
            MAX_NAME_LEN,
            "funcnametab",
        )?)
    }

    /// File name of file number `fno` within compilation unit `cu`.
    pub(crate) fn file_name(&self, cu: u32, fno: i32) -> Result<&'a [u8], PclntabError> {
        if fno < 0 {
            return Ok(b"?");
        }
        let idx = (cu as usize)
            .checked_add(fno as usize)
            .and_then(|i| i.checked_mul(4));
        let idx = idx.ok_or_else(|| PclntabError::BadHeader("file index overflows".into()))?;
        let fileoff = u32_at(self.data, self.off.cu.saturating_add(idx), "cutab")?;
        if fileoff == u32::MAX {
            return Ok(b"?");
        }
        Ok(cstr_at(
            self.data,
            self.off.filetab + fileoff as usize,
            MAX_NAME_LEN,
            "filetab",
        )?)
    }

    /// Decodes the pc-value table at `table_off` (relative to pctab) of a
    /// function starting at `entry`, and returns the value in effect at
    /// `target` (Go's `pcvalue`). Bounded: the walk takes at most one step
    /// per two table bytes.
    pub(crate) fn pcvalue(
        &self,
        table_off: u32,
        entry: u64,
        target: u64,
    ) -> Result<i32, PclntabError> {
        if table_off == 0 {
            return Err(PclntabError::PcNotCovered {
                offset: 0,
                pc: target,
            });
        }
        let start = self.off.pctab.saturating_add(table_off as usize);
        let tail = self
            .data
            .get(start..)
            .ok_or(PclntabError::Read(ReadError::UnexpectedEof {
                what: "pctab",
                offset: start,
                wanted: 1,
                available: 0,
            }))?;
        let mut cur = crate::binary::cursor::Cursor::new(tail, "pc-value table");
        let mut pc = entry;
        let mut val: i32 = -1;
        let mut first = true;
        let budget = tail.len() / 2 + 2;
        for _ in 0..budget {
            let uvdelta = cur.uvarint()?;
            if uvdelta == 0 && !first {
                return Err(PclntabError::PcNotCovered {
                    offset: table_off,
                    pc: target,
                });
            }
            let delta = if uvdelta & 1 != 0 {
                !((uvdelta >> 1) as i64)
            } else {
                (uvdelta >> 1) as i64
            };
            val = val.wrapping_add(delta as i32);
            let pcdelta = cur.uvarint()?;
            pc = pc.wrapping_add(pcdelta.wrapping_mul(u64::from(self.quantum)));
            first = false;
            if target < pc {
                return Ok(val);
            }
        }
        Err(PclntabError::TableTooLong { offset: table_off })
    }

    /// Bytes at a funcdata address (inside `go:func.*`).
    pub(crate) fn gofunc_slice(&self, funcdata_off: u32) -> Option<&'a [u8]> {
        let (_, bytes) = self.gofunc?;
        bytes.get(funcdata_off as usize..)
    }
}

/// Go's `funcNameForPrint`: generic instantiations print as `F[...]`
/// instead of their shape types, as in every traceback since Go 1.18.
pub fn name_for_print(name: &str) -> std::borrow::Cow<'_, str> {
    let (Some(i), Some(j)) = (name.find('['), name.rfind(']')) else {
        return std::borrow::Cow::Borrowed(name);
    };
    if j <= i {
        return std::borrow::Cow::Borrowed(name);
    }
    std::borrow::Cow::Owned(format!("{}[...]{}", &name[..i], &name[j + 1..]))
}

#[cfg(test)]
mod tests;
