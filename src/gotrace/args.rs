//! Go's `printArgs` (runtime/traceback.go): what a traceback prints between
//! a physical frame's parentheses, from the function's argument-info
//! program, the liveness of its register-argument spill slots and the
//! words of its argument area.
//!
//! The printing rules are the same in every release gopeek reads (1.19,
//! 1.21-1.27): each word in hex (`0x1`), `?` after a word that may be
//! stale (a register argument whose spill slot was not written at this
//! PC), `{`...`}` around aggregates, `...` where Go stopped listing
//! components, `_` for a component whose offset does not fit the encoding,
//! `, ` between items. What changed is the PC the liveness is looked up at
//! ([`liveness_at_outermost_pc`]). Inlined frames print `...` and are not
//! handled here.

use crate::binary::pclntab::{ArgLiveness, ArgOp, PclntabError};
use std::fmt::Write as _;

/// Whether the version looks argument liveness up at the PC the inline
/// tree leads back to (the outermost inlined call site) rather than the
/// frame's own symbolization PC. Go 1.19's `gentraceback` moved `tracepc`
/// up the inline tree while printing the inlined frames and then passed it
/// to `printArgs`; from 1.21 the unwinder passes `u.symPC()`.
pub(crate) fn liveness_at_outermost_pc(minor: u32) -> bool {
    minor < 21
}

/// One item of an argument list, resolved for one PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// A word of `size` bytes (the next of the frame's words).
    Word {
        size: u8,
        maybe_stale: bool,
    },
    Open,
    Close,
    Dots,
    Underscore,
}

/// A frame's argument list as Go would print it at one PC, waiting for the
/// words: computed once per stack shape, rendered once per distinct set of
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgFormat {
    pieces: Box<[Piece]>,
    words: usize,
}

/// Resolves `ops` with the spill-slot liveness at the frame's PC, counting
/// spill slots the way `printArgs` does (only words at or above the
/// liveness start offset advance the slot index).
pub(crate) fn resolve(ops: &[ArgOp], live: &ArgLiveness<'_>) -> Result<ArgFormat, PclntabError> {
    let mut pieces = Vec::with_capacity(ops.len());
    let mut slot: u8 = 0;
    let mut words = 0;
    for op in ops {
        pieces.push(match *op {
            ArgOp::Word { off, size } => {
                let maybe_stale = !live.is_live(off, slot)?;
                if off >= live.start_offset() {
                    slot = slot.wrapping_add(1);
                }
                words += 1;
                Piece::Word { size, maybe_stale }
            }
            ArgOp::StartAgg => Piece::Open,
            ArgOp::EndAgg => Piece::Close,
            ArgOp::Dotdotdot => Piece::Dots,
            ArgOp::OffsetTooLarge => Piece::Underscore,
        });
    }
    Ok(ArgFormat {
        pieces: pieces.into(),
        words,
    })
}

impl ArgFormat {
    /// How many words the list prints (in [`ArgOp::Word`] order).
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    /// The text between the parentheses, given the frame's words in order
    /// (each already read as its size's low bytes); `None` when a word
    /// could not be read, so that nothing is printed that Go would not.
    pub(crate) fn render(&self, words: &[Option<u64>]) -> Option<String> {
        if words.len() != self.words {
            return None;
        }
        let mut s = String::with_capacity(8 * self.words + 4);
        let mut start = true;
        let mut next = words.iter();
        for p in self.pieces.iter() {
            let comma = |s: &mut String| {
                if !start {
                    s.push_str(", ");
                }
            };
            match *p {
                Piece::Open => {
                    comma(&mut s);
                    s.push('{');
                    start = true;
                    continue;
                }
                Piece::Close => s.push('}'),
                Piece::Dots => {
                    comma(&mut s);
                    s.push_str("...");
                }
                Piece::Underscore => {
                    comma(&mut s);
                    s.push('_');
                }
                Piece::Word { size, maybe_stale } => {
                    comma(&mut s);
                    let x = (*next.next()?)?;
                    let x = if size < 8 {
                        x & ((1u64 << (u32::from(size) * 8)) - 1)
                    } else {
                        x
                    };
                    let _ = write!(s, "{x:#x}");
                    if maybe_stale {
                        s.push('?');
                    }
                }
            }
            start = false;
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::pclntab::parse_arg_info;

    fn fmt(program: &[u8], words: &[u64]) -> String {
        let ops = parse_arg_info(program).unwrap();
        let f = resolve(&ops, &ArgLiveness::ALL_LIVE).unwrap();
        let w: Vec<Option<u64>> = words.iter().map(|&w| Some(w)).collect();
        f.render(&w).unwrap()
    }

    #[test]
    fn prints_like_print_args() {
        // f(a int, b string): three words.
        assert_eq!(
            fmt(&[0, 8, 8, 8, 16, 8, 0xff], &[1, 0xc000010000, 5]),
            "0x1, 0xc000010000, 0x5"
        );
        // No arguments at all.
        assert_eq!(fmt(&[0xff], &[]), "");
        // An aggregate, a nested one, and an empty struct (goexit's `{}`).
        assert_eq!(
            fmt(
                &[0, 8, 0xfe, 8, 4, 0xfe, 12, 2, 0xfd, 0xfd, 0xfe, 0xfd, 0xff],
                &[7, 0x1_0000_0003, 0xffff_0002]
            ),
            "0x7, {0x3, {0x2}}, {}"
        );
        assert_eq!(fmt(&[0xfe, 0xfd, 0xff], &[]), "{}");
        // Sizes below 8 keep the low bytes; size 0 prints 0x0, as Go's
        // shift by 64 does.
        assert_eq!(
            fmt(&[0, 1, 1, 2, 3, 0, 0xff], &[0x1ff, 0xabcdef, 9]),
            "0xff, 0xcdef, 0x0"
        );
        // Truncation and offsets too large for the encoding.
        assert_eq!(
            fmt(&[0, 8, 0xfb, 0xfe, 8, 8, 0xfc, 0xfd, 0xfc, 0xff], &[1, 2]),
            "0x1, _, {0x2, ...}, ..."
        );
    }

    #[test]
    fn marks_maybe_stale_spill_slots() {
        // Liveness: start offset 8, bitmap at byte 1 = slot 1 live only.
        let (tab, gofunc) = crate::binary::pclntab::tests_support::liveness_table(
            &[0, 8, 8, 8, 16, 8, 24, 8, 0xff],
            &[8, 0b10],
        );
        let p = crate::binary::pclntab::Pclntab::parse(&tab, 0, None)
            .unwrap()
            .with_gofunc(0, &gofunc);
        let f = p.find_func(0x401000).unwrap();
        let ops = f.arg_info().unwrap().unwrap();
        let at = resolve(&ops, &f.arg_liveness(0x401010).unwrap()).unwrap();
        // Offset 0 is below the start offset (stack-passed): always live.
        // Offsets 8, 16, 24 are spill slots 0, 1, 2.
        assert_eq!(
            at.render(&[Some(1), Some(2), Some(3), Some(4)]).unwrap(),
            "0x1, 0x2?, 0x3, 0x4?"
        );
        // At a PC with index -1 everything is live.
        let all = resolve(&ops, &f.arg_liveness(0x401000).unwrap()).unwrap();
        assert_eq!(
            all.render(&[Some(1), Some(2), Some(3), Some(4)]).unwrap(),
            "0x1, 0x2, 0x3, 0x4"
        );
        // A word that could not be read: nothing, rather than a guess.
        assert_eq!(at.render(&[Some(1), None, Some(3), Some(4)]), None);
        assert_eq!(at.render(&[Some(1)]), None);
    }
}
