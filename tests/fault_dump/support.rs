//! tests/fault_dump.rs: the `busy` target, and running gopeek against it
//! until an aimed moment (calibrated, with a seeded random delay).

use crate::common::{
    self, describe_threads, leader_tracer, wait_running_untraced, Launch, Running,
};
use std::io::Read;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64* (no new crates).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut s =
            seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        if s == 0 {
            s = 1;
        }
        let mut r = Rng(s);
        r.next();
        r
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..=max`.
    pub fn duration(&mut self, max: Duration) -> Duration {
        let ns = max.as_nanos() as u64;
        Duration::from_nanos(self.next() % (ns + 1))
    }
}

/// A running `busy` fixture whose heartbeat is read continuously; killed
/// (and reaped) on drop.
pub struct Busy {
    pub run: Running,
    pub pid: i32,
    ticks: Arc<AtomicU64>,
    pub label: String,
}

impl Busy {
    pub fn start(label: &str, bin: &Path) -> Busy {
        let ticks = Arc::new(AtomicU64::new(0));
        let t = ticks.clone();
        // The harness keeps reading for the whole life of the target: a full
        // pipe would block it and look like a stopped heartbeat.
        let run = Launch::new(bin)
            .on_line(move |line| {
                if let Some(n) = line
                    .strip_prefix("tick ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                {
                    t.store(n, Ordering::SeqCst);
                }
            })
            .start();
        Busy {
            pid: run.pid,
            run,
            ticks,
            label: label.to_string(),
        }
    }

    pub fn tick(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst)
    }

    /// Waits until the heartbeat passes its current value; returns how long
    /// that took.
    pub fn wait_heartbeat(&self, within: Duration) -> Result<Duration, String> {
        let t0 = self.tick();
        let start = Instant::now();
        while start.elapsed() < within {
            if self.tick() > t0 {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(format!(
            "{} (pid {}): heartbeat stuck at tick {t0} for {within:?}; threads {}",
            self.label,
            self.pid,
            describe_threads(self.pid)
        ))
    }

    pub fn signal(&self, sig: i32) {
        // kill(2) on our own unreaped child.
        if let Err(e) = common::kill(self.pid, sig) {
            panic!("kill({}, {sig}): {e}", self.pid);
        }
    }
}

pub fn gopeek_dump(pid: i32) -> Child {
    common::gopeek()
        .args(["dump", "--pid", &pid.to_string(), "--format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning gopeek")
}

pub fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

pub fn sig_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "?",
    }
}

/// How long an undisturbed `gopeek dump` of this target takes (wall time)
/// and how long it holds it (`pause_us`), medians of 5 runs.
pub struct Calibration {
    pub wall: Duration,
    pub pause: Duration,
}

pub fn calibrate(busy: &Busy) -> Calibration {
    let mut walls = Vec::new();
    let mut pauses = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = common::gopeek()
            .args(["dump", "--pid", &busy.pid.to_string(), "--format", "json"])
            .output()
            .expect("running gopeek");
        walls.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}: undisturbed gopeek dump failed ({}): {}",
            busy.label,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gopeek dump JSON");
        let n = v["goroutines"].as_array().map(|a| a.len()).unwrap_or(0);
        assert!(
            n >= 50,
            "{}: only {n} goroutines in an undisturbed dump",
            busy.label
        );
        pauses.push(Duration::from_micros(v["pause_us"].as_u64().unwrap_or(0)));
        wait_running_untraced(busy.pid).unwrap();
    }
    walls.sort();
    pauses.sort();
    Calibration {
        wall: walls[2],
        pause: pauses[2],
    }
}

/// When to send the signal, relative to gopeek's start.
#[derive(Clone, Copy, Debug)]
pub enum Aim {
    /// Wait until the target's leader is traced, then a random delay up to
    /// a bit more than the usual pause: hits the interrupt, the copy, the
    /// detach.
    Attach(Duration),
    /// A random delay after spawn, up to past the end of a normal dump.
    Spread(Duration),
}

pub fn pick_aim(i: usize, rng: &mut Rng, cal: &Calibration) -> Aim {
    let hold = cal.pause + cal.pause / 5 + Duration::from_micros(500);
    match i % 4 {
        0 | 1 => Aim::Attach(rng.duration(hold)),
        2 => Aim::Spread(rng.duration(cal.wall + cal.wall / 5)),
        // The first milliseconds: start-up, seccomp, reading the binary.
        _ => Aim::Spread(rng.duration(Duration::from_millis(8))),
    }
}

/// What gopeek was doing when the signal was sent, as seen from outside.
#[derive(Default, Debug)]
pub struct Watch {
    /// gopeek exited on its own before the signal.
    pub exited: Option<ExitStatus>,
    /// The target's leader was traced at some point before the signal.
    pub saw_attached: bool,
    /// ... and right before the signal.
    pub attached_at_signal: bool,
}

/// Runs gopeek against `pid` until the aimed moment, watching the target's
/// TracerPid, then calls `fire` (unless gopeek already exited). Returns
/// gopeek (not yet waited for, unless it exited) and what was seen.
pub fn run_until(pid: i32, aim: Aim, fire: impl FnOnce(&mut Child)) -> (Child, Watch) {
    let mut child = gopeek_dump(pid);
    let start = Instant::now();
    let mut w = Watch::default();
    let deadline = match aim {
        Aim::Spread(d) => start + d,
        Aim::Attach(d) => {
            loop {
                if leader_tracer(pid) != 0 {
                    w.saw_attached = true;
                    break;
                }
                if let Some(st) = child.try_wait().unwrap() {
                    w.exited = Some(st);
                    return (child, w);
                }
                if start.elapsed() > Duration::from_secs(5) {
                    break;
                }
                std::hint::spin_loop();
            }
            Instant::now() + d
        }
    };
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            w.exited = Some(st);
            return (child, w);
        }
        if leader_tracer(pid) != 0 {
            w.saw_attached = true;
        }
    }
    if let Some(st) = child.try_wait().unwrap() {
        w.exited = Some(st);
        return (child, w);
    }
    w.attached_at_signal = leader_tracer(pid) != 0;
    w.saw_attached |= w.attached_at_signal;
    fire(&mut child);
    (child, w)
}
