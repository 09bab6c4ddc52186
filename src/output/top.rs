//! `gopeek top`'s screen: a header (CPU, GC, syscall and cgo shares,
//! samples, lost) and one table, per function (`%Own %Total OwnTime
//! TotalTime`, like py-spy top), per goroutine, per label set or per
//! thread; cut to the terminal's size.

use crate::profile::top::TopReport;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Which table `gopeek top` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopView {
    /// Per function (key `f`).
    Functions,
    /// Per goroutine (key `g`).
    Goroutines,
    /// Per pprof label set (key `l`).
    Labels,
    /// Per thread (key `t`).
    Threads,
}

fn labels_text(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "(no labels)".into();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn cut(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

/// The screen, `width` columns by at most `height` lines. `totals`:
/// cumulative own/total seconds per function since the start.
pub fn render_top(
    r: &TopReport,
    view: TopView,
    totals: &BTreeMap<String, (f64, f64)>,
    elapsed_s: f64,
    width: usize,
    height: usize,
) -> String {
    let mut lines = vec![
        format!(
            "gopeek top: pid {} ({}, {})   {:.0}s   keys: f functions  g goroutines  l labels  t threads  q quit",
            r.pid, r.exe, r.go_version, elapsed_s
        ),
        format!(
            "Total CPU: {:.1}%   GC: {:.1}%   syscall: {:.1}%   cgo: {:.1}%   samples: {}   lost: {}   threads: {}",
            r.cpu_percent,
            r.gc_percent,
            r.syscall_percent,
            r.cgo_percent,
            r.samples,
            r.lost,
            r.threads.len()
        ),
        String::new(),
    ];
    let mut body = Vec::new();
    match view {
        TopView::Functions => {
            lines.push(format!(
                "{:>7} {:>7} {:>9} {:>9}  Function",
                "%Own", "%Total", "OwnTime", "TotalTime"
            ));
            for f in &r.functions {
                let (own, total) = totals.get(&f.function).copied().unwrap_or((0.0, 0.0));
                body.push(format!(
                    "{:>6.1}% {:>6.1}% {:>8.2}s {:>8.2}s  {}",
                    f.own_percent, f.total_percent, own, total, f.function
                ));
            }
        }
        TopView::Goroutines => {
            lines.push(format!(
                "{:>7} {:>10}  {:<30} Labels",
                "%CPU", "Goroutine", "Function"
            ));
            for g in &r.goroutines {
                let id = g.goroutine.map_or("(none)".to_string(), |i| i.to_string());
                body.push(format!(
                    "{:>6.1}% {:>10}  {:<30} {}",
                    g.percent,
                    id,
                    g.top_function,
                    labels_text(&g.labels)
                ));
            }
        }
        TopView::Labels => {
            lines.push(format!("{:>7}  Labels", "%CPU"));
            for l in &r.labels {
                body.push(format!("{:>6.1}%  {}", l.percent, labels_text(&l.labels)));
            }
        }
        TopView::Threads => {
            lines.push(format!("{:>7} {:>8}", "%CPU", "Thread"));
            for t in &r.threads {
                body.push(format!("{:>6.1}% {:>8}", t.percent, t.tid));
            }
        }
    }
    lines.extend(body);
    let mut out = String::new();
    for l in lines.iter().take(height.max(4)) {
        let _ = writeln!(out, "{}", cut(l, width.max(20)));
    }
    out
}
