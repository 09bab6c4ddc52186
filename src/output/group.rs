//! `--group` as text: one block per bucket, frames printed the way Go
//! prints them, so the summary reads like the dump it folds.

use crate::analyze::group::{GroupReport, Similarity};
use std::io::{self, Write};

/// How many ids a text bucket lists before `… +N more`.
pub(crate) const TEXT_IDS: usize = 8;

/// The text form: one block per bucket, frames printed the way Go prints
/// them (so the stack reads like the dump it summarises).
pub fn write_text(r: &GroupReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{} goroutines in {} buckets (similarity: {})",
        r.goroutines,
        r.buckets.len() + r.omitted_buckets,
        match r.similarity {
            Similarity::Exact => "exact lines",
            Similarity::Function => "same functions",
        }
    )?;
    for b in &r.buckets {
        writeln!(w)?;
        let mut head = format!("{}: {}", b.count, b.status);
        if let Some(m) = b.wait_minutes {
            if m.min == m.max {
                head.push_str(&format!(" [{} minutes]", m.min));
            } else {
                head.push_str(&format!(" [{}~{} minutes]", m.min, m.max));
            }
        }
        if b.locked_to_thread > 0 {
            head.push_str(&format!(" [locked to thread: {}]", b.locked_to_thread));
        }
        writeln!(w, "{head}")?;
        let shown: Vec<String> = b.ids.iter().take(TEXT_IDS).map(|i| i.to_string()).collect();
        let more = b.ids.len().saturating_sub(TEXT_IDS);
        if more > 0 {
            writeln!(w, "    ids: {} … +{more} more", shown.join(", "))?;
        } else {
            writeln!(w, "    ids: {}", shown.join(", "))?;
        }
        if b.frames.is_empty() {
            writeln!(w, "    (stack unavailable)")?;
        }
        for f in &b.frames {
            writeln!(w, "    {}(...)", f.function)?;
            writeln!(w, "    \t{}:{}", f.file, f.line)?;
        }
        // One site for the whole bucket is the common case: no count then.
        let single = b.created_by.len() == 1 && b.created_by[0].count == b.count;
        for s in &b.created_by {
            if single {
                writeln!(w, "    created by {}", s.function)?;
            } else {
                writeln!(w, "    created by {} (×{})", s.function, s.count)?;
            }
            writeln!(w, "    \t{}:{}", s.file, s.line)?;
        }
        if !b.labels.is_empty() {
            let parts: Vec<String> = b
                .labels
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |(v, n)| format!("{k}={v} ×{n}")))
                .collect();
            writeln!(w, "    labels: {}", parts.join(", "))?;
        }
    }
    if r.omitted_buckets > 0 {
        writeln!(
            w,
            "\n… {} more buckets ({} goroutines) not shown (--top)",
            r.omitted_buckets, r.omitted_goroutines
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::group::tests::{dump, worker};
    use crate::analyze::group::{group, MinutesRange};
    use crate::dump::GoroutineSnapshot;
    use std::collections::BTreeMap;

    #[test]
    fn buckets_by_status_and_stack() {
        let mut scan = worker(4, 10);
        scan.status = "chan receive (scan)".into();
        scan.wait_minutes = Some(7);
        let mut running = worker(5, 10);
        running.status = "running".into();
        let mut sys = worker(6, 10);
        sys.system = true;
        let d = dump(vec![
            worker(3, 10),
            worker(1, 10),
            scan,
            running,
            worker(2, 11),
            sys,
        ]);
        let r = group(&d, Similarity::Exact, false, None);
        assert_eq!(r.goroutines, 5, "the system goroutine is not listed");
        let got: Vec<(usize, &str, Vec<u64>)> = r
            .buckets
            .iter()
            .map(|b| (b.count, b.status.as_str(), b.ids.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "chan receive", vec![1, 3, 4]),
                (1, "chan receive", vec![2]),
                (1, "running", vec![5]),
            ]
        );
        // Runtime frames differ per goroutine but are hidden, so not in the key.
        assert_eq!(r.buckets[0].frames.len(), 1);
        assert_eq!(
            r.buckets[0].wait_minutes,
            Some(MinutesRange { min: 0, max: 7 })
        );
        assert_eq!(r.buckets[0].created_by[0].count, 3);

        let f = group(&d, Similarity::Function, false, None);
        assert_eq!(f.buckets[0].ids, vec![1, 2, 3, 4]);
        // With --system runtime frames (distinct lines here) split them.
        let s = group(&d, Similarity::Exact, true, None);
        assert_eq!(s.goroutines, 6);
        assert!(s.buckets.iter().all(|b| b.count == 1));

        let t = group(&d, Similarity::Exact, false, Some(1));
        assert_eq!(
            (t.buckets.len(), t.omitted_buckets, t.omitted_goroutines),
            (1, 2, 2)
        );
        let mut text = Vec::new();
        write_text(&t, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("3: chan receive [0~7 minutes]"), "{text}");
        assert!(
            text.contains("    main.worker(...)\n    \t/src/w.go:10\n"),
            "{text}"
        );
        assert!(text.contains("2 more buckets (2 goroutines)"), "{text}");
    }

    #[test]
    fn ids_and_labels_summarised() {
        let gs: Vec<GoroutineSnapshot> = (1..=12)
            .map(|i| {
                let mut g = worker(i, 10);
                g.labels = Some(std::sync::Arc::new(BTreeMap::from([(
                    "tenant".to_string(),
                    if i % 3 == 0 { "b" } else { "a" }.to_string(),
                )])));
                g
            })
            .collect();
        let r = group(&dump(gs), Similarity::Exact, false, None);
        assert_eq!(r.buckets[0].labels["tenant"]["a"], 8);
        assert_eq!(r.buckets[0].labels["tenant"]["b"], 4);
        let mut text = Vec::new();
        write_text(&r, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("ids: 1, 2, 3, 4, 5, 6, 7, 8 … +4 more"),
            "{text}"
        );
        assert!(text.contains("labels: tenant=a ×8, tenant=b ×4"), "{text}");
    }
}
