//! A goroutine as Go's traceback prints it, line for line: the header
//! (status, minutes, lock, labels in the forms of 1.26 and 1.27, and
//! `gp= m= mp=` at GOTRACEBACK=system), the frames with their elision
//! markers, and `created by`.

use super::frames::{elide, physical_indices, Elided};
use super::status::G_RUNNING;
use crate::dump::{DumpSnapshot, Frame, GoroutineSnapshot};
use std::io::{self, Write};

/// Go's runtime `quoted` (what Go 1.26+ prints for labels in headers):
/// strconv.Quote-style escaping.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go 1.27's `tracebackStringNeedsQuoting`.
pub(crate) fn needs_quoting(s: &str) -> bool {
    s.chars()
        .any(|r| !(r.is_ascii_alphanumeric() || r == '.' || r == '/' || r == '_'))
}

/// One frame: the function line with its arguments (`...` where they are
/// unknown, as Go prints for inlined frames) and the `\tfile:line +0xoff`
/// line, with ` fp= sp= pc=` at GOTRACEBACK=system, as Go prints them.
fn write_frame(w: &mut dyn Write, f: &Frame, args: Option<&str>, system: bool) -> io::Result<()> {
    let args = if f.inlined { None } else { args };
    writeln!(w, "{}({})", f.function, args.unwrap_or("..."))?;
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

/// [`Self::header`], with Go 1.22+'s ` gp=0x.. m=N mp=0x..` (or
/// ` m=nil`) when printing at GOTRACEBACK=system (`system_minor`).
pub(crate) fn header_at(
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

/// One goroutine's block as Go prints it. `system` is GOTRACEBACK=system
/// (runtime frames, `fp= sp= pc=`, `gp= m= mp=`); `extra_labels` adds
/// gopeek's own `labels: {...}` line when the target does not print
/// labels in its headers.
pub(crate) fn write_goroutine(
    dump: &DumpSnapshot,
    g: &GoroutineSnapshot,
    system: bool,
    extra_labels: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    let labels_minor = dump.header_labels.then_some(dump.go_minor);
    let system_minor = system.then_some(dump.go_minor);
    writeln!(w, "{}", header_at(g, labels_minor, system_minor))?;
    if extra_labels && !dump.header_labels {
        if let Some(l) = &g.labels {
            let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
            writeln!(w, "labels: {{{}}}", parts.join(", "))?;
        }
    }
    // What Go prints for a running goroutine it cannot unwind.
    if g.frames.is_empty() && g.error.is_some() && g.raw_status == G_RUNNING {
        writeln!(w, "\tgoroutine running on other thread; stack unavailable")?;
    }
    // Go 1.19 counts physical frames for its limit; approximate with
    // non-inlined frames seen so far.
    let phys = physical_indices(&g.frames);
    // The elision hands back references into `g.frames`; their index finds
    // each frame's arguments.
    let args_of = |f: &Frame| -> Option<&str> {
        let at = (f as *const Frame as usize).checked_sub(g.frames.as_ptr() as usize)?;
        let args = g.args.as_ref()?;
        args.get(at / std::mem::size_of::<Frame>().max(1))?
            .as_deref()
    };
    let frame = |w: &mut dyn Write, f: &Frame| write_frame(w, f, args_of(f), system);
    match elide(dump.go_minor, &g.frames, &phys, system) {
        Elided::All(v) => {
            for f in v {
                frame(w, f)?;
            }
        }
        Elided::Middle { head, elided, tail } => {
            for f in head {
                frame(w, f)?;
            }
            writeln!(w, "...{elided} frames elided...")?;
            for f in tail {
                frame(w, f)?;
            }
        }
        Elided::Truncated(v) => {
            for f in v {
                frame(w, f)?;
            }
            writeln!(w, "...additional frames elided...")?;
        }
    }
    if let Some(c) = g.created_by.as_ref().filter(|c| system || !c.runtime) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
        assert!(needs_quoting("user id"));
        assert!(!needs_quoting("acme/v1.2_x"));
    }
}
