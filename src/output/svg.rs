//! `--format svg`: a goroutine flame graph (inferno), written directly so
//! that one command gives a picture to open in a browser: width is the
//! number of goroutines, the top of each tower is the `[status]` leaf, and
//! clicking zooms, as in flamegraph.pl's interactive SVG.

use super::folded::folded_stacks;
use super::Outputter;
use crate::dump::DumpSnapshot;
use inferno::flamegraph::{self, Options};
use std::io::{self, Write};

/// Flame graph of every listed goroutine's stack.
pub struct SvgOutput {
    /// Runtime frames and system goroutines too (GOTRACEBACK=system).
    pub system: bool,
}

impl Outputter for SvgOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        let stacks = folded_stacks(dump, self.system);
        if stacks.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no goroutines to draw (every goroutine was filtered out)",
            ));
        }
        let total: usize = stacks.iter().map(|(_, n)| n).sum();
        let lines: Vec<String> = stacks.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let mut opts = Options::default();
        opts.title = format!("goroutines of pid {} ({})", dump.pid, dump.exe);
        opts.subtitle = Some(format!(
            "{total} goroutines, {} taken {}",
            dump.go_version, dump.taken_at
        ));
        opts.count_name = "goroutines".to_string();
        opts.name_type = "Function:".to_string();
        // Deterministic colours: the same function has the same colour in
        // every snapshot, so two pictures compare at a glance.
        opts.hash = true;
        flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), w)
            .map_err(|e| io::Error::other(format!("drawing the flame graph: {e}")))
    }
}
