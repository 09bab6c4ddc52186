//! `gopeek leaks` on the `leaky` fixture: a fixed worker pool, a recycling
//! pool, a steady leak (3 goroutines every 100 ms parked forever in
//! main.handleRequest, created by main.serveRequests) and a transient
//! burst. Exactly the leak must be `growing`, ranked first, with the right
//! creation site; exit code 10 says so; without the leak the exit code is 0.

mod common;
use common::*;
use serde_json::Value;

fn leaks(pid: i32, extra: &[&str]) -> (Option<i32>, String, String) {
    let pid = pid.to_string();
    let mut args = vec![
        "leaks",
        "--pid",
        &pid,
        "--samples",
        "4",
        "--interval",
        "500ms",
    ];
    args.extend_from_slice(extra);
    let out = gopeek().args(&args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn creator(c: &Value) -> &str {
    c["created_by"]["function"].as_str().unwrap_or("")
}

fn has_frame(c: &Value, f: &str) -> bool {
    c["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["function"] == f)
}

fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "leaky") else {
        return;
    };
    let run = start(&bin, &["-lifetime", "2m"]);
    let (code, out, err) = leaks(run.pid, &["--format", "json"]);
    assert_eq!(
        code,
        Some(10),
        "go{version}/{mode}: exit code; stderr: {err}"
    );
    // stderr is not a terminal here: no progress lines.
    assert!(err.is_empty(), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "gopeek.leaks/1");
    assert_eq!(v["pid"], run.pid);
    assert_eq!(v["taken_at"].as_array().unwrap().len(), 4);
    let clusters = v["clusters"].as_array().unwrap();
    let growing: Vec<&Value> = clusters
        .iter()
        .filter(|c| c["verdict"] == "growing")
        .collect();
    let summary: Vec<String> = clusters
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["verdict"],
                creator(c),
                c["status"],
                c["counts"]
            )
        })
        .collect();
    assert_eq!(
        growing.len(),
        1,
        "go{version}/{mode}: exactly one growing cluster: {summary:#?}"
    );
    assert_eq!(v["growing"], 1);
    let leak = &clusters[0];
    assert_eq!(leak["verdict"], "growing", "ranked first: {summary:#?}");
    assert_eq!(creator(leak), "main.serveRequests");
    assert!(leak["created_by"]["file"]
        .as_str()
        .unwrap()
        .ends_with("leaky/main.go"));
    assert_eq!(leak["status"], "chan receive");
    assert!(has_frame(leak, "main.handleRequest"), "{leak}");
    // The whole example stack, runtime frames marked.
    assert!(leak["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["runtime"] == true && f["function"] == "runtime.gopark"));
    let counts: Vec<u64> = leak["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[1] > w[0]),
        "the leak rises in every interval: {counts:?}"
    );
    // 3 per 100 ms is 1800 a minute; allow a loaded machine's jitter.
    let rate = leak["growth_per_min"].as_f64().unwrap();
    assert!((600.0..=3000.0).contains(&rate), "growth {rate}/min");
    assert_eq!(leak["oldest"]["first_seen"], 0);
    assert_eq!(leak["retained"], 1.0);

    // The pools are there and not growing.
    let find = |f: &str| {
        clusters
            .iter()
            .find(|c| has_frame(c, f) && c["status"] == "chan receive")
            .unwrap_or_else(|| panic!("no cluster for {f}: {summary:#?}"))
    };
    let pool = find("main.poolWorker");
    assert_eq!(pool["verdict"], "persistent");
    assert_eq!(creator(pool), "main.startPool");
    assert!(pool["counts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| (5..=8).contains(&c.as_u64().unwrap())));
    let recyclers = find("main.recycledWorker");
    assert_ne!(recyclers["verdict"], "growing");
    assert_eq!(creator(recyclers), "main.superviseRecyclers");
    for c in clusters.iter().filter(|c| creator(c) == "main.burstLoop") {
        assert_ne!(c["verdict"], "growing", "{c}");
    }

    // The text report says the same.
    let (code, text, _) = leaks(run.pid, &[]);
    assert_eq!(code, Some(10));
    assert!(text.contains("1 growing cluster(s)"), "{text}");
    let first = text.split("\n\n").nth(1).unwrap_or("");
    assert!(first.starts_with("GROWING [chan receive] +"), "{text}");
    assert!(
        first.contains("created by main.serveRequests at "),
        "{text}"
    );
    assert!(first.contains("    main.handleRequest(...)\n"), "{text}");
    assert_eq!(text.matches("\nGROWING").count(), 1, "{text}");
    assert_running_untraced(run.pid);
}

#[test]
fn leak_flagged_go1_27_default() {
    check("1.27", "default");
}

#[test]
fn leak_flagged_go1_19_stripped() {
    check("1.19", "stripped");
}

#[test]
fn no_leak_exits_0() {
    let Some(bin) = fixture("1.27", "stripped", "leaky") else {
        return;
    };
    let run = start(&bin, &["-leak-batch", "0", "-lifetime", "2m"]);
    let (code, out, err) = leaks(run.pid, &["--format", "json", "--top", "3"]);
    assert_eq!(code, Some(0), "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["growing"], 0);
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3, "--top 3");
    assert!(v["omitted_clusters"].as_u64().unwrap() > 0);
    // Largest persistent cluster first: the fixed pool of 8.
    assert_eq!(clusters[0]["verdict"], "persistent");
    assert_eq!(creator(&clusters[0]), "main.startPool");
    assert_running_untraced(run.pid);
}

#[test]
fn process_exiting_mid_watch_and_usage() {
    let Some(bin) = fixture("1.27", "default", "leaky") else {
        return;
    };
    let run = start(&bin, &["-lifetime", "1200ms"]);
    let (code, _, err) = leaks(run.pid, &[]);
    assert_eq!(code, Some(5), "{err}");
    let out = gopeek()
        .args(["leaks", "--pid", "1", "--samples", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a trend needs 3 samples");
    let out = gopeek()
        .args(["leaks", "--pid", "1", "--interval", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The exit code is documented where users look.
    let help = gopeek().args(["leaks", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status: 10 if a growing cluster"));
}
