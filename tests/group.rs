//! `gopeek dump --group` and the filters, run like a user would.
//!
//! The grouping oracle is Go: the `parked` fixture (with 40 extra
//! goroutines parked at 12 recursion depths, so buckets hold several
//! goroutines) writes `runtime.Stack(buf, true)`; the test groups that text
//! itself by status and frame lines and the partition of goroutine ids must
//! equal gopeek's buckets. Filters are checked against predicates the test
//! evaluates on gopeek's own unfiltered JSON of the same (static) process.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn comparable(b: &Block) -> bool {
    b.id != 1 && b.status != "running" && b.status != "runnable"
}

fn run_json(args: &[&str]) -> Value {
    let out = gopeek().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gopeek {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Frame lines of a block without the `created by` pair.
fn stack_lines(b: &Block) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for l in &b.lines {
        if skip {
            skip = false;
            continue;
        }
        if l.starts_with("created by ") {
            skip = true;
            continue;
        }
        out.push(l.clone());
    }
    out
}

fn group_oracle(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    let run = start(
        &bin,
        &["-out", "oracle.txt", "-extra", "40", "-lifetime", "5m"],
    );
    let oracle_text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let oracle: Vec<Block> = parse_dump(&oracle_text)
        .into_iter()
        .filter(comparable)
        .collect();
    let pid = run.pid.to_string();

    // Go's dump grouped by the test: (status, frame lines) -> ids.
    let mut want: BTreeMap<(String, Vec<String>), BTreeSet<u64>> = BTreeMap::new();
    for b in &oracle {
        want.entry((b.status.clone(), stack_lines(b)))
            .or_default()
            .insert(b.id);
    }
    let comparable_ids: BTreeSet<u64> = oracle.iter().map(|b| b.id).collect();
    assert!(
        want.values().any(|ids| ids.len() >= 3),
        "the oracle should have real buckets"
    );

    let v = run_json(&["dump", "--pid", &pid, "--group", "--format", "json"]);
    assert_eq!(v["schema"], "gopeek.group/1");
    let buckets = v["buckets"].as_array().unwrap();
    let mut got: BTreeMap<(String, Vec<String>), BTreeSet<u64>> = BTreeMap::new();
    let mut prev = usize::MAX;
    let mut total = 0;
    for b in buckets {
        let count = b["count"].as_u64().unwrap() as usize;
        assert!(count <= prev, "buckets sorted by size");
        prev = count;
        total += count;
        let ids: BTreeSet<u64> = b["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), count, "ids of a bucket are all listed in JSON");
        let ids: BTreeSet<u64> = ids.intersection(&comparable_ids).copied().collect();
        if ids.is_empty() {
            continue;
        }
        // Frame lines as Go prints them at GOTRACEBACK=all, without offsets
        // (the bucket gives function and file:line).
        let lines: Vec<String> = b["frames"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                [
                    format!("{}(...)", f["function"].as_str().unwrap()),
                    format!("\t{}:{}", f["file"].as_str().unwrap(), f["line"]),
                ]
            })
            .collect();
        let status = b["status"].as_str().unwrap().to_string();
        assert!(
            got.insert((status, lines), ids).is_none(),
            "two buckets with one key"
        );
    }
    assert_eq!(total as u64, v["goroutines"].as_u64().unwrap());
    // Strip offsets from Go's lines for the comparison.
    let want: BTreeMap<(String, Vec<String>), BTreeSet<u64>> = want
        .into_iter()
        .map(|((s, lines), ids)| {
            let lines = lines
                .into_iter()
                .map(|l| match l.rsplit_once(" +0x") {
                    Some((head, _)) if l.starts_with('\t') => head.to_string(),
                    _ => l,
                })
                .collect();
            ((s, lines), ids)
        })
        .collect();
    // The same partition of goroutine ids, each part with the same
    // status and Go's frames (Go elides the middle or the end of very deep
    // stacks; the bucket keeps every frame, so Go's lines are a
    // subsequence of the bucket's).
    let parts = |m: &BTreeMap<(String, Vec<String>), BTreeSet<u64>>| -> BTreeMap<BTreeSet<u64>, (String, Vec<String>)> {
        m.iter().map(|(k, ids)| (ids.clone(), k.clone())).collect()
    };
    let (got, want) = (parts(&got), parts(&want));
    let got_ids: Vec<&BTreeSet<u64>> = got.keys().collect();
    let want_ids: Vec<&BTreeSet<u64>> = want.keys().collect();
    assert_eq!(
        got_ids, want_ids,
        "go{version}/{mode}: buckets differ from Go's dump grouped by the test"
    );
    for (ids, (status, lines)) in &want {
        let (gstatus, glines) = &got[ids];
        assert_eq!(gstatus, status, "go{version}/{mode}: status of {ids:?}");
        let mut it = glines.iter();
        for l in lines.iter().filter(|l| !l.starts_with("...")) {
            assert!(
                it.any(|g| g == l),
                "go{version}/{mode}: bucket {ids:?}: Go's line {l:?} not in gopeek's frames {glines:?}"
            );
        }
    }

    // Text: the largest bucket heads the output with its count and status.
    let out = gopeek()
        .args(["dump", "--pid", &pid, "--group", "--top", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let first = &buckets[0];
    let head = format!(
        "\n\n{}: {}",
        first["count"],
        first["status"].as_str().unwrap()
    );
    assert!(text.contains(&head), "{head:?} not in:\n{text}");
    assert!(text.contains("more buckets"), "--top 2 elides:\n{text}");
    assert_eq!(text.matches("\n    ids: ").count(), 2, "{text}");

    // Same functions, any line: never more buckets, same total.
    let f = run_json(&[
        "dump",
        "--pid",
        &pid,
        "--group",
        "--similarity",
        "function",
        "--format",
        "json",
    ]);
    assert!(f["buckets"].as_array().unwrap().len() <= buckets.len());
    assert_eq!(f["goroutines"], v["goroutines"]);
    assert_running_untraced(run.pid);
}

#[test]
fn group_matches_go_dump_go1_19_default() {
    group_oracle("1.19", "default");
}

#[test]
fn group_matches_go_dump_go1_27_stripped() {
    group_oracle("1.27", "stripped");
}

#[test]
fn group_matches_go_dump_go1_23_pie() {
    group_oracle("1.23", "pie");
}

/// Every filter keeps exactly the goroutines its predicate selects on the
/// unfiltered JSON of the same process.
#[test]
fn filters_select_what_they_say() {
    let Some(bin) = fixture("1.27", "default", "parked") else {
        return;
    };
    let run = start(
        &bin,
        &["-out", "oracle.txt", "-extra", "12", "-lifetime", "5m"],
    );
    let pid = run.pid.to_string();
    let all = run_json(&["dump", "--pid", &pid, "--format", "json"]);
    let gs = all["goroutines"].as_array().unwrap();
    // The spinner changes state between snapshots; leave it out.
    let stable = |g: &Value| {
        !g["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == "main.spin")
    };
    let ids = |v: &Value| -> BTreeSet<u64> {
        v["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| stable(g))
            .map(|g| g["id"].as_u64().unwrap())
            .collect()
    };
    let select = |p: &dyn Fn(&Value) -> bool| -> BTreeSet<u64> {
        gs.iter()
            .filter(|g| stable(g) && p(g))
            .map(|g| g["id"].as_u64().unwrap())
            .collect()
    };
    let any_frame = |g: &Value, needle: &str| {
        g["frames"].as_array().unwrap().iter().any(|f| {
            f["function"].as_str().unwrap().contains(needle)
                || f["file"].as_str().unwrap().contains(needle)
        })
    };
    type Case<'a> = (Vec<&'a str>, Box<dyn Fn(&Value) -> bool>);
    let cases: Vec<Case> = vec![
        (
            vec!["--wait-reason", "chan receive"],
            Box::new(|g: &Value| {
                g["status"].as_str().unwrap().trim_end_matches(" (scan)") == "chan receive"
            }),
        ),
        (
            vec!["--wait-reason", "chan send", "--wait-reason", "SELECT"],
            Box::new(|g: &Value| {
                let s = g["status"].as_str().unwrap().trim_end_matches(" (scan)");
                s == "chan send" || s == "select"
            }),
        ),
        (
            vec!["--match", "main\\.parkExtra"],
            Box::new(move |g: &Value| any_frame(g, "main.parkExtra")),
        ),
        (
            vec!["--match", "netpoll\\.go$", "--state", "waiting"],
            Box::new(move |g: &Value| any_frame(g, "netpoll.go")),
        ),
        (
            vec!["--label", "tenant=acme"],
            Box::new(|g: &Value| g["labels"]["tenant"] == "acme"),
        ),
        (
            vec!["--label", "tenant=nobody"],
            Box::new(|_: &Value| false),
        ),
        (
            vec!["--created-by", "^main\\.spawner$"],
            Box::new(|g: &Value| g["created_by"]["function"] == "main.spawner"),
        ),
        (vec!["--min-wait", "100000"], Box::new(|_: &Value| false)),
    ];
    for (args, pred) in &cases {
        let want = select(pred.as_ref());
        let mut full = vec!["dump", "--pid", &pid, "--format", "json"];
        full.extend(args.iter().copied());
        let got = ids(&run_json(&full));
        assert_eq!(got, want, "filter {args:?}");
    }
    // Sanity: the cases above are not vacuous.
    assert!(select(&|g: &Value| g["labels"]["tenant"] == "acme").len() == 1);
    assert!(select(&|g: &Value| any_frame(g, "main.parkExtra")).len() == 12);

    // Filters apply to --group too.
    let v = run_json(&[
        "dump",
        "--pid",
        &pid,
        "--group",
        "--format",
        "json",
        "--match",
        "main\\.parkExtra",
    ]);
    assert_eq!(v["goroutines"], 12);

    // Usage errors exit 2 without touching the target.
    for bad in [
        vec!["--match", "("],
        vec!["--label", "=x"],
        vec!["--group", "--format", "folded"],
        vec!["--top", "3"],
    ] {
        let mut full = vec!["dump", "--pid", &pid];
        full.extend(bad.iter().copied());
        let out = gopeek().args(&full).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_running_untraced(run.pid);
}

/// On the leak fixture, the goroutines Go saw parked in the leak and in
/// the fixed pool are in gopeek's buckets for those stacks, with the right
/// creation sites.
#[test]
fn group_leaky_buckets() {
    let Some(bin) = fixture("1.27", "default", "leaky") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "2m"]);
    let oracle_text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let oracle = parse_dump(&oracle_text);
    let in_oracle = |f: &str| -> BTreeSet<u64> {
        oracle
            .iter()
            .filter(|b| {
                b.status == "chan receive" && b.lines.first().map(String::as_str) == Some(f)
            })
            .map(|b| b.id)
            .collect()
    };
    let leaked = in_oracle("main.handleRequest(...)");
    let pool = in_oracle("main.poolWorker(...)");
    assert!(
        leaked.len() >= 6,
        "leak too small in oracle: {}",
        leaked.len()
    );
    let v = run_json(&[
        "dump",
        "--pid",
        &run.pid.to_string(),
        "--group",
        "--format",
        "json",
    ]);
    let bucket = |f: &str| {
        v["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["status"] == "chan receive" && b["frames"][0]["function"] == f)
            .unwrap_or_else(|| panic!("no bucket for {f}"))
            .clone()
    };
    let ids = |b: &Value| -> BTreeSet<u64> {
        b["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect()
    };
    let lb = bucket("main.handleRequest");
    assert!(ids(&lb).is_superset(&leaked), "leaked goroutines persist");
    assert_eq!(lb["created_by"][0]["function"], "main.serveRequests");
    assert_eq!(lb["created_by"].as_array().unwrap().len(), 1);
    assert!(lb["count"].as_u64().unwrap() as usize >= leaked.len());
    // The fixed pool: the same goroutines as in Go's dump (a worker busy
    // at either instant may be elsewhere, so 5..=8 of the 8).
    let started_by_pool: BTreeSet<u64> = oracle
        .iter()
        .filter(|b| {
            b.lines
                .iter()
                .any(|l| l.starts_with("created by main.startPool"))
        })
        .map(|b| b.id)
        .collect();
    let pb = bucket("main.poolWorker");
    assert!(pool.len() >= 5, "pool in oracle: {pool:?}");
    assert!(
        ids(&pb).is_subset(&started_by_pool),
        "pool goroutines are never replaced"
    );
    assert!((5..=8).contains(&pb["count"].as_u64().unwrap()));
    assert_eq!(pb["created_by"][0]["function"], "main.startPool");
}
