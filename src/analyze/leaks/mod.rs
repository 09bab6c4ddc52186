//! `gopeek leaks`: several snapshots over time, goroutines clustered by
//! creation site, status and parked stack, and a verdict per cluster. The
//! question an on-call engineer asks is "what is piling up?", which a
//! single dump cannot answer: a worker pool of 500 parked goroutines is
//! normal, 50 new goroutines a minute that never leave are not.
//! JSON schema `gopeek.leaks/1`.
//!
//! # Verdicts
//!
//! With counts `c_0..c_{n-1}` of a cluster at times `t_0..t_{n-1}`, `f` the
//! first sample where the cluster exists, and "new" meaning a goroutine
//! that did not exist at all in the previous sample (goroutine ids are
//! never reused, so it was created in between; a pool worker coming back
//! from a job to its parking place is not new):
//!
//! - **growing** when all of these hold (needs `n >= 3`):
//!   1. trend: the least-squares slope of `c` over `t` is positive and
//!      `c_{n-1} > c_f`;
//!   2. steadiness: in at least half ([`STEADY_FRACTION`]) of the
//!      intervals from `f` on, and in at least [`MIN_RISES`] of them, the
//!      count rose *and* new goroutines arrived, so a single jump (a pool
//!      warming up, a batch started once) is not a trend, while a slow leak
//!      that adds a goroutine every other interval still is;
//!   3. persistence: at least [`RETAINED_FRACTION`] (90%) of the goroutines
//!      in the cluster at sample `f` are still in it at the last sample.
//!      Leaked goroutines never leave; a pool that recycles its workers or
//!      a load-driven spike replaces them.
//! - **persistent**: present in every sample, and not growing (a fixed or
//!   recycling pool, a listener, a ticker).
//! - **transient**: absent from at least one sample (bursts, short tasks).
//!
//! A fixed pool of constant size therefore can never be `growing`: its
//! count cannot rise steadily, and a recycling pool fails persistence.

use super::group::{stack_key, BucketFrame, Similarity};
use crate::dump::{DumpSnapshot, GoroutineSnapshot};
use crate::gotrace::frames::listed;
use crate::gotrace::status::without_scan;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Share of intervals (from the cluster's first appearance) in which the
/// count must rise with newly created goroutines for `growing`.
pub(crate) const STEADY_FRACTION: f64 = 0.5;

/// The fewest intervals with such a rise for `growing`: one is a jump.
pub(crate) const MIN_RISES: usize = 2;

/// Share of a cluster's first goroutines that must still be there at the
/// end for `growing`.
pub(crate) const RETAINED_FRACTION: f64 = 0.9;

/// The fewest samples that can show a trend.
pub(crate) const MIN_SAMPLES: usize = 3;

/// What a cluster's counts over time say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// Rising steadily with goroutines that never leave: a leak.
    Growing,
    /// Always there, not growing: pools, listeners, tickers.
    Persistent,
    /// Absent from some sample: bursts and short tasks.
    Transient,
}

/// A creation site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(crate) struct Site {
    /// The function containing the `go` statement.
    pub(crate) function: String,
    /// Its source file.
    pub(crate) file: String,
    /// Line of the `go` statement.
    pub(crate) line: i64,
}

/// The longest-blocked goroutine of a cluster at its last sample.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Oldest {
    /// Goroutine id.
    pub(crate) id: u64,
    /// Minutes blocked as Go counts them (0 when Go would print none).
    pub(crate) wait_minutes: u64,
    /// Index of the sample where it was first seen in this cluster.
    pub(crate) first_seen: usize,
}

/// Goroutines from one creation site parked in one place, over time.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cluster {
    /// What the counts over time say.
    pub(crate) verdict: Verdict,
    /// Why, in words (which criterion decided).
    pub(crate) reason: String,
    /// Status text without ` (scan)`.
    pub(crate) status: String,
    /// Where its goroutines were started (`null` for goroutine 1).
    pub(crate) created_by: Option<Site>,
    /// Goroutines in the cluster in each sample.
    pub(crate) counts: Vec<usize>,
    /// Least-squares slope of `counts` over time, per minute.
    pub(crate) growth_per_min: f64,
    /// Goroutines of the cluster that did not exist in the previous
    /// sample (all of them for the first sample).
    pub(crate) new: Vec<usize>,
    /// Share of the first sample's goroutines still present at the end.
    pub(crate) retained: f64,
    /// The longest-blocked goroutine: the one to look at first.
    pub(crate) oldest: Option<Oldest>,
    /// The whole stack of the oldest goroutine, innermost first (runtime
    /// frames included and marked).
    pub(crate) frames: Vec<BucketFrame>,
}

/// `gopeek.leaks/1`.
#[derive(Debug, Clone, Serialize)]
pub struct LeaksReport {
    /// Always `gopeek.leaks/1`.
    pub(crate) schema: &'static str,
    /// The process watched.
    pub(crate) pid: i32,
    /// Its executable.
    pub(crate) exe: String,
    /// Its Go version (`go1.27.3`).
    pub(crate) go_version: String,
    /// How alike stacks had to be to share a cluster.
    pub(crate) similarity: Similarity,
    /// When each sample was taken (RFC 3339) and seconds since the first.
    pub(crate) taken_at: Vec<String>,
    /// Seconds from the first sample to each.
    pub(crate) elapsed_s: Vec<f64>,
    /// Longest the target was held in any sample.
    pub(crate) max_pause_us: u64,
    /// Listed goroutines per sample.
    pub(crate) goroutines: Vec<usize>,
    /// How many clusters are growing (the exit code says whether any).
    pub growing: usize,
    /// Ranked: growing by growth, then size; persistent by size;
    /// transient by peak size.
    pub(crate) clusters: Vec<Cluster>,
    /// Clusters left out by `--top`.
    pub(crate) omitted_clusters: usize,
}

/// Least-squares slope of `y` over `x` (0 when `x` does not vary).
pub(crate) fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let mut num = 0.0;
    let mut den = 0.0;
    for (a, b) in x.iter().zip(y) {
        num += (a - mx) * (b - my);
        den += (a - mx) * (a - mx);
    }
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// The verdict of one cluster from its ids per sample, every goroutine id
/// of each sample (`all`, to tell created goroutines from moved ones) and
/// the sample times (minutes); returns the verdict, the reason, new
/// goroutines per sample, the retained share and the slope per minute.
pub(crate) fn judge(
    ids: &[BTreeSet<u64>],
    all: &[HashSet<u64>],
    minutes: &[f64],
) -> (Verdict, String, Vec<usize>, f64, f64) {
    let n = ids.len();
    let counts: Vec<f64> = ids.iter().map(|s| s.len() as f64).collect();
    let new: Vec<usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| match i.checked_sub(1).and_then(|p| all.get(p)) {
            Some(prev) => s.iter().filter(|id| !prev.contains(id)).count(),
            None => s.len(),
        })
        .collect();
    let k = slope(minutes, &counts);
    let first = ids.iter().position(|s| !s.is_empty()).unwrap_or(0);
    let retained = match ids.get(first) {
        Some(f) if !f.is_empty() => f.intersection(&ids[n - 1]).count() as f64 / f.len() as f64,
        _ => 0.0,
    };
    let steps = n.saturating_sub(1).saturating_sub(first);
    let rises = (first..n.saturating_sub(1))
        .filter(|&i| counts[i + 1] > counts[i] && new[i + 1] > 0)
        .count();
    let needed = ((steps as f64 * STEADY_FRACTION).ceil() as usize).max(MIN_RISES);
    let present_everywhere = ids.iter().all(|s| !s.is_empty());
    let last = counts.last().copied().unwrap_or(0.0);
    if n >= MIN_SAMPLES
        && steps >= 2
        && k > 0.0
        && last > counts[first]
        && rises >= needed
        && retained >= RETAINED_FRACTION
    {
        return (
            Verdict::Growing,
            format!(
                "rose with new goroutines in {rises} of {steps} intervals; {:.0}% of the first goroutines never left",
                retained * 100.0
            ),
            new,
            retained,
            k,
        );
    }
    let why_not = if n < MIN_SAMPLES {
        format!("{n} samples cannot show a trend")
    } else if k <= 0.0 || last <= counts[first] {
        "no upward trend".to_string()
    } else if rises < needed {
        format!("rose with new goroutines in only {rises} of {steps} intervals (not steady)")
    } else {
        format!(
            "goroutines are replaced ({:.0}% of the first ones still there)",
            retained * 100.0
        )
    };
    if present_everywhere {
        (
            Verdict::Persistent,
            format!("present in every sample; {why_not}"),
            new,
            retained,
            k,
        )
    } else {
        let absent = ids.iter().filter(|s| s.is_empty()).count();
        (
            Verdict::Transient,
            format!("absent from {absent} of {n} samples"),
            new,
            retained,
            k,
        )
    }
}

/// The identity of a cluster: creation site, status and parked stack.
type ClusterKey = (
    Option<Site>,
    String,
    Vec<(std::sync::Arc<str>, Option<(std::sync::Arc<str>, i64)>)>,
);

fn site(g: &GoroutineSnapshot) -> Option<Site> {
    g.created_by.as_ref().map(|c| Site {
        function: c.function.clone(),
        file: c.file.clone(),
        line: c.line,
    })
}

/// The oldest goroutine of a cluster in the latest sample it is in:
/// (sample index, first sample it was seen in, the goroutine).
type Candidate = (usize, usize, GoroutineSnapshot);

/// Folds snapshots one at a time into per-cluster id sets, so that
/// watching a process with 100k goroutines holds one snapshot in memory,
/// not N: what stays is the ids per cluster and sample, every id per
/// sample (to tell created goroutines from moved ones), and one example
/// goroutine per cluster.
pub struct LeakTracker {
    similarity: Similarity,
    system: bool,
    index: HashMap<ClusterKey, usize>,
    ids: Vec<Vec<BTreeSet<u64>>>,
    oldest: Vec<Option<Candidate>>,
    all: Vec<HashSet<u64>>,
    elapsed_s: Vec<f64>,
    taken_at: Vec<String>,
    goroutines: Vec<usize>,
    max_pause_us: u64,
    meta: (i32, String, String),
}

impl LeakTracker {
    /// An empty tracker clustering at `similarity`; `system` includes
    /// runtime frames and system goroutines.
    pub fn new(similarity: Similarity, system: bool) -> LeakTracker {
        LeakTracker {
            similarity,
            system,
            index: HashMap::new(),
            ids: Vec::new(),
            oldest: Vec::new(),
            all: Vec::new(),
            elapsed_s: Vec::new(),
            taken_at: Vec::new(),
            goroutines: Vec::new(),
            max_pause_us: 0,
            meta: (0, String::new(), String::new()),
        }
    }

    /// Adds the next snapshot, taken `t` seconds after the first.
    pub fn add(&mut self, t: f64, dump: DumpSnapshot) {
        let i = self.elapsed_s.len();
        self.elapsed_s.push(t);
        self.taken_at.push(dump.taken_at);
        self.max_pause_us = self.max_pause_us.max(dump.pause_us);
        self.meta = (dump.pid, dump.exe, dump.go_version);
        self.all
            .push(dump.goroutines.iter().map(|g| g.id).collect());
        for per_sample in &mut self.ids {
            per_sample.push(BTreeSet::new());
        }
        let mut listed_count = 0;
        for g in dump.goroutines {
            if !listed(&g, self.system) {
                continue;
            }
            listed_count += 1;
            let (status, frames) = stack_key(&g, self.similarity, self.system);
            let key = (site(&g), status, frames);
            let ids = &mut self.ids;
            let oldest = &mut self.oldest;
            let c = *self.index.entry(key).or_insert_with(|| {
                ids.push(vec![BTreeSet::new(); i + 1]);
                oldest.push(None);
                ids.len() - 1
            });
            self.ids[c][i].insert(g.id);
            let first_seen = self.ids[c]
                .iter()
                .position(|s| s.contains(&g.id))
                .unwrap_or(i);
            // Longest blocked, then earliest seen, then lowest id.
            let rank = |(_, seen, g): &Candidate| {
                (std::cmp::Reverse(g.wait_minutes.unwrap_or(0)), *seen, g.id)
            };
            let mine = (
                std::cmp::Reverse(g.wait_minutes.unwrap_or(0)),
                first_seen,
                g.id,
            );
            let better = match &self.oldest[c] {
                Some(cur) if cur.0 == i => mine < rank(cur),
                _ => true,
            };
            if better {
                self.oldest[c] = Some((i, first_seen, g));
            }
        }
        self.goroutines.push(listed_count);
    }

    /// Judges every cluster, ranks them and keeps the first `top`.
    pub fn report(&self, top: Option<usize>) -> LeaksReport {
        let minutes: Vec<f64> = self.elapsed_s.iter().map(|t| t / 60.0).collect();
        let mut clusters: Vec<Cluster> = Vec::with_capacity(self.ids.len());
        for (per_sample, cand) in self.ids.iter().zip(&self.oldest) {
            let Some((_, first_seen, oldest)) = cand else {
                continue;
            };
            let (verdict, reason, new, retained, k) = judge(per_sample, &self.all, &minutes);
            clusters.push(Cluster {
                verdict,
                reason,
                status: without_scan(&oldest.status).to_string(),
                created_by: site(oldest),
                counts: per_sample.iter().map(|s| s.len()).collect(),
                growth_per_min: k,
                new,
                retained,
                oldest: Some(Oldest {
                    id: oldest.id,
                    wait_minutes: oldest.wait_minutes.unwrap_or(0),
                    first_seen: *first_seen,
                }),
                frames: oldest
                    .frames
                    .iter()
                    .map(|f| BucketFrame {
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: f.line,
                        inlined: f.inlined,
                        runtime: f.runtime,
                    })
                    .collect(),
            });
        }
        rank(&mut clusters);
        let growing = clusters
            .iter()
            .filter(|c| c.verdict == Verdict::Growing)
            .count();
        let mut omitted_clusters = 0;
        if let Some(t) = top {
            if clusters.len() > t {
                omitted_clusters = clusters.len() - t;
                clusters.truncate(t);
            }
        }
        LeaksReport {
            schema: "gopeek.leaks/1",
            pid: self.meta.0,
            exe: self.meta.1.clone(),
            go_version: self.meta.2.clone(),
            similarity: self.similarity,
            taken_at: self.taken_at.clone(),
            elapsed_s: self.elapsed_s.clone(),
            max_pause_us: self.max_pause_us,
            goroutines: self.goroutines.clone(),
            growing,
            clusters,
            omitted_clusters,
        }
    }
}

/// Growing first (fastest, then largest), then persistent (largest), then
/// transient (largest peak); ties broken by status and oldest id so the
/// order is stable.
fn rank(clusters: &mut [Cluster]) {
    let last = |c: &Cluster| c.counts.last().copied().unwrap_or(0);
    let peak = |c: &Cluster| c.counts.iter().copied().max().unwrap_or(0);
    clusters.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then_with(|| match a.verdict {
                Verdict::Growing => b
                    .growth_per_min
                    .total_cmp(&a.growth_per_min)
                    .then_with(|| last(b).cmp(&last(a))),
                Verdict::Persistent => last(b).cmp(&last(a)),
                Verdict::Transient => peak(b).cmp(&peak(a)),
            })
            .then_with(|| a.status.cmp(&b.status))
            .then_with(|| {
                a.oldest
                    .as_ref()
                    .map(|o| o.id)
                    .cmp(&b.oldest.as_ref().map(|o| o.id))
            })
    });
}

/// Clusters the goroutines of `samples` (snapshots with their times in
/// seconds since the first), judges each cluster and ranks them: a
/// [`LeakTracker`] fed every sample (the tests' shorthand).
#[cfg(test)]
pub(crate) fn analyze(
    samples: &[(f64, DumpSnapshot)],
    similarity: Similarity,
    system: bool,
    top: Option<usize>,
) -> LeaksReport {
    let mut t = LeakTracker::new(similarity, system);
    for (at, dump) in samples {
        t.add(*at, dump.clone());
    }
    t.report(top)
}

#[cfg(test)]
pub(crate) mod tests;
