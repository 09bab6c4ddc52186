//! `--format folded`: one line per distinct stack with its goroutine count
//! (`root;…;leaf;[status] N`), the input of flamegraph.pl, inferno and
//! speedscope. The status is the leaf, so a flame graph separates the same
//! code parked in different states, like `--group` buckets do.

use super::Outputter;
use crate::dump::DumpSnapshot;
use crate::gotrace::frames::{listed, shown_frames};
use crate::gotrace::status::without_scan;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Folded stacks of every listed goroutine.
pub struct FoldedOutput {
    /// Runtime frames and system goroutines too (GOTRACEBACK=system).
    pub system: bool,
}

/// A frame name safe inside a folded line: `;` separates frames, so it is
/// replaced; spaces are fine (the count is after the last one).
fn clean(name: &str) -> String {
    name.replace(';', ":").replace('\n', " ")
}

/// `(stack, count)` pairs, stacks root first, sorted by stack: what both
/// the folded and the SVG outputs draw.
pub fn folded_stacks(dump: &DumpSnapshot, system: bool) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in dump.goroutines.iter().filter(|g| listed(g, system)) {
        let frames: Vec<_> = shown_frames(g, system).collect();
        let mut line = String::new();
        if frames.is_empty() {
            line.push_str("(stack unavailable);");
        }
        for f in frames.iter().rev() {
            line.push_str(&clean(&f.function));
            line.push(';');
        }
        line.push('[');
        line.push_str(&clean(without_scan(&g.status)));
        line.push(']');
        *counts.entry(line).or_default() += 1;
    }
    counts.into_iter().collect()
}

impl Outputter for FoldedOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        for (stack, n) in folded_stacks(dump, self.system) {
            writeln!(w, "{stack} {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::filter::tests::{frame, goroutine};

    #[test]
    fn stacks_root_first_with_status_leaf() {
        let a = goroutine(
            1,
            "chan receive (scan)",
            vec![
                frame("runtime.gopark", "/go/proc.go", 1, true),
                frame("main.leaf", "/src/a.go", 2, false),
                frame("main.root;x", "/src/a.go", 3, false),
            ],
            "main.main",
        );
        let mut b = a.clone();
        b.id = 2;
        b.status = "chan receive".into();
        let mut running = goroutine(3, "running", vec![], "main.main");
        running.error = Some("stack unavailable".into());
        let mut sys = a.clone();
        sys.system = true;
        let dump = DumpSnapshot {
            schema: "gopeek.dump/1",
            nspid: None,
            container: None,
            pid: 1,
            exe: "x".into(),
            go_version: "go1.27".into(),
            go_minor: 27,
            header_labels: false,
            taken_at: String::new(),
            pause_us: 0,
            mode: "consistent",
            note: None,
            goroutines: vec![a, b, running, sys],
            warnings: vec![],
        };
        assert_eq!(
            folded_stacks(&dump, false),
            vec![
                ("(stack unavailable);[running]".to_string(), 1),
                ("main.root:x;main.leaf;[chan receive]".to_string(), 2),
            ]
        );
        let with_system = folded_stacks(&dump, true);
        assert_eq!(
            with_system[1],
            (
                "main.root:x;main.leaf;runtime.gopark;[chan receive]".to_string(),
                3
            )
        );
    }
}
