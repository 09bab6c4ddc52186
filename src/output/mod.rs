//! Output formats behind one small trait, fed by a [`DumpSnapshot`] that
//! is plain data (rbspy's `Outputter` shape).

mod cpu_formats;
mod cpu_pprof;
mod folded;
pub mod group;
pub mod info;
mod json;
pub mod leaks;
mod pprof;
pub mod print;
pub mod ps;
pub mod sched;
mod svg;
pub mod symbolize;
mod text;
pub mod threads;
mod top;

pub use cpu_formats::{cpu_folded_stacks, write_cpu_folded, write_cpu_speedscope, write_cpu_svg};
pub use cpu_pprof::{encode_cpu_profile, write_cpu_pprof, GOROUTINE_LABEL};
pub use folded::{folded_stacks, FoldedOutput};
pub use json::JsonOutput;
pub use pprof::{encode_profile, PprofOutput};
pub use svg::SvgOutput;
pub use text::TextOutput;
pub use top::{render_top, TopView};

use crate::dump::DumpSnapshot;
use std::io::{self, Write};

/// Writes a snapshot in one format.
pub trait Outputter {
    /// Writes the whole snapshot; errors are the writer's.
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()>;
}

/// One JSON document and a newline: indented for a person at a terminal,
/// compact for pipes. Every report but the dump (whose compact form
/// shares frame lists, see [`JsonOutput`]) is written through here.
pub fn write_json<T: serde::Serialize + ?Sized>(
    v: &T,
    pretty: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *w, v)?;
    } else {
        serde_json::to_writer(&mut *w, v)?;
    }
    writeln!(w)
}
