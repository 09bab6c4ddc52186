//! tests/process_attach.rs: its target (the heartbeat wrapper) and what the
//! tests and the helper modes ask of /proc, through gopeek's own proc_fs.

use crate::common::{self, Launch, Running};
use gopeek::process::proc_fs;
use gopeek::process::SeizeOptions;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use common::wait_until;

pub fn tmpdir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// tests/targets/heartbeat, built on first use.
pub fn heartbeat() -> PathBuf {
    common::test_target("heartbeat")
}

/// tests/targets/heartbeat built with `-buildmode=pie`.
pub fn heartbeat_pie() -> PathBuf {
    common::test_target("heartbeat-pie")
}

/// tests/targets/sigcount.c, built on first use.
pub fn sigcount() -> PathBuf {
    common::test_target("sigcount")
}

/// A target process printing `beat=N x=M` lines; killed on drop.
pub struct Target {
    _run: Running,
    pub pid: i32,
    last: Arc<Mutex<(u64, u64)>>,
}

impl Target {
    /// Starts the target, waits for its `ready` line and two heartbeats.
    pub fn start(bin: &std::path::Path, args: &[&str]) -> Target {
        let t = Target::launch(bin, args, true);
        assert!(
            t.wait_for(|c| c.0 >= 2, Duration::from_secs(20)),
            "target {} never printed a heartbeat",
            bin.display()
        );
        t
    }

    /// Starts the target without waiting for it to come up.
    pub fn spawn(bin: &std::path::Path, args: &[&str]) -> Target {
        Target::launch(bin, args, false)
    }

    fn launch(bin: &std::path::Path, args: &[&str], wait: bool) -> Target {
        let last = Arc::new(Mutex::new((0u64, 0u64)));
        let sink = last.clone();
        let l = Launch::new(bin).args(args).on_line(move |line| {
            if line.starts_with("ready ") {
                return;
            }
            let mut v = (0, 0);
            for tok in line.split_whitespace() {
                if let Some((k, x)) = tok.split_once('=') {
                    let x = x.parse().unwrap_or(0);
                    if k == "beat" {
                        v.0 = x
                    } else {
                        v.1 = x
                    }
                }
            }
            *sink.lock().unwrap() = v;
        });
        let run = if wait { l.start() } else { l.spawn() };
        Target {
            pid: run.pid,
            _run: run,
            last,
        }
    }

    pub fn counters(&self) -> (u64, u64) {
        *self.last.lock().unwrap()
    }

    pub fn wait_for(&self, pred: impl Fn((u64, u64)) -> bool, timeout: Duration) -> bool {
        wait_until(timeout, || pred(self.counters()))
    }

    /// The heartbeat advances by at least 3 within a few seconds.
    pub fn runs(&self) -> bool {
        let b = self.counters().0;
        self.wait_for(|c| c.0 >= b + 3, Duration::from_secs(10))
    }
}

/// `(tid, state letter)` of every live thread of `pid`.
pub fn thread_states(pid: i32) -> Vec<(i32, char)> {
    proc_fs::thread_ids(pid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| proc_fs::thread_state(pid, t).ok().map(|s| (t, s)))
        .collect()
}

/// No thread is stopped by a tracer or traced by anyone.
pub fn released(pid: i32) -> bool {
    let tids = proc_fs::thread_ids(pid).unwrap_or_default();
    !tids.is_empty()
        && tids.iter().all(|&t| {
            proc_fs::thread_state(pid, t).map_or(true, |s| s != 't')
                && proc_fs::thread_tracer_pid(pid, t).map_or(true, |p| p.is_none())
        })
}

pub fn wait_released(pid: i32) -> bool {
    wait_until(Duration::from_secs(10), || released(pid))
}

pub fn all_in_state(pid: i32, state: char) -> bool {
    let st = thread_states(pid);
    !st.is_empty() && st.iter().all(|&(_, s)| s == state)
}

pub fn kill(pid: i32, sig: i32) {
    let _ = common::kill(pid, sig);
}

pub fn elf_header_address(pid: i32) -> u64 {
    proc_fs::exe_mapping(pid).expect("exe mapping").start
}

pub fn opts() -> SeizeOptions {
    SeizeOptions {
        max_pause: Duration::from_secs(10),
        ..SeizeOptions::default()
    }
}
