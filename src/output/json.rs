//! `--format json`: schema `gopeek.dump/1`, one document.

use super::Outputter;
use crate::dump::DumpSnapshot;
use std::io::{self, Write};

/// Pretty or compact JSON.
pub struct JsonOutput {
    pub pretty: bool,
}

impl Outputter for JsonOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        if self.pretty {
            serde_json::to_writer_pretty(&mut *w, dump)?;
        } else {
            serde_json::to_writer(&mut *w, dump)?;
        }
        writeln!(w)
    }
}
