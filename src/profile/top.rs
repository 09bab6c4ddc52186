//! `gopeek top`'s figures as plain data (schema `gopeek.top/1`): one
//! interval's CPU per function (own and total), per goroutine, per pprof
//! label set and per thread, with the header's shares (GC mark workers and
//! assists, system calls, code outside Go). Percentages are of one CPU
//! over the interval's wall time, as `top` shows them (two busy threads:
//! 200%).

use super::{CpuProfile, CpuSample};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One function's line.
#[derive(Debug, Clone, Serialize)]
pub struct TopFunction {
    /// Go's name of the function.
    pub function: String,
    /// Samples with it as the leaf.
    pub own_samples: u64,
    /// Samples with it anywhere on the stack.
    pub total_samples: u64,
    /// Own CPU, % of one CPU.
    pub own_percent: f64,
    /// Total CPU, % of one CPU.
    pub total_percent: f64,
    /// Own CPU time, seconds.
    pub own_s: f64,
    /// Total CPU time, seconds.
    pub total_s: f64,
}

/// One goroutine's line (`None`: threads running no goroutine).
#[derive(Debug, Clone, Serialize)]
pub struct TopGoroutine {
    /// Its id.
    pub goroutine: Option<u64>,
    /// Its pprof labels.
    pub labels: BTreeMap<String, String>,
    /// The function it spends most samples in (leaf).
    pub top_function: String,
    /// Samples.
    pub samples: u64,
    /// % of one CPU.
    pub percent: f64,
}

/// One label set's line (empty: no labels).
#[derive(Debug, Clone, Serialize)]
pub struct TopLabels {
    /// The label set.
    pub labels: BTreeMap<String, String>,
    /// Samples.
    pub samples: u64,
    /// % of one CPU.
    pub percent: f64,
}

/// One thread's line.
#[derive(Debug, Clone, Serialize)]
pub struct TopThread {
    /// Thread id.
    pub tid: i32,
    /// Samples.
    pub samples: u64,
    /// % of one CPU.
    pub percent: f64,
}

/// The whole report of one interval.
#[derive(Debug, Clone, Serialize)]
pub struct TopReport {
    /// `gopeek.top/1`.
    pub schema: &'static str,
    /// The process.
    pub pid: i32,
    /// Its executable.
    pub exe: String,
    /// Its Go version.
    pub go_version: String,
    /// The interval, seconds.
    pub duration_s: f64,
    /// Sampling period, ns of CPU.
    pub period_ns: u64,
    /// Samples in the interval.
    pub samples: u64,
    /// Samples the kernel dropped in the interval.
    pub lost: u64,
    /// CPU of the process, % of one CPU.
    pub cpu_percent: f64,
    /// Of which GC mark workers and assists.
    pub gc_percent: f64,
    /// Of which in the kernel (system calls, faults).
    pub syscall_percent: f64,
    /// Of which in C code through cgo (the vDSO's time calls are not).
    pub cgo_percent: f64,
    /// Functions by own CPU, then total.
    pub functions: Vec<TopFunction>,
    /// Goroutines by CPU.
    pub goroutines: Vec<TopGoroutine>,
    /// Label sets by CPU.
    pub labels: Vec<TopLabels>,
    /// Threads by CPU.
    pub threads: Vec<TopThread>,
}

/// A sample of GC work: the background mark worker or an assist on the
/// stack, or the closures they run on the system stack
/// (`runtime.gcBgMarkWorker.func2`, `runtime.gcAssistAlloc.func2`), which
/// a sample may show without the goroutine's frames when its stack was
/// not followed past `runtime.systemstack`.
fn is_gc(s: &CpuSample) -> bool {
    s.frames.iter().any(|f| {
        let name = f.function.strip_prefix("runtime.").unwrap_or("");
        name.starts_with("gcBgMarkWorker") || name.starts_with("gcAssistAlloc")
    })
}

impl TopReport {
    /// The report of one interval's profile.
    pub fn from_profile(p: &CpuProfile) -> TopReport {
        let secs = (p.duration_ns as f64 / 1e9).max(1e-9);
        let cpu_s = |n: u64| n as f64 * p.period_ns as f64 / 1e9;
        let pct = |n: u64| 100.0 * cpu_s(n) / secs;
        let total: u64 = p.samples.iter().map(|s| s.count).sum();
        let sum = |f: &dyn Fn(&CpuSample) -> bool| -> u64 {
            p.samples.iter().filter(|s| f(s)).map(|s| s.count).sum()
        };
        let mut own: HashMap<&str, u64> = HashMap::new();
        let mut tot: HashMap<&str, u64> = HashMap::new();
        // Per goroutine: samples, labels, samples per function.
        type PerG<'a> = (u64, BTreeMap<String, String>, HashMap<&'a str, u64>);
        let mut gor: HashMap<Option<u64>, PerG> = HashMap::new();
        let mut labs: HashMap<BTreeMap<String, String>, u64> = HashMap::new();
        let mut thr: HashMap<i32, u64> = HashMap::new();
        for s in &p.samples {
            let leaf = s.frames.first().map_or("(unknown)", |f| &*f.function);
            *own.entry(leaf).or_default() += s.count;
            let mut seen = HashSet::new();
            for f in s.frames.iter() {
                if seen.insert(&*f.function) {
                    *tot.entry(&*f.function).or_default() += s.count;
                }
            }
            let labels: BTreeMap<String, String> = s.labels.as_deref().cloned().unwrap_or_default();
            let g = gor
                .entry(s.goid)
                .or_insert_with(|| (0, labels.clone(), HashMap::new()));
            g.0 += s.count;
            *g.2.entry(leaf).or_default() += s.count;
            *labs.entry(labels).or_default() += s.count;
            *thr.entry(s.tid).or_default() += s.count;
        }
        let mut functions: Vec<TopFunction> = tot
            .iter()
            .map(|(&f, &t)| {
                let o = own.get(f).copied().unwrap_or(0);
                TopFunction {
                    function: f.to_string(),
                    own_samples: o,
                    total_samples: t,
                    own_percent: pct(o),
                    total_percent: pct(t),
                    own_s: cpu_s(o),
                    total_s: cpu_s(t),
                }
            })
            .collect();
        functions.sort_by(|a, b| {
            (b.own_samples, b.total_samples, &a.function).cmp(&(
                a.own_samples,
                a.total_samples,
                &b.function,
            ))
        });
        let mut goroutines: Vec<TopGoroutine> = gor
            .into_iter()
            .map(|(goid, (n, labels, leaves))| TopGoroutine {
                goroutine: goid,
                labels,
                top_function: leaves
                    .into_iter()
                    .max_by_key(|(f, n)| (*n, std::cmp::Reverse(*f)))
                    .map_or_else(String::new, |(f, _)| f.to_string()),
                samples: n,
                percent: pct(n),
            })
            .collect();
        goroutines.sort_by(|a, b| (b.samples, a.goroutine).cmp(&(a.samples, b.goroutine)));
        let mut labels: Vec<TopLabels> = labs
            .into_iter()
            .map(|(labels, n)| TopLabels {
                labels,
                samples: n,
                percent: pct(n),
            })
            .collect();
        labels.sort_by(|a, b| (b.samples, &a.labels).cmp(&(a.samples, &b.labels)));
        let mut threads: Vec<TopThread> = thr
            .into_iter()
            .map(|(tid, n)| TopThread {
                tid,
                samples: n,
                percent: pct(n),
            })
            .collect();
        threads.sort_by(|a, b| (b.samples, a.tid).cmp(&(a.samples, b.tid)));
        TopReport {
            schema: "gopeek.top/1",
            pid: p.pid,
            exe: p.exe.clone(),
            go_version: p.go_version.clone(),
            duration_s: secs,
            period_ns: p.period_ns,
            samples: total,
            lost: p.stats.lost,
            cpu_percent: pct(total),
            gc_percent: pct(sum(&is_gc)),
            syscall_percent: pct(sum(&|s| s.kernel)),
            cgo_percent: pct(sum(&|s| s.external)),
            functions,
            goroutines,
            labels,
            threads,
        }
    }
}
