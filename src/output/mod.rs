//! Output formats behind one small trait, fed by a [`DumpSnapshot`] that
//! is plain data (rbspy's `Outputter` shape).

mod folded;
mod json;
mod pprof;
mod svg;
mod text;

pub use folded::{folded_stacks, FoldedOutput};
pub use json::JsonOutput;
pub use pprof::{encode_profile, PprofOutput};
pub use svg::SvgOutput;
pub use text::TextOutput;

use crate::dump::DumpSnapshot;
use std::io::{self, Write};

/// Writes a snapshot in one format.
pub trait Outputter {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()>;
}
