//! The other shapes of a CPU profile: folded stacks (flamegraph.pl,
//! inferno), an SVG flame graph (inferno), and speedscope's JSON (a
//! sampled profile, weights in nanoseconds of CPU time). Frames are Go's
//! logical frames, inlined ones included, root first.

use crate::profile::CpuProfile;
use inferno::flamegraph::{self, Options};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

fn clean(name: &str) -> String {
    name.replace(';', ":").replace('\n', " ")
}

/// `(root;…;leaf, samples)`, sorted by stack.
pub fn cpu_folded_stacks(p: &CpuProfile) -> Vec<(String, u64)> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for s in &p.samples {
        let line = s
            .frames
            .iter()
            .rev()
            .map(|f| clean(&f.function))
            .collect::<Vec<_>>()
            .join(";");
        *m.entry(line).or_default() += s.count;
    }
    m.into_iter().collect()
}

/// Folded stacks, one line per stack: `root;…;leaf N` (N samples).
pub fn write_cpu_folded(p: &CpuProfile, w: &mut dyn Write) -> io::Result<()> {
    for (stack, n) in cpu_folded_stacks(p) {
        writeln!(w, "{stack} {n}")?;
    }
    Ok(())
}

/// A CPU flame graph (width: samples).
pub fn write_cpu_svg(p: &CpuProfile, w: &mut dyn Write) -> io::Result<()> {
    let stacks = cpu_folded_stacks(p);
    if stacks.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            match p.clock {
                crate::profile::Clock::Cpu => {
                    "no samples to draw (the process used no CPU while recorded)"
                }
                crate::profile::Clock::Wall => {
                    "no samples to draw (no goroutine could be read while recorded)"
                }
            },
        ));
    }
    let lines: Vec<String> = stacks.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let mut opts = Options::default();
    opts.title = format!("{} of pid {} ({})", p.clock.title(), p.pid, p.exe);
    opts.subtitle = Some(format!(
        "{} samples every {} us of {}, {}",
        p.stats.samples,
        p.period_ns / 1000,
        match p.clock {
            crate::profile::Clock::Cpu => "CPU",
            crate::profile::Clock::Wall => "wall time per goroutine",
        },
        p.go_version
    ));
    opts.count_name = "samples".to_string();
    opts.name_type = "Function:".to_string();
    opts.hash = true;
    flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), w)
        .map_err(|e| io::Error::other(format!("drawing the flame graph: {e}")))
}

#[derive(Serialize)]
struct SsFrame {
    name: String,
    file: String,
    line: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SsProfile {
    #[serde(rename = "type")]
    ty: &'static str,
    name: String,
    unit: &'static str,
    start_value: u64,
    end_value: u64,
    samples: Vec<Vec<usize>>,
    weights: Vec<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SsFile {
    #[serde(rename = "$schema")]
    schema: &'static str,
    shared: SsShared,
    profiles: Vec<SsProfile>,
    name: String,
    active_profile_index: usize,
    exporter: String,
}

#[derive(Serialize)]
struct SsShared {
    frames: Vec<SsFrame>,
}

/// speedscope's file format: one sampled profile, stacks root first,
/// weights in nanoseconds (samples × period).
pub fn write_cpu_speedscope(p: &CpuProfile, w: &mut dyn Write) -> io::Result<()> {
    let mut frames: Vec<SsFrame> = Vec::new();
    let mut index: HashMap<(String, String, i64), usize> = HashMap::new();
    let mut samples = Vec::new();
    let mut weights = Vec::new();
    for s in &p.samples {
        let stack = s
            .frames
            .iter()
            .rev()
            .map(|f| {
                let k = (f.function.to_string(), f.file.to_string(), f.line);
                *index.entry(k).or_insert_with(|| {
                    frames.push(SsFrame {
                        name: f.function.to_string(),
                        file: f.file.to_string(),
                        line: f.line,
                    });
                    frames.len() - 1
                })
            })
            .collect();
        samples.push(stack);
        weights.push(s.count.saturating_mul(p.period_ns));
    }
    let total = weights.iter().sum();
    let name = format!("{} of pid {} ({})", p.clock.title(), p.pid, p.exe);
    let file = SsFile {
        schema: "https://www.speedscope.app/file-format-schema.json",
        shared: SsShared { frames },
        profiles: vec![SsProfile {
            ty: "sampled",
            name: name.clone(),
            unit: "nanoseconds",
            start_value: 0,
            end_value: total,
            samples,
            weights,
        }],
        name,
        active_profile_index: 0,
        exporter: format!("gopeek {}", env!("CARGO_PKG_VERSION")),
    };
    serde_json::to_writer(&mut *w, &file).map_err(io::Error::other)?;
    writeln!(w)
}
