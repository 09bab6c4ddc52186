//! `gopeek symbolize`: addresses to every logical frame (inlined ones
//! included), from the pclntab alone.
//!
//! A stripped Go binary has no DWARF and no `.symtab`, so `addr2line`, gdb
//! and `nm` have nothing to say about it; the pclntab is still there because
//! the runtime needs it. This module turns link-time addresses into frames
//! with exactly the data gopeek's own traceback uses, which makes it both a
//! user tool (a PC from a log or a core on a stripped binary) and the way
//! the tests compare gopeek's reading of the pclntab with binutils.

use crate::binary::pclntab::{name_for_print, Func, InlineFrame, Pclntab, PclntabError};
use serde::Serialize;
use std::sync::Arc;

/// One logical frame at an address. Both name forms are kept because they
/// serve different readers: `name` is what the symbol table and DWARF hold
/// (so it can be compared with `nm`/`addr2line`), `print_name` is what Go's
/// traceback and `gopeek dump` print (`F[...]` for generic instantiations).
///
/// `gopeek dump` (through the walker's per-PC cache) and `gopeek symbolize`
/// both take their frames from [`frames_at`], so they cannot disagree
/// about a PC; the strings are shared (`Arc<str>`) because the walker
/// hands them to many goroutines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymFrame {
    /// Raw symbol name, e.g. `main.(*T[go.shape.int]).Wait`.
    pub(crate) name: Arc<str>,
    /// Go's traceback form, e.g. `main.(*T[...]).Wait`.
    pub(crate) print_name: Arc<str>,
    /// Source file as the pclntab records it; `?` when the function has no
    /// file table (linker markers such as `go:textfipsstart`).
    pub(crate) file: Arc<str>,
    /// Source line; 0 together with file `?`.
    pub(crate) line: i32,
    /// `true` when this frame was inlined into the next one.
    pub(crate) inlined: bool,
    /// The function's FuncID, which Go's frame filter reads (wrappers,
    /// gopanic...); not part of the JSON.
    #[serde(skip)]
    pub(crate) func_id: u8,
}

impl SymFrame {
    /// The one frame Go's `funcline` answers where the tables say nothing
    /// about a PC: the function's name at `?:0`.
    pub(crate) fn unknown_line(f: &Func<'_, '_>) -> SymFrame {
        let name = f.name();
        SymFrame {
            print_name: name_for_print(&name).into(),
            name: name.into(),
            file: "?".into(),
            line: 0,
            inlined: false,
            func_id: f.func_id.0,
        }
    }

    /// A PC outside every function.
    pub(crate) fn unknown() -> SymFrame {
        SymFrame {
            name: "?".into(),
            print_name: "?".into(),
            file: "?".into(),
            line: 0,
            inlined: false,
            func_id: 0,
        }
    }
}

/// The answer for one address: the physical function holding it and the
/// logical frames, innermost first (the last is the physical function).
/// Unresolvable addresses keep their place with `error` set, so a list of
/// answers always lines up with the list of questions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbolized {
    /// The address asked about (link-time).
    pub(crate) addr: u64,
    /// Raw name of the physical function containing `addr`.
    pub(crate) function: Option<String>,
    /// Entry address of that function.
    pub(crate) entry: Option<u64>,
    /// Logical frames, innermost first; empty when `error` is set.
    pub(crate) frames: Vec<SymFrame>,
    /// Why the address could not be symbolized.
    pub(crate) error: Option<String>,
}

/// Parses an address the way users paste them: hexadecimal, with or
/// without `0x`/`0X`, optionally with `_` separators.
pub fn parse_addr(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let hex: String = hex.chars().filter(|&c| c != '_').collect();
    if hex.is_empty() {
        return Err(format!("{s:?} is not a hexadecimal address"));
    }
    u64::from_str_radix(&hex, 16).map_err(|_| format!("{s:?} is not a hexadecimal address"))
}

fn frame_from(f: &InlineFrame<'_>) -> SymFrame {
    let name = f.name_str();
    SymFrame {
        print_name: name_for_print(&name).into(),
        name: name.into(),
        file: f.file_str().into(),
        line: f.line,
        inlined: f.inlined,
        func_id: f.func_id.0,
    }
}

/// The frames of `f` at `pc`. Where the tables say nothing about `pc` —
/// a function without a pcfile or pcln table (the linker's marker
/// symbols), or the alignment padding after a function's last
/// instruction — there is one frame at `?:0`, which is what Go's own
/// `funcline` answers there.
pub fn frames_at(f: &Func<'_, '_>, pc: u64) -> Result<Vec<SymFrame>, PclntabError> {
    match f.frames_at(pc) {
        Ok(frames) => Ok(frames.iter().map(frame_from).collect()),
        Err(PclntabError::PcNotCovered { .. }) => {
            f.name_bytes()?;
            Ok(vec![SymFrame::unknown_line(f)])
        }
        Err(e) => Err(e),
    }
}

fn answer(addr: u64, func: Result<Func<'_, '_>, PclntabError>) -> Symbolized {
    let mut s = Symbolized {
        addr,
        function: None,
        entry: None,
        frames: Vec::new(),
        error: None,
    };
    let f = match func {
        Ok(f) => f,
        Err(e) => {
            s.error = Some(e.to_string());
            return s;
        }
    };
    s.function = Some(f.name());
    s.entry = Some(f.entry);
    match frames_at(&f, addr) {
        Ok(frames) => s.frames = frames,
        Err(e) => s.error = Some(e.to_string()),
    }
    s
}

/// Symbolizes one link-time address. `addr` is taken as the PC of the
/// instruction itself (not a return address: subtract one first for those).
pub fn symbolize_addr(tab: &Pclntab<'_>, addr: u64) -> Symbolized {
    answer(addr, tab.find_func(addr))
}

/// Symbolizes the entry of every function in the pclntab, in table order;
/// a damaged table entry yields an answer with `error` instead of
/// stopping the walk.
pub fn symbolize_all_functions(tab: &Pclntab<'_>) -> Vec<Symbolized> {
    (0..tab.nfunc())
        .map(|i| {
            let addr = tab.entry_of(i).unwrap_or(0);
            answer(addr, tab.func(i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_or_without_prefix() {
        assert_eq!(parse_addr("0x401000"), Ok(0x401000));
        assert_eq!(parse_addr("401000"), Ok(0x401000));
        assert_eq!(parse_addr("0X40_1000"), Ok(0x401000));
        assert!(parse_addr("0x").is_err());
        assert!(parse_addr("main.main").is_err());
        assert!(parse_addr("0x1ffffffffffffffff").is_err());
    }
}
