//! Leak verdicts on synthetic sample series.

use super::*;
use crate::analyze::filter::tests::{frame, goroutine};

fn set(r: std::ops::Range<u64>) -> BTreeSet<u64> {
    r.collect()
}

const T: [f64; 4] = [0.0, 0.5 / 60.0, 1.0 / 60.0, 1.5 / 60.0];

/// Every goroutine of the process per sample: the cluster's plus
/// `others` (e.g. pool workers busy elsewhere).
fn all(ids: &[BTreeSet<u64>], others: &[u64]) -> Vec<HashSet<u64>> {
    ids.iter()
        .map(|s| s.iter().chain(others).copied().collect())
        .collect()
}

#[test]
fn steady_leak_grows() {
    let ids = [set(0..12), set(0..27), set(0..42), set(0..57)];
    let (v, _, new, retained, k) = judge(&ids, &all(&ids, &[]), &T);
    assert_eq!(v, Verdict::Growing);
    assert_eq!(new, vec![12, 15, 15, 15]);
    assert_eq!(retained, 1.0);
    assert!((k - 1800.0).abs() < 1e-6, "{k}");
    // A leak that starts during the observation.
    let ids = [set(0..0), set(0..3), set(0..6), set(0..9)];
    assert_eq!(judge(&ids, &all(&ids, &[]), &T).0, Verdict::Growing);
}

#[test]
fn pools_are_not_growing() {
    // A fixed pool of 8 (ids 0..8) whose workers are sometimes busy
    // elsewhere: every count pattern, even a rising one, is persistent
    // because no goroutine is created.
    let workers: Vec<u64> = (0..8).collect();
    for ids in [
        [set(1..8), set(0..8), set(0..8), set(0..8)],
        [set(2..8), set(1..8), set(0..8), set(0..7)],
        [set(2..8), set(1..8), set(0..8), set(0..8)],
        [set(5..8), set(3..8), set(1..8), set(0..8)],
    ] {
        let (v, reason, new, ..) = judge(&ids, &all(&ids, &workers), &T);
        assert_eq!(v, Verdict::Persistent, "{ids:?}: {reason}");
        assert_eq!(&new[1..], &[0, 0, 0]);
    }
    // Recycling pool warming up: rises each time with new goroutines,
    // but nobody stays.
    let ids = [set(0..4), set(10..15), set(20..26), set(30..36)];
    let (v, reason, ..) = judge(&ids, &all(&ids, &[]), &T);
    assert_eq!(v, Verdict::Persistent, "{reason}");
    assert!(reason.contains("replaced"), "{reason}");
    // Two samples never show a trend.
    let ids = [set(0..3), set(0..9)];
    let (v, ..) = judge(&ids, &all(&ids, &[]), &T[..2]);
    assert_eq!(v, Verdict::Persistent);
}

#[test]
fn slow_leak_grows_single_jump_does_not() {
    let t: Vec<f64> = (0..6).map(|i| i as f64 / 6.0).collect();
    // One new goroutine every other interval, never leaving.
    let ids = [
        set(0..5),
        set(0..6),
        set(0..6),
        set(0..7),
        set(0..7),
        set(0..8),
    ];
    let (v, reason, ..) = judge(&ids, &all(&ids, &[]), &t);
    assert_eq!(v, Verdict::Growing, "{reason}");
    // A batch started once: one rise.
    let ids = [
        set(0..5),
        set(0..5),
        set(0..5),
        set(0..9),
        set(0..9),
        set(0..9),
    ];
    let (v, reason, ..) = judge(&ids, &all(&ids, &[]), &t);
    assert_eq!(v, Verdict::Persistent, "{reason}");
    assert!(reason.contains("not steady"), "{reason}");
    // Rising in 2 of 5 intervals is not half.
    let ids = [
        set(0..5),
        set(0..6),
        set(0..6),
        set(0..6),
        set(0..6),
        set(0..7),
    ];
    assert_eq!(judge(&ids, &all(&ids, &[]), &t).0, Verdict::Persistent);
}

#[test]
fn bursts_are_transient() {
    let ids = [set(0..0), set(0..20), set(0..0), set(40..60)];
    assert_eq!(judge(&ids, &all(&ids, &[]), &T).0, Verdict::Transient);
    let ids = [set(0..20), set(0..0), set(0..0), set(0..0)];
    assert_eq!(judge(&ids, &all(&ids, &[]), &T).0, Verdict::Transient);
}

#[test]
fn slope_is_least_squares() {
    assert!((slope(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]) - 2.0).abs() < 1e-12);
    assert_eq!(slope(&[1.0, 1.0], &[1.0, 5.0]), 0.0);
    assert_eq!(slope(&[], &[]), 0.0);
}

pub(crate) fn snap(gs: Vec<GoroutineSnapshot>) -> DumpSnapshot {
    DumpSnapshot {
        schema: "gopeek.dump/1",
        nspid: None,
        container: None,
        pid: 9,
        exe: "/bin/x".into(),
        go_version: "go1.27".into(),
        go_minor: 27,
        header_labels: false,
        taken_at: String::new(),
        pause_us: 3,
        mode: "consistent",
        note: None,
        goroutines: gs,
        warnings: vec![],
    }
}

pub(crate) fn leak(id: u64) -> GoroutineSnapshot {
    goroutine(
        id,
        "chan receive",
        vec![
            frame("runtime.gopark", "/go/proc.go", 1, true),
            frame("main.handle", "/src/h.go", 7, false),
        ],
        "main.serve",
    )
}

pub(crate) fn worker(id: u64) -> GoroutineSnapshot {
    goroutine(
        id,
        "chan receive",
        vec![frame("main.worker", "/src/w.go", 3, false)],
        "main.pool",
    )
}

#[test]
fn oldest_is_longest_blocked_then_earliest() {
    let mut t = LeakTracker::new(Similarity::Exact, false);
    t.add(0.0, snap(vec![leak(7), leak(9)]));
    let mut blocked = leak(20);
    blocked.wait_minutes = Some(5);
    t.add(30.0, snap(vec![leak(7), leak(9), blocked.clone()]));
    let r = t.report(None);
    let o = r.clusters[0].oldest.as_ref().unwrap();
    assert_eq!((o.id, o.wait_minutes, o.first_seen), (20, 5, 1));
    // Without minutes, the one seen first (lowest id on a tie).
    t.add(60.0, snap(vec![leak(9), leak(7)]));
    let r = t.report(None);
    let o = r.clusters[0].oldest.as_ref().unwrap();
    assert_eq!((o.id, o.first_seen), (7, 0));
    assert_eq!(r.clusters[0].counts, vec![2, 3, 2]);
    assert_eq!(r.elapsed_s, vec![0.0, 30.0, 60.0]);
}
