//! `gopeek dump --group`: goroutines with the same status and the same
//! stack folded into one bucket, the way panicparse reads a crash dump, so
//! that 10,000 goroutines parked in three places read as three entries.
//! JSON schema `gopeek.group/1`.

#![warn(missing_docs)]

use super::base_status;
use crate::gotrace::frames::{listed, shown_frames};
use crate::dump::{DumpSnapshot, GoroutineSnapshot};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::Arc;

/// How alike two stacks must be to share a bucket (panicparse's
/// similarity levels, reduced to the two that matter without arguments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// Same functions at the same file:line.
    #[default]
    Exact,
    /// Same functions, whatever the line (e.g. a loop parked at two
    /// different channel operations).
    Function,
}

/// One frame of a bucket's stack (taken from its first goroutine).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BucketFrame {
    /// Function name as Go prints it.
    pub function: Arc<str>,
    /// Source file as recorded in the binary.
    pub file: Arc<str>,
    /// With `function` similarity, the line of the first goroutine.
    pub line: i64,
    /// Inlined into the next frame.
    pub inlined: bool,
    /// A frame Go hides at GOTRACEBACK=all.
    pub runtime: bool,
}

/// A `created by` site and how many goroutines of a bucket it started.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreatedBySite {
    /// The function containing the `go` statement.
    pub function: String,
    /// Its source file.
    pub file: String,
    /// Line of the `go` statement.
    pub line: i64,
    /// Goroutines (of the bucket) started there.
    pub count: usize,
}

/// The least and most minutes blocked in a bucket (as Go counts them; a
/// goroutine without `, N minutes` counts as 0).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct MinutesRange {
    /// Least minutes blocked.
    pub min: u64,
    /// Most minutes blocked.
    pub max: u64,
}

/// Goroutines with the same status and stack.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Goroutines (of the bucket) started there.
    pub count: usize,
    /// Status text without ` (scan)`.
    pub status: String,
    /// `null` when no goroutine of the bucket shows minutes.
    pub wait_minutes: Option<MinutesRange>,
    /// How many are locked to their thread.
    pub locked_to_thread: usize,
    /// Every goroutine id, ascending (text output elides past a few).
    pub ids: Vec<u64>,
    /// Distinct creation sites, most frequent first.
    pub created_by: Vec<CreatedBySite>,
    /// label key → value → number of goroutines carrying it.
    pub labels: BTreeMap<String, BTreeMap<String, usize>>,
    /// The stack, innermost first (runtime frames only with `--system`).
    pub frames: Vec<BucketFrame>,
}

/// `gopeek.group/1`: the buckets of one snapshot, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Always `gopeek.group/1`.
    pub schema: &'static str,
    /// The process the snapshot is of.
    pub pid: i32,
    /// Its executable.
    pub exe: String,
    /// Its Go version (`go1.27.3`).
    pub go_version: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// How long the target was held, in microseconds.
    pub pause_us: u64,
    /// How alike stacks had to be to share a bucket.
    pub similarity: Similarity,
    /// Goroutines grouped (after filters, before `--top`).
    pub goroutines: usize,
    /// Largest first.
    pub buckets: Vec<Bucket>,
    /// Buckets and goroutines left out by `--top`.
    pub omitted_buckets: usize,
    /// Goroutines in the buckets left out.
    pub omitted_goroutines: usize,
}

/// The identity of a frame under a similarity level.
type FrameKey = (Arc<str>, Option<(Arc<str>, i64)>);

/// The bucket key of a goroutine: status, and its shown frames.
pub fn stack_key(
    g: &GoroutineSnapshot,
    similarity: Similarity,
    system: bool,
) -> (String, Vec<FrameKey>) {
    let frames = shown_frames(g, system)
        .map(|f| {
            let at = match similarity {
                Similarity::Exact => Some((f.file.clone(), f.line)),
                Similarity::Function => None,
            };
            (f.function.clone(), at)
        })
        .collect();
    (base_status(g).to_string(), frames)
}

/// Groups the listed goroutines of `dump` into buckets, sorted by size
/// (then status, then lowest id, so the order is stable), keeping the
/// first `top` buckets if given.
pub fn group(
    dump: &DumpSnapshot,
    similarity: Similarity,
    system: bool,
    top: Option<usize>,
) -> GroupReport {
    let mut index: HashMap<(String, Vec<FrameKey>), usize> = HashMap::new();
    let mut members: Vec<Vec<&GoroutineSnapshot>> = Vec::new();
    for g in dump.goroutines.iter().filter(|g| listed(g, system)) {
        let key = stack_key(g, similarity, system);
        let i = *index.entry(key).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[i].push(g);
    }
    let total: usize = members.iter().map(|m| m.len()).sum();
    let mut buckets: Vec<Bucket> = members.iter().map(|m| make_bucket(m, system)).collect();
    buckets.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.status.cmp(&b.status))
            .then_with(|| a.ids.first().cmp(&b.ids.first()))
    });
    let mut omitted_buckets = 0;
    let mut omitted_goroutines = 0;
    if let Some(n) = top {
        if buckets.len() > n {
            let rest = buckets.split_off(n);
            omitted_buckets = rest.len();
            omitted_goroutines = rest.iter().map(|b| b.count).sum();
        }
    }
    GroupReport {
        schema: "gopeek.group/1",
        pid: dump.pid,
        exe: dump.exe.clone(),
        go_version: dump.go_version.clone(),
        taken_at: dump.taken_at.clone(),
        pause_us: dump.pause_us,
        similarity,
        goroutines: total,
        buckets,
        omitted_buckets,
        omitted_goroutines,
    }
}

fn make_bucket(members: &[&GoroutineSnapshot], system: bool) -> Bucket {
    let first = members[0];
    let mut ids: Vec<u64> = members.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    let minutes: Vec<u64> = members
        .iter()
        .map(|g| g.wait_minutes.unwrap_or(0))
        .collect();
    let wait_minutes = if members.iter().any(|g| g.wait_minutes.is_some()) {
        Some(MinutesRange {
            min: minutes.iter().copied().min().unwrap_or(0),
            max: minutes.iter().copied().max().unwrap_or(0),
        })
    } else {
        None
    };
    let mut sites: Vec<CreatedBySite> = Vec::new();
    let mut labels: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for g in members {
        if let Some(c) = &g.created_by {
            match sites
                .iter_mut()
                .find(|s| s.function == c.function && s.file == c.file && s.line == c.line)
            {
                Some(s) => s.count += 1,
                None => sites.push(CreatedBySite {
                    function: c.function.clone(),
                    file: c.file.clone(),
                    line: c.line,
                    count: 1,
                }),
            }
        }
        for (k, v) in g.labels.iter().flatten() {
            *labels
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += 1;
        }
    }
    sites.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.function.cmp(&b.function))
    });
    Bucket {
        count: members.len(),
        status: base_status(first).to_string(),
        wait_minutes,
        locked_to_thread: members.iter().filter(|g| g.locked_to_thread).count(),
        ids,
        created_by: sites,
        labels,
        frames: shown_frames(first, system)
            .map(|f| BucketFrame {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                inlined: f.inlined,
                runtime: f.runtime,
            })
            .collect(),
    }
}

/// How many ids a text bucket lists before `… +N more`.
pub const TEXT_IDS: usize = 8;

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
    use crate::analyze::filter::tests::{frame, goroutine};

    fn dump(gs: Vec<GoroutineSnapshot>) -> DumpSnapshot {
        DumpSnapshot {
            schema: "gopeek.dump/1",
            pid: 1,
            exe: "x".into(),
            go_version: "go1.27".into(),
            go_minor: 27,
            header_labels: false,
            taken_at: String::new(),
            pause_us: 0,
            mode: "consistent",
            note: None,
            goroutines: gs,
            warnings: vec![],
        }
    }

    fn worker(id: u64, line: i64) -> GoroutineSnapshot {
        goroutine(
            id,
            "chan receive",
            vec![
                frame("runtime.gopark", "/go/proc.go", 400 + id as i64, true),
                frame("main.worker", "/src/w.go", line, false),
            ],
            "main.pool",
        )
    }

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
                g.labels = Some(BTreeMap::from([(
                    "tenant".to_string(),
                    if i % 3 == 0 { "b" } else { "a" }.to_string(),
                )]));
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
