//! `gopeek leaks` as text: the ranked clusters, their counts per sample
//! and the stack each one is parked in.

use crate::analyze::leaks::{LeaksReport, Verdict};
use std::io::{self, Write};

fn counts_text(c: &[usize]) -> String {
    c.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The text report: growing clusters in full (counts, rate, creation
/// site, oldest goroutine, example stack), persistent ones on two lines,
/// transient ones only counted unless `all`.
pub fn write_text(r: &LeaksReport, system: bool, all: bool, w: &mut dyn Write) -> io::Result<()> {
    let span = r.elapsed_s.last().copied().unwrap_or(0.0);
    writeln!(
        w,
        "gopeek leaks: pid {} ({}, {}), {} samples over {:.1} s; goroutines: {}",
        r.pid,
        r.exe,
        r.go_version,
        r.taken_at.len(),
        span,
        counts_text(&r.goroutines)
    )?;
    if r.growing == 0 {
        writeln!(w, "no growing cluster")?;
    } else {
        writeln!(w, "{} growing cluster(s)", r.growing)?;
    }
    let mut hidden = 0;
    for c in &r.clusters {
        if c.verdict == Verdict::Transient && !all {
            hidden += 1;
            continue;
        }
        writeln!(w)?;
        let created = c
            .created_by
            .as_ref()
            .map(|s| format!("created by {} at {}:{}", s.function, s.file, s.line))
            .unwrap_or_else(|| "no creation site".into());
        let verdict = match c.verdict {
            Verdict::Growing => "GROWING",
            Verdict::Persistent => "persistent",
            Verdict::Transient => "transient",
        };
        writeln!(
            w,
            "{verdict} [{}] {:+.1}/min, counts {}",
            c.status,
            c.growth_per_min,
            counts_text(&c.counts)
        )?;
        writeln!(w, "    {created}")?;
        if c.verdict != Verdict::Growing {
            // The innermost shown frames say where it is parked.
            let shown: Vec<_> = c.frames.iter().filter(|f| system || !f.runtime).collect();
            if let Some(f) = shown.first() {
                let names: Vec<&str> = shown.iter().take(3).map(|f| &*f.function).collect();
                let more = if shown.len() > 3 { " ← …" } else { "" };
                writeln!(
                    w,
                    "    at {}{more} ({}:{})",
                    names.join(" ← "),
                    f.file,
                    f.line
                )?;
            }
            continue;
        }
        writeln!(w, "    why: {}", c.reason)?;
        if let Some(o) = &c.oldest {
            writeln!(
                w,
                "    oldest: goroutine {} (in since sample {}), {} minutes blocked",
                o.id,
                o.first_seen + 1,
                o.wait_minutes
            )?;
        }
        writeln!(w, "    example stack:")?;
        for f in c.frames.iter().filter(|f| system || !f.runtime) {
            writeln!(w, "    {}(...)", f.function)?;
            writeln!(w, "    \t{}:{}", f.file, f.line)?;
        }
    }
    if hidden > 0 {
        writeln!(
            w,
            "\n{hidden} transient clusters not shown (--all shows them)"
        )?;
    }
    if r.omitted_clusters > 0 {
        writeln!(w, "{} more clusters not shown (--top)", r.omitted_clusters)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::group::Similarity;
    use crate::analyze::leaks::analyze;
    use crate::analyze::leaks::tests::{leak, snap, worker};
    use crate::dump::{DumpSnapshot, GoroutineSnapshot};

    #[test]
    fn clusters_ranked_and_reported() {
        let samples: Vec<(f64, DumpSnapshot)> = (0..4u64)
            .map(|i| {
                let mut gs: Vec<GoroutineSnapshot> = (100..108).map(worker).collect();
                gs.extend((0..3 * (i + 1)).map(|j| leak(1000 + j)));
                // A burst in sample 2 only, same stack as the workers but
                // another creation site: its own (transient) cluster.
                if i == 2 {
                    gs.extend((500..520).map(|id| {
                        let mut g = worker(id);
                        if let Some(c) = g.created_by.as_mut() {
                            std::sync::Arc::make_mut(c).function = "main.burst".into();
                        }
                        g
                    }));
                }
                (i as f64 * 30.0, snap(gs))
            })
            .collect();
        let r = analyze(&samples, Similarity::Exact, false, None);
        assert_eq!(r.growing, 1);
        assert_eq!(r.goroutines, vec![11, 14, 37, 20]);
        let verdicts: Vec<(Verdict, &str, Vec<usize>)> = r
            .clusters
            .iter()
            .map(|c| {
                (
                    c.verdict,
                    c.created_by.as_ref().unwrap().function.as_str(),
                    c.counts.clone(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            vec![
                (Verdict::Growing, "main.serve", vec![3, 6, 9, 12]),
                (Verdict::Persistent, "main.pool", vec![8, 8, 8, 8]),
                (Verdict::Transient, "main.burst", vec![0, 0, 20, 0]),
            ]
        );
        let g = &r.clusters[0];
        assert!((g.growth_per_min - 6.0).abs() < 1e-9);
        assert_eq!(g.oldest.as_ref().unwrap().id, 1000);
        assert_eq!(g.frames.len(), 2, "the whole stack, runtime frames marked");
        let mut text = Vec::new();
        write_text(&r, false, false, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("GROWING [chan receive] +6.0/min, counts 3 → 6 → 9 → 12"),
            "{text}"
        );
        assert!(
            text.contains("    main.handle(...)\n    \t/src/h.go:7\n"),
            "{text}"
        );
        assert!(!text.contains("runtime.gopark"), "{text}");
        assert!(text.contains("1 transient clusters not shown"), "{text}");
        let top = analyze(&samples, Similarity::Exact, false, Some(1));
        assert_eq!(
            (top.clusters.len(), top.omitted_clusters, top.growing),
            (1, 2, 1)
        );
    }
}
