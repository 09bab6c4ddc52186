//! Inline trees: one physical PC becomes every logical frame that Go's
//! traceback prints for it, innermost first.

use super::{Func, FuncId, PclntabError, PclntabVersion};
use crate::binary::cursor::{i32_at, u8_at};

/// `PCDATA_InlTreeIndex`: the pcdata table giving the inline-tree index at a PC.
pub const INL_TREE_PCDATA: u32 = 2;
/// `FUNCDATA_InlTree`: the funcdata holding the inline tree.
pub const INL_TREE_FUNCDATA: u8 = 3;

/// Deepest inline nesting followed before the tree is declared corrupt
/// (Go's inliner stops far earlier).
const MAX_INLINE_DEPTH: usize = 256;

/// One logical frame at a PC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFrame<'a> {
    /// Raw symbol name (use [`super::name_for_print`] to print it).
    pub(crate) name: &'a [u8],
    pub(crate) file: &'a [u8],
    pub(crate) line: i32,
    /// `true` for frames inlined into their caller; they print `(...)`
    /// and no `+0x` offset.
    pub(crate) inlined: bool,
    pub(crate) func_id: FuncId,
}

impl<'a> InlineFrame<'a> {
    pub(crate) fn name_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.name)
    }
    pub(crate) fn file_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.file)
    }
}

struct InlEntry {
    func_id: u8,
    name_off: i32,
    parent_pc: i32,
}

impl<'t, 'a> Func<'t, 'a> {
    fn inl_entry(&self, tree: &[u8], ix: i32) -> Result<InlEntry, PclntabError> {
        let what = "inline tree";
        let ix = ix as usize;
        match self.table().version {
            PclntabVersion::Go120 => {
                let b = ix
                    .checked_mul(16)
                    .ok_or_else(|| PclntabError::BadHeader("inline index overflows".into()))?;
                Ok(InlEntry {
                    func_id: u8_at(tree, b, what)?,
                    name_off: i32_at(tree, b + 4, what)?,
                    parent_pc: i32_at(tree, b + 8, what)?,
                })
            }
            PclntabVersion::Go118 => {
                let b = ix
                    .checked_mul(20)
                    .ok_or_else(|| PclntabError::BadHeader("inline index overflows".into()))?;
                Ok(InlEntry {
                    func_id: u8_at(tree, b + 2, what)?,
                    name_off: i32_at(tree, b + 12, what)?,
                    parent_pc: i32_at(tree, b + 16, what)?,
                })
            }
        }
    }

    /// Every logical frame at `pc`, innermost first; the last one is this
    /// physical function. `pc` should already be the symbolization PC
    /// (return address minus one, except for trap frames).
    ///
    /// Without the `go:func.*` area (no module data found) this degrades
    /// to the physical frame with the innermost file:line.
    pub fn frames_at(&self, pc: u64) -> Result<Vec<InlineFrame<'a>>, PclntabError> {
        let mut out = Vec::new();
        let tree = self.funcdata(INL_TREE_FUNCDATA)?;
        let mut pc = pc;
        if let Some(tree) = tree {
            let mut ix = self.pcdata(INL_TREE_PCDATA, pc)?.unwrap_or(-1);
            while ix >= 0 {
                if out.len() >= MAX_INLINE_DEPTH {
                    return Err(PclntabError::BadHeader(format!(
                        "inline tree of {} deeper than {MAX_INLINE_DEPTH}",
                        self.name()
                    )));
                }
                let e = self.inl_entry(tree, ix)?;
                let (file, line) = self.file_line(pc)?;
                out.push(InlineFrame {
                    name: self.table().funcname(e.name_off)?,
                    file,
                    line,
                    inlined: true,
                    func_id: FuncId(e.func_id),
                });
                let parent = self.entry.wrapping_add(e.parent_pc as u32 as u64);
                if parent < self.entry || parent >= self.end {
                    return Err(PclntabError::BadHeader(format!(
                        "inline parent pc {parent:#x} outside {}",
                        self.name()
                    )));
                }
                pc = parent;
                ix = self.pcdata(INL_TREE_PCDATA, pc)?.unwrap_or(-1);
            }
        }
        let (file, line) = self.file_line(pc)?;
        out.push(InlineFrame {
            name: self.name_bytes()?,
            file,
            line,
            inlined: false,
            func_id: self.func_id,
        });
        Ok(out)
    }

    /// The PC in this physical function that the inline tree leads back
    /// to from `pc`: `pc` itself when nothing is inlined there, else the
    /// call site of the outermost inlined call. Go 1.19's traceback looks
    /// argument liveness up at this PC (later releases at `pc`).
    pub fn outermost_pc(&self, pc: u64) -> Result<u64, PclntabError> {
        let Some(tree) = self.funcdata(INL_TREE_FUNCDATA)? else {
            return Ok(pc);
        };
        let mut pc = pc;
        let mut ix = self.pcdata(INL_TREE_PCDATA, pc)?.unwrap_or(-1);
        let mut depth = 0;
        while ix >= 0 {
            depth += 1;
            if depth > MAX_INLINE_DEPTH {
                return Err(PclntabError::BadHeader(format!(
                    "inline tree of {} deeper than {MAX_INLINE_DEPTH}",
                    self.name()
                )));
            }
            let e = self.inl_entry(tree, ix)?;
            let parent = self.entry.wrapping_add(e.parent_pc as u32 as u64);
            if parent < self.entry || parent >= self.end {
                return Err(PclntabError::BadHeader(format!(
                    "inline parent pc {parent:#x} outside {}",
                    self.name()
                )));
            }
            pc = parent;
            ix = self.pcdata(INL_TREE_PCDATA, pc)?.unwrap_or(-1);
        }
        Ok(pc)
    }
}
