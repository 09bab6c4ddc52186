//! `gopeek symbolize`'s two forms: `addr2line`-like text lines and the
//! `gopeek.symbolize/1` document.

use crate::binary::symbolize::Symbolized;
use serde::Serialize;
use std::io::{self, Write};

/// `gopeek symbolize --format json` output (schema `gopeek.symbolize/1`);
/// a wrapper so the document says which binary and Go version it is about.
#[derive(Debug, Serialize)]
pub struct SymbolizeReport {
    /// `gopeek.symbolize/1`, so consumers can detect format changes.
    pub schema: &'static str,
    /// The executable, as given on the command line.
    pub path: String,
    /// Go version from its build info (the pclntab layout depends on it).
    pub go_version: String,
    /// One answer per address asked, in order.
    pub addresses: Vec<Symbolized>,
}

/// The text form: one line per logical frame,
/// `0xADDR NAME FILE:LINE`, innermost first, ending in ` inlined` for a
/// frame inlined into the next; an unresolved
/// address prints `0xADDR ? ?:0 (error)`. Names are raw (as in the symbol
/// table), so the lines can be compared with `nm` and `addr2line`.
pub fn write_text(answers: &[Symbolized], w: &mut dyn Write) -> io::Result<()> {
    for a in answers {
        if let Some(e) = &a.error {
            writeln!(w, "{:#x} ? ?:0 ({e})", a.addr)?;
            continue;
        }
        for f in &a.frames {
            writeln!(
                w,
                "{:#x} {} {}:{}{}",
                a.addr,
                f.name,
                f.file,
                f.line,
                if f.inlined { " inlined" } else { "" }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::symbolize::SymFrame;

    #[test]
    fn text_form_marks_inlined_frames_and_errors() {
        let fr = |name: &str, inlined| SymFrame {
            name: name.into(),
            print_name: name.into(),
            file: "/a.go".into(),
            line: 3,
            inlined,
            func_id: 0,
        };
        let answers = vec![
            Symbolized {
                addr: 0x10,
                function: Some("main.f".into()),
                entry: Some(0x10),
                frames: vec![fr("main.g", true), fr("main.f", false)],
                error: None,
            },
            Symbolized {
                addr: 0x1,
                function: None,
                entry: None,
                frames: vec![],
                error: Some("no function".into()),
            },
        ];
        let mut out = Vec::new();
        write_text(&answers, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0x10 main.g /a.go:3 inlined\n0x10 main.f /a.go:3\n0x1 ? ?:0 (no function)\n"
        );
    }
}
