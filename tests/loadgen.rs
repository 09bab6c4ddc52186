//! The load generator of the impact benchmark (go-fixtures/loadgen, run by
//! scripts/bench-impact), kept from rotting without timing anything:
//!
//! * against a small HTTP/1.1 server in this test (loopback, keep-alive,
//!   every 7th request on a connection answered 500), its request and
//!   failure counts equal the server's, its idle connections are open and
//!   counted, and its latency file and `report` agree with both;
//! * it refuses any target that is not a loopback address, before sending
//!   anything.
//!
//! No latency is asserted beyond the order of its percentiles.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// go-fixtures/loadgen built with the tests' Go into CARGO_TARGET_TMPDIR.
fn loadgen() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loadgen");
    let go = test_go();
    GoBuild::new(&go, &root().join("go-fixtures/loadgen"))
        .build(&out)
        .unwrap_or_else(|e| panic!("building go-fixtures/loadgen with {go:?}: {e}"));
    out
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
}

/// One connection: reads requests (headers only: the loadgen sends GETs),
/// answers 200 "ok", or 500 for every 7th request of the connection.
fn serve(stream: TcpStream, counts: Arc<Counts>) {
    counts.connections.fetch_add(1, Ordering::SeqCst);
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let mut on_conn = 0u64;
    loop {
        let mut line = String::new();
        let mut saw_request = false;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if line.starts_with("GET ") {
                saw_request = true;
            }
        }
        assert!(saw_request, "a request without a GET line");
        on_conn += 1;
        counts.requests.fetch_add(1, Ordering::SeqCst);
        let resp: &[u8] = if on_conn % 7 == 0 {
            counts.errors.fetch_add(1, Ordering::SeqCst);
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbad\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
        };
        if w.write_all(resp).is_err() {
            return;
        }
    }
}

/// `key=N` from a `done ...` or `ready ...` line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[test]
fn counts_requests_and_failures_like_the_server() {
    let lg = loadgen();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || serve(s, c));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let lat = dir.path().join("lat.bin");
    let idle = 5u64;
    let out = Command::new(&lg)
        .args([
            "run",
            "-addr",
            &format!("localhost:{port}"),
            "-clients",
            "3",
        ])
        .args(["-idle", &idle.to_string(), "-duration", "1500ms", "-out"])
        .arg(&lat)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed: {stdout}{stderr}");
    let ready = stdout
        .lines()
        .find(|l| l.starts_with("ready "))
        .expect("a ready line");
    assert_eq!(field(ready, "idle"), idle, "{ready}");
    assert_eq!(field(ready, "idle_failed"), 0, "{ready}");
    let done = stdout
        .lines()
        .find(|l| l.starts_with("done "))
        .expect("a done line");
    let (requests, failed) = (field(done, "requests"), field(done, "failed"));
    assert_eq!(field(done, "idle_open"), idle, "{done}");
    assert_eq!(
        field(done, "idle_alive"),
        idle,
        "{done}: the server never closes"
    );

    // Every request the server answered is counted once: the idle
    // connections' first requests are not in the latency file.
    let served = counts.requests.load(Ordering::SeqCst);
    let errors = counts.errors.load(Ordering::SeqCst);
    assert_eq!(requests + idle, served, "{done}; server saw {served}");
    assert_eq!(failed, errors, "{done}; server answered {errors} with 500");
    assert!(requests >= 14, "too few requests to see a failure: {done}");
    assert!(failed > 0, "{done}");
    // A failed request closes its connection; each failure is one more
    // dial, unless it was its client's last request.
    let conns = counts.connections.load(Ordering::SeqCst);
    assert!(
        (idle + 3 + failed.saturating_sub(3)..=idle + 3 + failed).contains(&conns),
        "{done}; server saw {conns} connections"
    );
    let bytes = std::fs::metadata(&lat).unwrap().len();
    assert_eq!(bytes, 16 * requests, "latency file size");

    // report: one window over everything, one before the run (empty).
    let windows = dir.path().join("windows");
    std::fs::write(
        &windows,
        "all 0 18446744073709551615\n# comment\nnone 1 2\n",
    )
    .unwrap();
    let rep = Command::new(&lg)
        .args(["report", "-lat"])
        .arg(&lat)
        .arg("-windows")
        .arg(&windows)
        .output()
        .unwrap();
    assert!(
        rep.status.success(),
        "{}",
        String::from_utf8_lossy(&rep.stderr)
    );
    let text = String::from_utf8_lossy(&rep.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[0][..3],
        ["all", &requests.to_string(), &failed.to_string()],
        "{text}"
    );
    let p: Vec<f64> = rows[0][3..].iter().map(|v| v.parse().unwrap()).collect();
    assert!(
        p.len() == 5 && p[0] > 0.0 && p.windows(2).all(|w| w[0] <= w[1]),
        "{text}"
    );
    assert_eq!(
        rows[1],
        ["none", "0", "0", "-", "-", "-", "-", "-"],
        "{text}"
    );
}

#[test]
fn refuses_targets_off_loopback() {
    let lg = loadgen();
    let dir = tempfile::tempdir().unwrap();
    for addr in [
        "192.0.2.1:80",
        "example.com:80",
        "0.0.0.0:80",
        "[2001:db8::1]:80",
        "nonsense",
    ] {
        let out = Command::new(&lg)
            .args(["run", "-addr", addr, "-duration", "1s", "-out"])
            .arg(dir.path().join("lat.bin"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {stderr}");
        assert!(stderr.contains("refusing -addr"), "{addr}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{addr}: it started: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!dir.path().join("lat.bin").exists(), "{addr}");
    }
}
