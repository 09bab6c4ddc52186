//! `gopeek dump --group`: goroutines with the same status and the same
//! stack folded into one bucket, the way panicparse reads a crash dump, so
//! that 10,000 goroutines parked in three places read as three entries.
//! JSON schema `gopeek.group/1`.

use crate::dump::{DumpSnapshot, GoroutineSnapshot};
use crate::gotrace::frames::{listed, shown_frames};
use crate::gotrace::status::without_scan;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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
pub(crate) struct BucketFrame {
    /// Function name as Go prints it.
    pub(crate) function: Arc<str>,
    /// Source file as recorded in the binary.
    pub(crate) file: Arc<str>,
    /// With `function` similarity, the line of the first goroutine.
    pub(crate) line: i64,
    /// Inlined into the next frame.
    pub(crate) inlined: bool,
    /// A frame Go hides at GOTRACEBACK=all.
    pub(crate) runtime: bool,
}

/// A `created by` site and how many goroutines of a bucket it started.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct CreatedBySite {
    /// The function containing the `go` statement.
    pub(crate) function: String,
    /// Its source file.
    pub(crate) file: String,
    /// Line of the `go` statement.
    pub(crate) line: i64,
    /// Goroutines (of the bucket) started there.
    pub(crate) count: usize,
}

/// The least and most minutes blocked in a bucket (as Go counts them; a
/// goroutine without `, N minutes` counts as 0).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct MinutesRange {
    /// Least minutes blocked.
    pub(crate) min: u64,
    /// Most minutes blocked.
    pub(crate) max: u64,
}

/// Goroutines with the same status and stack.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bucket {
    /// Goroutines (of the bucket) started there.
    pub(crate) count: usize,
    /// Status text without ` (scan)`.
    pub(crate) status: String,
    /// `null` when no goroutine of the bucket shows minutes.
    pub(crate) wait_minutes: Option<MinutesRange>,
    /// How many are locked to their thread.
    pub(crate) locked_to_thread: usize,
    /// Every goroutine id, ascending (text output elides past a few).
    pub(crate) ids: Vec<u64>,
    /// Distinct creation sites, most frequent first.
    pub(crate) created_by: Vec<CreatedBySite>,
    /// label key → value → number of goroutines carrying it.
    pub(crate) labels: BTreeMap<String, BTreeMap<String, usize>>,
    /// The stack, innermost first (runtime frames only with `--system`).
    pub(crate) frames: Vec<BucketFrame>,
}

/// `gopeek.group/1`: the buckets of one snapshot, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Always `gopeek.group/1`.
    pub(crate) schema: &'static str,
    /// The process the snapshot is of.
    pub(crate) pid: i32,
    /// Its executable.
    pub(crate) exe: String,
    /// Its Go version (`go1.27.3`).
    pub(crate) go_version: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub(crate) taken_at: String,
    /// How long the target was held, in microseconds.
    pub(crate) pause_us: u64,
    /// How alike stacks had to be to share a bucket.
    pub(crate) similarity: Similarity,
    /// Goroutines grouped (after filters, before `--top`).
    pub(crate) goroutines: usize,
    /// Largest first.
    pub(crate) buckets: Vec<Bucket>,
    /// Buckets and goroutines left out by `--top`.
    pub(crate) omitted_buckets: usize,
    /// Goroutines in the buckets left out.
    pub(crate) omitted_goroutines: usize,
}

/// The identity of a frame under a similarity level.
type FrameKey = (Arc<str>, Option<(Arc<str>, i64)>);

/// The bucket key of a goroutine: status, and its shown frames.
pub(crate) fn stack_key(
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
    (without_scan(&g.status).to_string(), frames)
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
        for (k, v) in g.labels.iter().flat_map(|l| l.iter()) {
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
        status: without_scan(&first.status).to_string(),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analyze::filter::tests::{frame, goroutine};

    pub(crate) fn dump(gs: Vec<GoroutineSnapshot>) -> DumpSnapshot {
        DumpSnapshot {
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
            goroutines: gs,
            warnings: vec![],
        }
    }

    pub(crate) fn worker(id: u64, line: i64) -> GoroutineSnapshot {
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
}
