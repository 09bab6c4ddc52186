//! `--format text`: line-compatible with Go's own traceback at
//! GOTRACEBACK=all (or `system` with `--system`), so that panicparse and
//! habits built on crash dumps work unchanged. The lines themselves are
//! [`crate::gotrace::text`]'s.

use super::Outputter;
use crate::dump::DumpSnapshot;
use crate::gotrace::frames::listed;
use crate::gotrace::text::write_goroutine;
use std::io::{self, Write};

/// Go-style text.
pub struct TextOutput {
    /// Show runtime frames and system goroutines (GOTRACEBACK=system).
    pub system: bool,
    /// Add a `labels: {...}` line after the header when labels exist.
    pub labels: bool,
}

impl Outputter for TextOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        let mut first = true;
        for g in dump.goroutines.iter().filter(|g| listed(g, self.system)) {
            if !first {
                writeln!(w)?;
            }
            first = false;
            write_goroutine(dump, g, self.system, self.labels, w)?;
        }
        Ok(())
    }
}
