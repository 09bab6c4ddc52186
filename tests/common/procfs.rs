//! Looking at processes from outside, through /proc (never through gopeek's
//! own code, so that these are independent checks), and waiting for them.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// `(state letter, TracerPid)` of every thread of `pid`; a thread whose
/// status cannot be read shows as `('?', -1)`.
pub fn thread_states(pid: i32) -> Vec<(char, i32)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let state = status
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .and_then(|s| s.trim().chars().next())
                .unwrap_or('?');
            let tracer = status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(-1);
            out.push((state, tracer));
        }
    }
    out
}

/// Asserts that no thread of `pid` is stopped or traced.
pub fn assert_running_untraced(pid: i32) {
    for (state, tracer) in thread_states(pid) {
        assert!(
            state != 't' && state != 'T',
            "a thread of {pid} is left stopped ({state})"
        );
        assert_eq!(tracer, 0, "a thread of {pid} is still traced");
    }
}

/// `(tid, state, TracerPid)` of every thread that could be read (threads
/// that vanish while we look are left out).
pub fn threads(pid: i32) -> Vec<(i32, char, i32)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let state = status
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .and_then(|s| s.trim().chars().next());
            let tracer = status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|s| s.trim().parse().ok());
            if let (Some(s), Some(t)) = (state, tracer) {
                out.push((tid, s, t));
            }
        }
    }
    out
}

/// [`threads`] for a failure message, with [`thread_states`] beside it.
pub fn describe_threads(pid: i32) -> String {
    let ts = threads(pid);
    let common_view = thread_states(pid);
    format!(
        "{:?} (common::thread_states: {:?})",
        ts.iter()
            .map(|(tid, s, t)| format!("{tid}:{s}/tracer={t}"))
            .collect::<Vec<_>>(),
        common_view
    )
}

/// TracerPid of the thread-group leader (0 when untraced or unreadable).
pub fn leader_tracer(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `Key:` line of /proc/PID/status, whitespace-normalised (panics when the
/// process is gone).
pub fn status_field(pid: i32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Polls until every thread of `pid` satisfies `ok(state)` with TracerPid 0
/// (the kernel detaches on tracer exit asynchronously); how long it took.
pub fn wait_threads(
    pid: i32,
    within: Duration,
    want: &str,
    ok: impl Fn(char) -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let ts = threads(pid);
        if !ts.is_empty() && ts.iter().all(|&(_, s, t)| ok(s) && t == 0) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(format!(
                "threads of {pid} not {want} and untraced after {within:?}: {}",
                describe_threads(pid)
            ));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// [`wait_threads`]: running and untraced within 1 s.
pub fn wait_running_untraced(pid: i32) -> Result<Duration, String> {
    wait_threads(pid, Duration::from_secs(1), "running", |s| {
        s != 't' && s != 'T'
    })
}

/// [`wait_threads`]: group-stopped and untraced within 1 s.
pub fn wait_stopped_untraced(pid: i32) -> Result<Duration, String> {
    wait_threads(pid, Duration::from_secs(1), "group-stopped (T)", |s| {
        s == 'T'
    })
}

/// Polls `f` every 2 ms until it holds (`true`) or `timeout` is over.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits for `child` at most `timeout`; on timeout it is killed and `None`
/// returned (with a description of where it was stuck in `stuck`).
pub fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
    stuck: &mut String,
) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() >= timeout {
            let pid = child.id();
            let mut s = String::new();
            if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                for e in rd.flatten() {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    let wchan = std::fs::read_to_string(e.path().join("wchan")).unwrap_or_default();
                    s.push_str(&format!("[{} wchan={wchan}] ", stat.trim()));
                }
            }
            *stuck = s;
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `/bin/true` and returns it once it is a zombie (exited, not
/// reaped).
pub fn zombie() -> Child {
    let z = Command::new("/bin/true").spawn().unwrap();
    let zpid = z.id();
    let t = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{zpid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(false)
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "/bin/true did not become a zombie"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    z
}
