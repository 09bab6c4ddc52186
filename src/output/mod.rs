//! Output formats behind one small trait, fed by a [`DumpSnapshot`] that
//! is plain data (rbspy's `Outputter` shape).

mod json;
mod text;

pub use json::JsonOutput;
pub use text::TextOutput;

use crate::dump::DumpSnapshot;
use std::io::{self, Write};

/// Writes a snapshot in one format.
pub trait Outputter {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()>;
}
