//! Shared helpers for the integration tests: locating fixture binaries,
//! running a fixture until it is ready, and reading /proc.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture binary built by scripts/build-fixtures, or `None` (and a note)
/// when it is missing; with GOPEEK_REQUIRE_MATRIX=1 a missing one fails.
pub fn fixture(version: &str, mode: &str, name: &str) -> Option<PathBuf> {
    let p = root()
        .join("target/fixtures")
        .join(format!("go{version}"))
        .join(mode)
        .join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("GOPEEK_REQUIRE_MATRIX").as_deref() == Ok("1") {
        panic!(
            "fixture {} is missing: run scripts/setup and scripts/build-fixtures",
            p.display()
        );
    }
    eprintln!(
        "note: skipping, {} not built (run scripts/build-fixtures)",
        p.display()
    );
    None
}

/// A running fixture, killed on drop.
pub struct Running {
    pub child: Child,
    pub pid: i32,
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin` with `args`, waits for its `ready <pid>` line.
pub fn start(bin: &Path, args: &[&str]) -> Running {
    start_env(bin, args, &[])
}

/// Like [`start`], with extra environment variables.
pub fn start_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("ready ") => {
                let pid = child.id() as i32;
                return Running { child, pid, dir };
            }
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("{} did not print ready within 60 s", bin.display());
            }
        }
    }
}

/// `(state letter, TracerPid)` of every thread of `pid`.
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

/// The gopeek binary under test.
pub fn gopeek() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gopeek"))
}

/// One goroutine block of a Go-style text dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: u64,
    pub header: String,
    /// Status text: inside the brackets, before the first comma.
    pub status: String,
    /// Frame and created-by lines, with arguments normalised to `(...)`.
    pub lines: Vec<String>,
}

/// Splits a Go traceback (runtime.Stack or gopeek text) into blocks.
pub fn parse_dump(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    for chunk in text.split("\n\n") {
        let mut lines = chunk.lines().filter(|l| !l.is_empty());
        let Some(header) = lines.next() else { continue };
        let Some(rest) = header.strip_prefix("goroutine ") else {
            continue;
        };
        let id: u64 = rest
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let inside = header.split_once('[').map(|(_, r)| r).unwrap_or("");
        let inside = inside.rsplit_once(']').map(|(l, _)| l).unwrap_or(inside);
        // Go 1.26 prints labels inside the brackets: ` labels:{...}`.
        let inside = inside.split(" labels:{").next().unwrap_or(inside);
        let status = inside.split(',').next().unwrap_or("").to_string();
        let norm = lines
            .map(|l| {
                // Arguments are the last "(...)" of a function line (Go
                // prints them as {..} and 0x.., never with parentheses).
                if !l.starts_with('\t') && l.ends_with(')') && !l.starts_with("created by") {
                    if let Some(open) = l.rfind('(') {
                        return format!("{}(...)", &l[..open]);
                    }
                }
                l.to_string()
            })
            .collect();
        out.push(Block {
            id,
            header: header.to_string(),
            status,
            lines: norm,
        });
    }
    out
}

/// Generates one `#[test]` per Go version (1.19, 1.21–1.27) and build mode,
/// each calling `check(version, mode)` of the invoking test file, so that
/// nextest reports every cell of the matrix by name.
#[macro_export]
macro_rules! go_matrix {
    () => {
        $crate::go_matrix!(@versions go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
                           go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");
    };
    (@versions $($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn stripped() { super::check($v, "stripped") }
                #[test] fn pie() { super::check($v, "pie") }
                #[test] fn cgo() { super::check($v, "cgo") }
                #[test] fn cgo_stripped() { super::check($v, "cgo-stripped") }
                #[test] fn trimpath() { super::check($v, "trimpath") }
                #[test] fn noinline() { super::check($v, "noinline") }
            }
        )*
    };
}
