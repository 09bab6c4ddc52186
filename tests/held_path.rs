//! The sudo path of `snapshot_pid` (everything parsed and read while the
//! target is held, after the session hook) gives the same goroutines as the
//! default path (read while running, confirmed while held), in the build
//! modes where they could differ: PIE (the load bias comes from the
//! mapping read before the hook), stripped (tables instead of DWARF) and
//! cgo. The hook here drops nothing; tests/sudo.rs runs the real drop.

mod common;

use common::{assert_running_untraced, fixture, start};
use gopeek::snapshot::AfterSeize;
use gopeek::snapshot::{snapshot_pid, SnapshotOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn goroutines(d: &gopeek::dump::DumpSnapshot) -> HashMap<u64, (String, Vec<String>)> {
    d.goroutines
        .iter()
        .map(|g| {
            let frames = g
                .frames
                .iter()
                .map(|f| format!("{} {}:{}", f.function, f.file, f.line))
                .collect();
            (g.id, (g.status.replace(" (scan)", ""), frames))
        })
        .collect()
}

#[test]
fn held_path_equals_default_path() {
    for (v, mode) in [("1.27", "pie"), ("1.19", "stripped"), ("1.24", "cgo")] {
        let Some(bin) = fixture(v, mode, "parked") else {
            continue;
        };
        let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let opts = SnapshotOptions {
            after_seize: Some(AfterSeize(Arc::new(move |pid| {
                seen.fetch_add(1, Ordering::SeqCst);
                // The hook runs with the target held: every thread stopped.
                assert!(common::thread_states(pid)
                    .iter()
                    .all(|&(state, tracer)| state == 't' && tracer != 0));
                Ok(())
            }))),
            ..SnapshotOptions::default()
        };
        let held = snapshot_pid(run.pid, &opts).expect("held path");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "hook called once");
        assert_running_untraced(run.pid);
        let normal = snapshot_pid(run.pid, &SnapshotOptions::default()).expect("default path");
        assert_running_untraced(run.pid);
        let (a, b) = (goroutines(&held), goroutines(&normal));
        // Parked goroutines agree (main and the spinner run, so they move).
        let mut compared = 0;
        for (id, g) in &a {
            if g.0 == "running" || g.0 == "runnable" || *id == 1 {
                continue;
            }
            if let Some(h) = b.get(id) {
                compared += 1;
                assert_eq!(g, h, "go{v}/{mode}: goroutine {id} differs");
            }
        }
        assert!(compared >= 20, "go{v}/{mode}: only {compared} compared");
        assert_eq!(held.mode, "consistent");
        let nb = SnapshotOptions {
            nonblocking: true,
            after_seize: opts.after_seize.clone(),
            ..SnapshotOptions::default()
        };
        assert!(
            snapshot_pid(run.pid, &nb).is_err(),
            "--nonblocking refused with a hook"
        );
        assert_running_untraced(run.pid);
    }
}
