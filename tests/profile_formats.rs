//! `--format pprof|folded|svg` on the `parked` fixture, whose goroutines
//! stay put: the goroutine count of Go's own `runtime.Stack(buf, true)`
//! (which, like Go's goroutine profile, leaves out system goroutines) is
//! what every format must add up to.
//!
//! The pprof profile is opened by `go tool pprof -top` of every installed
//! Go toolchain (/usr/lib/go-1.N), the consumer that matters, and compared
//! function by function with the goroutine profile the fixture writes
//! itself (`pprof.Lookup("goroutine").WriteTo`).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dump_bytes(pid: i32, args: &[&str]) -> Vec<u8> {
    let mut full = vec!["dump".to_string(), "--pid".into(), pid.to_string()];
    full.extend(args.iter().map(|s| s.to_string()));
    let out = gopeek().args(&full).output().unwrap();
    assert!(
        out.status.success(),
        "gopeek {full:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Goroutines in the fixture's own dump.
fn oracle_count(run: &Running) -> usize {
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    parse_dump(&text).len()
}

/// `go tool pprof -top` of `profile` by the toolchain `go`: the total and
/// the cumulative count of each function.
fn pprof_top(go: &Path, profile: &Path, tmp: &Path) -> (u64, Vec<(String, u64)>) {
    let out = Command::new(go)
        .args(["tool", "pprof", "-top", "-nodecount=100000"])
        .arg(profile)
        .env("GOTOOLCHAIN", "local")
        .env("PPROF_TMPDIR", tmp)
        .env("HOME", tmp)
        // Go 1.25+ no longer ship `pprof` prebuilt: `go tool pprof` builds
        // it once into scripts/build-fixtures' per-version cache.
        .env("GOCACHE", gocache(go))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{} tool pprof failed: {stderr}",
        go.display()
    );
    // "Showing nodes accounting for 97, 100% of 97 total"
    let total = stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("Showing nodes accounting for ")?;
            let of = rest.split(" of ").nth(1)?;
            of.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "no total in {} pprof output:\n{stdout}\n{stderr}",
                go.display()
            )
        });
    let mut rows = Vec::new();
    let mut in_table = false;
    for l in stdout.lines() {
        if l.trim_start().starts_with("flat") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() >= 6 {
            if let Ok(cum) = cols[3].parse::<u64>() {
                rows.push((cols[5].to_string(), cum));
            }
        }
    }
    (total, rows)
}

fn pprof_check(version: &str, mode: &str, readers: &[PathBuf]) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    if readers.is_empty() {
        eprintln!("note: skipping, no Go toolchain installed");
        return;
    }
    let run = start(
        &bin,
        &[
            "-out",
            "oracle.txt",
            "-pprof",
            "go.pb.gz",
            "-extra",
            "40",
            "-lifetime",
            "5m",
        ],
    );
    let want = oracle_count(&run) as u64;
    let go_profile = std::fs::read(run.dir.path().join("go.pb.gz")).unwrap();
    let gz = dump_bytes(run.pid, &["--format", "pprof"]);
    let gz_match = dump_bytes(run.pid, &["--format", "pprof", "--match", "parkExtra"]);
    assert_running_untraced(run.pid);
    // The fixture is not needed while pprof runs (which may build pprof).
    drop(run);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzipped, as Go writes profiles");
    let path = dir.path().join("goroutine.pb.gz");
    std::fs::write(&path, &gz).unwrap();
    for go in readers {
        let (total, rows) = pprof_top(go, &path, dir.path());
        assert_eq!(
            total,
            want,
            "{}: total goroutines of go{version}/{mode}'s profile",
            go.display()
        );
        let cum = |f: &str| rows.iter().find(|(n, _)| n == f).map(|(_, c)| *c);
        assert_eq!(cum("main.parkExtra"), Some(40), "{}", go.display());
        assert_eq!(cum("main.chanReceive"), Some(1), "{}", go.display());
        // Go's goroutine profile keeps the runtime frames.
        assert!(cum("runtime.gopark").unwrap_or(0) >= 40, "{}", go.display());
    }
    let go = &readers[readers.len() - 1];
    // Go's own goroutine profile of the same goroutines (written by the
    // fixture) has the same count for every function, except where the
    // two instants differ: goroutine 1 (writing the profile then, idle
    // now) and the spinner.
    let go_path = dir.path().join("go.pb.gz");
    std::fs::write(&go_path, &go_profile).unwrap();
    let (go_total, go_rows) = pprof_top(go, &go_path, dir.path());
    assert_eq!(
        go_total, want,
        "Go's own profile counts what runtime.Stack does"
    );
    let shape = regex::Regex::new(r"\[[^\]]*go\.shape\.[^\]]*\]").unwrap();
    let (_, rows) = pprof_top(go, &path, dir.path());
    let comparable = |rows: &[(String, u64)]| -> std::collections::BTreeMap<String, u64> {
        rows.iter()
            .map(|(f, c)| (shape.replace_all(f, "[...]").to_string(), *c))
            .filter(|(f, _)| {
                f.starts_with("main.")
                    && ![
                        "main.main",
                        "main.idle",
                        "main.writeGoroutineProfile",
                        "main.spin",
                    ]
                    .contains(&f.as_str())
            })
            .collect()
    };
    let (theirs, ours) = (comparable(&go_rows), comparable(&rows));
    assert!(theirs.len() >= 20, "{theirs:?}");
    assert_eq!(
        ours, theirs,
        "go{version}/{mode}: per-function goroutine counts differ from Go's own profile"
    );
    // Labels travel as Sample.label: pprof's -tags lists them.
    let out = Command::new(go)
        .args(["tool", "pprof", "-tags"])
        .arg(&path)
        .env("GOTOOLCHAIN", "local")
        .env("HOME", dir.path())
        .env("GOCACHE", gocache(go))
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&out.stdout);
    assert!(tags.contains("tenant") && tags.contains("acme"), "{tags}");
    // Filters narrow the profile too.
    std::fs::write(&path, &gz_match).unwrap();
    assert_eq!(pprof_top(go, &path, dir.path()).0, 40);
}

#[test]
fn pprof_read_by_every_go_toolchain() {
    pprof_check("1.27", "default", &installed_go());
}

#[test]
fn pprof_of_stripped_go1_19() {
    let readers = installed_go();
    let last: Vec<PathBuf> = readers.last().cloned().into_iter().collect();
    pprof_check("1.19", "stripped", &last);
}

#[test]
fn folded_counts_sum_to_goroutines() {
    for (version, mode) in [("1.19", "stripped"), ("1.27", "default")] {
        let Some(bin) = fixture(version, mode, "parked") else {
            continue;
        };
        let run = start(
            &bin,
            &["-out", "oracle.txt", "-extra", "40", "-lifetime", "5m"],
        );
        let want = oracle_count(&run);
        let text = String::from_utf8(dump_bytes(run.pid, &["--format", "folded"])).unwrap();
        let mut total = 0;
        let mut extra = 0;
        for line in text.lines() {
            let (stack, n) = line.rsplit_once(' ').unwrap();
            let n: usize = n.parse().unwrap();
            total += n;
            let frames: Vec<&str> = stack.split(';').collect();
            assert!(
                frames.last().unwrap().starts_with('['),
                "status is the leaf: {line}"
            );
            if frames.contains(&"main.parkExtra") {
                extra += n;
                assert_eq!(frames.last(), Some(&"[chan receive]"));
            }
        }
        assert_eq!(total, want, "go{version}/{mode}:\n{text}");
        assert_eq!(extra, 40, "go{version}/{mode}");
        assert!(
            text.contains("\nmain.chanReceive;[chan receive] 1\n"),
            "{text}"
        );
        // Stacks are root first.
        assert!(
            text.lines()
                .any(|l| l.starts_with("main.main;main.idle;[chan receive] ")),
            "{text}"
        );
    }
}

#[test]
fn svg_flame_graph_is_well_formed() {
    let Some(bin) = fixture("1.27", "stripped", "parked") else {
        return;
    };
    let run = start(
        &bin,
        &["-out", "oracle.txt", "-extra", "40", "-lifetime", "5m"],
    );
    let want = oracle_count(&run);
    let svg = String::from_utf8(dump_bytes(run.pid, &["--format", "svg"])).unwrap();
    // Like flamegraph.pl, inferno declares the SVG 1.1 DTD.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg, opts)
        .unwrap_or_else(|e| panic!("the SVG is not well-formed XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "title")
        .filter_map(|n| n.text())
        .collect();
    let find = |prefix: &str| titles.iter().find(|t| t.starts_with(prefix)).copied();
    // inferno's title per frame: "NAME (N goroutines, P%)".
    assert_eq!(
        find("all ("),
        Some(format!("all ({want} goroutines, 100%)").as_str()),
        "{titles:?}"
    );
    assert_eq!(
        find("main.parkExtra ("),
        Some(
            format!(
                "main.parkExtra (40 goroutines, {:.2}%)",
                4000.0 / want as f64
            )
            .as_str()
        ),
    );
    assert!(
        find("main.chanReceive (1 goroutines").is_some(),
        "{titles:?}"
    );
    assert!(find("[chan receive] (").is_some(), "{titles:?}");
    assert!(svg.contains(&format!("goroutines of pid {}", run.pid)));
    // Nothing to draw is an error, not an empty picture.
    let out = gopeek()
        .args([
            "dump",
            "--pid",
            &run.pid.to_string(),
            "--format",
            "svg",
            "--match",
            "no-such-function",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no goroutines to draw"));
}
