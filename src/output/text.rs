//! `--format text`: line-compatible with Go's own traceback at
//! GOTRACEBACK=all (or `system` with `--system`), so that panicparse and
//! habits built on crash dumps work unchanged.

use super::Outputter;
use crate::dump::{DumpSnapshot, Frame, GoroutineSnapshot};
use crate::walk::labels::{go_quote, needs_quoting};
use crate::walk::traceback::{elide, Elided};
use std::io::{self, Write};

/// Go-style text.
pub struct TextOutput {
    /// Show runtime frames and system goroutines (GOTRACEBACK=system).
    pub system: bool,
    /// Add a `labels: {...}` line after the header when labels exist.
    pub labels: bool,
}

/// One frame: the function line and the `\tfile:line +0xoff` line, with
/// ` fp= sp= pc=` at GOTRACEBACK=system, as Go prints them.
fn write_frame(w: &mut dyn Write, f: &Frame, system: bool) -> io::Result<()> {
    writeln!(w, "{}(...)", f.function)?;
    write!(w, "\t{}:{}", f.file, f.line)?;
    if !f.inlined {
        if let Some(off) = f.offset {
            write!(w, " +{off:#x}")?;
        }
        if system {
            write!(w, " fp={:#x} sp={:#x} pc={:#x}", f.fp, f.sp, f.pc)?;
        }
    }
    writeln!(w)
}

impl TextOutput {
    /// The header line exactly as Go prints it. `labels_minor` is the Go
    /// minor version when the target prints labels in headers (1.26 puts
    /// them inside the brackets, quoted; 1.27 after, quoted only if needed).
    pub fn header(g: &GoroutineSnapshot, labels_minor: Option<u32>) -> String {
        Self::header_at(g, labels_minor, None)
    }

    /// [`Self::header`], with Go 1.22+'s ` gp=0x.. m=N mp=0x..` (or
    /// ` m=nil`) when printing at GOTRACEBACK=system (`system_minor`).
    pub fn header_at(
        g: &GoroutineSnapshot,
        labels_minor: Option<u32>,
        system_minor: Option<u32>,
    ) -> String {
        let mut h = format!("goroutine {}", g.id);
        if system_minor.is_some_and(|m| m >= 22) {
            h.push_str(&format!(" gp={:#x}", g.g_addr));
            match g.m {
                Some((id, addr)) => h.push_str(&format!(" m={id} mp={addr:#x}")),
                None => h.push_str(" m=nil"),
            }
        }
        h.push_str(&format!(" [{}", g.status));
        if let Some(m) = g.wait_minutes {
            h.push_str(&format!(", {m} minutes"));
        }
        if g.locked_to_thread {
            h.push_str(", locked to thread");
        }
        let labels = g.labels.as_ref().filter(|l| !l.is_empty());
        match (labels_minor, labels) {
            (Some(26), Some(l)) => {
                let parts: Vec<String> = l
                    .iter()
                    .map(|(k, v)| format!("{}: {}", go_quote(k), go_quote(v)))
                    .collect();
                h.push_str(&format!(" labels:{{{}}}]", parts.join(", ")));
            }
            (Some(m), Some(l)) if m >= 27 => {
                let q = |s: &str| {
                    if needs_quoting(s) {
                        go_quote(s)
                    } else {
                        s.to_string()
                    }
                };
                let parts: Vec<String> = l
                    .iter()
                    .map(|(k, v)| format!("{}: {}", q(k), q(v)))
                    .collect();
                h.push_str(&format!("] {{{}}}", parts.join(", ")));
            }
            _ => h.push(']'),
        }
        h.push(':');
        h
    }

    fn write_goroutine(
        &self,
        dump: &DumpSnapshot,
        g: &GoroutineSnapshot,
        w: &mut dyn Write,
    ) -> io::Result<()> {
        let labels_minor = if dump.header_labels {
            Some(dump.go_minor)
        } else {
            None
        };
        let system_minor = if self.system {
            Some(dump.go_minor)
        } else {
            None
        };
        writeln!(w, "{}", Self::header_at(g, labels_minor, system_minor))?;
        if self.labels && !dump.header_labels {
            if let Some(l) = &g.labels {
                let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
                writeln!(w, "labels: {{{}}}", parts.join(", "))?;
            }
        }
        // What Go prints for a running goroutine it cannot unwind.
        if g.frames.is_empty()
            && g.error.is_some()
            && g.raw_status == crate::walk::gstruct::G_RUNNING
        {
            writeln!(w, "\tgoroutine running on other thread; stack unavailable")?;
        }
        // Go 1.19 counts physical frames for its limit; approximate with
        // non-inlined frames seen so far.
        let mut phys = Vec::with_capacity(g.frames.len());
        let mut n = 0usize;
        for f in g.frames.iter() {
            phys.push(n);
            if !f.inlined {
                n += 1;
            }
        }
        match elide(dump.go_minor, &g.frames, &phys, self.system) {
            Elided::All(v) => {
                for f in v {
                    write_frame(w, f, self.system)?;
                }
            }
            Elided::Middle { head, elided, tail } => {
                for f in head {
                    write_frame(w, f, self.system)?;
                }
                writeln!(w, "...{elided} frames elided...")?;
                for f in tail {
                    write_frame(w, f, self.system)?;
                }
            }
            Elided::Truncated(v) => {
                for f in v {
                    write_frame(w, f, self.system)?;
                }
                writeln!(w, "...additional frames elided...")?;
            }
        }
        if let Some(c) = g.created_by.as_ref().filter(|c| self.system || !c.runtime) {
            match c.goroutine {
                Some(p) => writeln!(w, "created by {} in goroutine {p}", c.function)?,
                None => writeln!(w, "created by {}", c.function)?,
            }
            if c.offset > 0 {
                writeln!(w, "\t{}:{} +{:#x}", c.file, c.line, c.offset)?;
            } else {
                writeln!(w, "\t{}:{}", c.file, c.line)?;
            }
        }
        Ok(())
    }
}

impl Outputter for TextOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        let mut first = true;
        for g in dump.goroutines.iter().filter(|g| self.system || !g.system) {
            if !first {
                writeln!(w)?;
            }
            first = false;
            self.write_goroutine(dump, g, w)?;
        }
        Ok(())
    }
}
