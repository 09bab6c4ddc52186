//! One `_func` record of the pclntab and the per-PC questions asked of it.

use super::{name_for_print, Pclntab, PclntabError, PclntabVersion};
use crate::binary::cursor::{u32_at, u8_at, ReadError};

/// `_func.flag` bits, identical in every Go 1.18+ release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuncFlags(pub u8);

impl FuncFlags {
    /// The function is the top of a call stack (goexit, mstart, rt0_go,
    /// sigtramp): unwinding stops here.
    pub(crate) fn is_top_frame(self) -> bool {
        self.0 & 1 != 0
    }
    /// The function writes SP in ways pcsp cannot describe (systemstack,
    /// mcall, morestack, gogo, asmcgocall): Go's traceback stops after it.
    pub(crate) fn writes_sp(self) -> bool {
        self.0 & 2 != 0
    }
    /// The function is written in assembly (`FuncFlagAsm`): never an
    /// async safe point.
    pub(crate) fn is_asm(self) -> bool {
        self.0 & 4 != 0
    }
}

/// `_func.funcID`. The numbering shifts between releases, so only the value
/// that never moved is named here; special runtime functions are matched by
/// name elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuncId(pub u8);

/// A function of the pclntab with its decoded `_func` header.
#[derive(Clone)]
pub struct Func<'t, 'a> {
    tab: &'t Pclntab<'a>,
    /// Index in the function table.
    pub(crate) index: usize,
    /// First instruction.
    pub entry: u64,
    /// One past the last instruction (the next function's entry).
    pub end: u64,
    name_off: i32,
    pcsp: u32,
    pcfile: u32,
    pcln: u32,
    npcdata: u32,
    cu_offset: u32,
    pub(crate) func_id: FuncId,
    pub(crate) flags: FuncFlags,
    nfuncdata: u8,
    /// Offset of the pcdata array within the table.
    pcdata_at: usize,
}

impl std::fmt::Debug for Func<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("name", &self.name())
            .field("entry", &format_args!("{:#x}", self.entry))
            .field("end", &format_args!("{:#x}", self.end))
            .finish()
    }
}

/// Largest pcdata/funcdata count accepted from a `_func` header.
const MAX_PCDATA: u32 = 64;

impl<'t, 'a> Func<'t, 'a> {
    pub(super) fn parse(
        tab: &'t Pclntab<'a>,
        index: usize,
        entry: u64,
        end: u64,
        funcoff: usize,
    ) -> Result<Self, PclntabError> {
        let d = tab.data;
        let base = tab
            .off
            .functab
            .checked_add(funcoff)
            .ok_or_else(|| PclntabError::BadHeader("function offset overflows".into()))?;
        let w = |o: usize| u32_at(d, base + o, "_func");
        let entryoff = w(0)?;
        if tab.text_start.wrapping_add(u64::from(entryoff)) != entry {
            return Err(PclntabError::BadHeader(format!(
                "_func of function {index} says entry {:#x}, function table says {entry:#x}",
                tab.text_start.wrapping_add(u64::from(entryoff))
            )));
        }
        // Go 1.20 inserted `startLine` before the FuncID.
        let id_at = match tab.version {
            PclntabVersion::Go118 => 0x24,
            PclntabVersion::Go120 => 0x28,
        };
        let npcdata = w(0x1c)?;
        if npcdata > MAX_PCDATA {
            return Err(PclntabError::BadHeader(format!(
                "function {index} claims {npcdata} pcdata tables"
            )));
        }
        Ok(Func {
            tab,
            index,
            entry,
            end,
            name_off: w(4)? as i32,
            pcsp: w(0x10)?,
            pcfile: w(0x14)?,
            pcln: w(0x18)?,
            npcdata,
            cu_offset: w(0x20)?,
            func_id: FuncId(u8_at(d, base + id_at, "_func")?),
            flags: FuncFlags(u8_at(d, base + id_at + 1, "_func")?),
            nfuncdata: u8_at(d, base + id_at + 3, "_func")?,
            pcdata_at: base + id_at + 4,
        })
    }

    /// The symbol name as stored (`main.(*T[go.shape.string]).Wait`).
    pub(crate) fn name_bytes(&self) -> Result<&'a [u8], PclntabError> {
        self.tab.funcname(self.name_off)
    }

    /// The symbol name, lossily decoded; `?` if unreadable.
    pub fn name(&self) -> String {
        match self.name_bytes() {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(_) => "?".into(),
        }
    }

    /// The name as Go's traceback prints it (`F[...]`).
    pub(crate) fn print_name(&self) -> String {
        name_for_print(&self.name()).into_owned()
    }

    /// Bytes of stack the function has allocated at `pc` (amd64: not
    /// counting the return address).
    pub fn sp_delta(&self, pc: u64) -> Result<i32, PclntabError> {
        self.tab.pcvalue(self.pcsp, self.entry, pc)
    }

    /// Source file and line of the instruction at `pc` (innermost inlined
    /// position, as the tables record it).
    pub fn file_line(&self, pc: u64) -> Result<(&'a [u8], i32), PclntabError> {
        let fno = self.tab.pcvalue(self.pcfile, self.entry, pc)?;
        let file = self.tab.file_name(self.cu_offset, fno)?;
        let line = self.tab.pcvalue(self.pcln, self.entry, pc)?;
        Ok((file, line))
    }

    /// Value of pcdata table `table` at `pc`; `None` when the function has
    /// no such table (Go then uses -1).
    pub fn pcdata(&self, table: u32, pc: u64) -> Result<Option<i32>, PclntabError> {
        if table >= self.npcdata {
            return Ok(None);
        }
        let off = u32_at(
            self.tab.data,
            self.pcdata_at + 4 * table as usize,
            "_func pcdata",
        )?;
        if off == 0 {
            return Ok(None);
        }
        self.tab.pcvalue(off, self.entry, pc).map(Some)
    }

    /// Offset (relative to `gofunc`) of funcdata `index`, if present.
    pub(crate) fn funcdata_offset(&self, index: u8) -> Result<Option<u32>, PclntabError> {
        if index >= self.nfuncdata {
            return Ok(None);
        }
        let at = self.pcdata_at + 4 * self.npcdata as usize + 4 * index as usize;
        let off = u32_at(self.tab.data, at, "_func funcdata").map_err(PclntabError::from)?;
        Ok(if off == u32::MAX { None } else { Some(off) })
    }

    /// The bytes of funcdata `index` inside `go:func.*`, when the caller
    /// supplied that area.
    pub(crate) fn funcdata(&self, index: u8) -> Result<Option<&'a [u8]>, PclntabError> {
        match self.funcdata_offset(index)? {
            None => Ok(None),
            Some(off) => match self.tab.gofunc_slice(off) {
                Some(b) => Ok(Some(b)),
                None if self.tab.has_gofunc() => {
                    Err(PclntabError::Read(ReadError::UnexpectedEof {
                        what: "go:func funcdata",
                        offset: off as usize,
                        wanted: 1,
                        available: 0,
                    }))
                }
                None => Ok(None),
            },
        }
    }

    pub(super) fn table(&self) -> &'t Pclntab<'a> {
        self.tab
    }
}
