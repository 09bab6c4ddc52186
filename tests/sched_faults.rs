//! Faults for `gopeek sched --consistent` (issue 12, "Tests"): gopeek is
//! SIGKILLed at many moments while it repeatedly holds the target (every
//! 10 ms with `--interval`), including mid-hold; afterwards the target
//! must be running and untraced every time, and its heartbeat must go on.
//!
//! Target: the `busy` fixture (prints `tick N` every 50 ms), go1.27
//! default and go1.19 stripped. GOPEEK_SCHED_FAULT_ITERS overrides the
//! number of kills per target (default 30).

mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn sched_consistent_survives_sigkill() {
    let iters: u64 = std::env::var("GOPEEK_SCHED_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    for (label, bin) in fixtures(&[("1.27", "default"), ("1.19", "stripped")], "busy") {
        let ticks = Arc::new(AtomicU64::new(0));
        let t2 = ticks.clone();
        let target = Launch::new(&bin)
            .on_line(move |l| {
                if l.starts_with("tick ") {
                    t2.fetch_add(1, Ordering::SeqCst);
                }
            })
            .kill_with_test()
            .start();
        let pid = target.pid.to_string();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut held_kills = 0;
        for i in 0..iters {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let delay = Duration::from_micros(2_000 + (seed >> 33) % 60_000);
            let mut child = gopeek()
                .args([
                    "sched",
                    "--pid",
                    &pid,
                    "--consistent",
                    "--detail",
                    "--interval",
                    "10ms",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            // Was the target traced (held) at the moment of the kill?
            if leader_tracer(target.pid) != 0 {
                held_kills += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            if let Err(e) = wait_running_untraced(target.pid) {
                panic!(
                    "{label}: iteration {i} (kill after {delay:?}): target not running untraced: {e}\n{}",
                    describe_threads(target.pid)
                );
            }
            let before = ticks.load(Ordering::SeqCst);
            let t0 = Instant::now();
            while ticks.load(Ordering::SeqCst) == before {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "{label}: iteration {i}: heartbeat stopped after gopeek was killed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        eprintln!("{label}: {iters} kills, {held_kills} while the target was traced");
    }
}
