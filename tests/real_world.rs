//! A real-world target, not built here: Debian's own `prometheus` package
//! (stripped, cgo-linked, built by Debian with Go 1.19, 1.24 and 1.27) runs
//! as the long-running daemon it is, scraping itself, and gopeek's dump must
//! match the program's own `/debug/pprof/goroutine?debug=2` on at least 99%
//! of the goroutines parked in both (and at least 20 of them compared).
//!
//! The binaries come from `scripts/real-world-target` (apt-get download +
//! dpkg-deb -x into target/real-world/, nothing installed). A missing one is
//! skipped with a note, or fails with GOPEEK_REQUIRE_MATRIX=1.
//!
//! One snapshot is three looks in a row: pprof (Go's own traceback), gopeek,
//! pprof again. A goroutine counts when it is parked in the first pprof dump
//! and in gopeek's under the same id; the goroutine serving the pprof request
//! and those it started are left out. The second pprof dump only explains
//! differences: a goroutine that moved between the two pprof dumps (or that
//! gopeek saw as pprof saw it the second time) differs by timing, one that
//! exited in the window is "gone". A snapshot that misses 99% through timing
//! alone is taken again (at most three times); any difference that timing
//! does not explain is printed in full.
//!
//! GOPEEK_REAL_WORLD_SETTLE_SECS=N waits N seconds (instead of 1) once all
//! targets are up, before the snapshot
//! (e.g. 130, to see `, 2 minutes` in the headers).

mod common;
use common::*;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Scrape jobs pointed at the target itself: each adds a scrape loop and a
/// client and a server connection, so the daemon has 50+ goroutines.
const SELF_SCRAPE_JOBS: usize = 8;
const MIN_COMPARED: usize = 20;
const MIN_RATE: f64 = 0.99;
const ATTEMPTS: usize = 3;

/// The unpacked package of `suite`, or `None` (and a note) when absent.
fn real_world_binary(suite: &str) -> Option<PathBuf> {
    present(
        root()
            .join("target/real-world")
            .join(format!("prometheus-{suite}"))
            .join("usr/bin/prometheus"),
        "real-world target",
        "run scripts/real-world-target (after scripts/setup)",
    )
}

/// The running daemon; killed (and reaped) on drop, panics included.
struct Daemon {
    run: Running,
    pid: i32,
    port: u16,
}

impl Daemon {
    fn log(&self) -> String {
        let text = self.run.stderr();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.port, path)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET to 127.0.0.1 (no chunked encoding, closes at the end).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

fn start_daemon(bin: &Path) -> Daemon {
    let port = free_port();
    // Killed with the test even when the guard cannot run (the test process
    // itself killed, e.g. by a runner's timeout).
    let launch = Launch::new(bin).kill_with_test();
    let dir = launch.dir().to_path_buf();
    let mut cfg = String::from("global:\n  scrape_interval: 10s\nscrape_configs:\n");
    for i in 1..=SELF_SCRAPE_JOBS {
        cfg += &format!(
            "  - job_name: self{i}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        );
    }
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let run = launch
        .args(&[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
        ])
        .spawn();
    let mut d = Daemon {
        pid: run.pid,
        run,
        port,
    };

    // Ready, then every self-scrape target scraped once, so that the client
    // and server connection goroutines exist and sit in their idle waits.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(st)) = d.run.child.try_wait() {
            panic!(
                "{} exited ({st}) while starting:\n{}",
                bin.display(),
                d.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready with all targets up in 90 s:\n{}",
            bin.display(),
            d.log()
        );
        let up = match d.get("/api/v1/targets?state=active") {
            Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["data"]["activeTargets"]
                        .as_array()
                        .map(|a| a.iter().filter(|t| t["health"] == "up").count())
                })
                .unwrap_or(0),
            _ => 0,
        };
        if up >= SELF_SCRAPE_JOBS {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let settle = std::env::var("GOPEEK_REAL_WORLD_SETTLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    std::thread::sleep(Duration::from_secs(settle));
    d
}

fn parked(b: &Block) -> bool {
    b.status != "running" && b.status != "runnable"
}

fn show(b: &Block) -> String {
    format!("{}\n{}", b.header, b.lines.join("\n"))
}

/// What one snapshot (pprof, gopeek, pprof) came to.
#[derive(Default)]
struct Outcome {
    compared: usize,
    matched: usize,
    /// Differences (or goroutines gopeek lacks) that timing explains.
    timing: Vec<String>,
    /// Differences that timing does not explain: gopeek bugs until shown otherwise.
    unexplained: Vec<String>,
    /// Parked in the first pprof dump, exited before gopeek looked.
    gone: Vec<u64>,
    /// Left out: the pprof request's goroutines, or running/runnable in either
    /// dump ("id [status] why").
    excluded: Vec<String>,
    /// In gopeek's dump only (started after the first pprof dump).
    only_gopeek: usize,
}

impl Outcome {
    fn rate(&self) -> f64 {
        if self.compared == 0 {
            0.0
        } else {
            self.matched as f64 / self.compared as f64
        }
    }
    fn ok(&self) -> bool {
        self.compared >= MIN_COMPARED && self.rate() >= MIN_RATE
    }
}

fn compare(go1: &[Block], ours: &[Block], go2: &[Block]) -> Outcome {
    let ours: HashMap<u64, &Block> = ours.iter().map(|b| (b.id, b)).collect();
    let go2: HashMap<u64, &Block> = go2.iter().map(|b| (b.id, b)).collect();
    let go1_ids: HashSet<u64> = go1.iter().map(|b| b.id).collect();
    // The goroutine writing the pprof dump prints itself as running, with the
    // runtime/pprof frames; the connection goroutines it started go with it.
    let serving: HashSet<u64> = go1
        .iter()
        .filter(|b| {
            b.status == "running"
                && b.lines
                    .iter()
                    .any(|l| l.starts_with("runtime/pprof.") || l.starts_with("net/http/pprof."))
        })
        .map(|b| b.id)
        .collect();
    // The listener, caught in accept4(2) as it takes the pprof connection
    // (it then parks in IO wait): seen with Go 1.19, whose dump shows it as
    // `[syscall]` about one run in ten.
    let accepting_pprof = |b: &Block| {
        b.status == "syscall"
            && b.lines
                .iter()
                .any(|l| l.starts_with("net/http.(*Server).Serve("))
            && b.lines
                .iter()
                .any(|l| l.starts_with("syscall.accept4(") || l.starts_with("syscall.Accept4("))
    };
    let started_by_serving = |b: &Block| {
        b.lines.iter().any(|l| {
            l.starts_with("created by ")
                && l.rsplit_once(" in goroutine ")
                    .and_then(|(_, n)| n.parse::<u64>().ok())
                    .is_some_and(|n| serving.contains(&n))
        })
    };
    let mut o = Outcome {
        only_gopeek: ours.keys().filter(|id| !go1_ids.contains(id)).count(),
        ..Default::default()
    };
    for want in go1 {
        if serving.contains(&want.id) || started_by_serving(want) || accepting_pprof(want) {
            o.excluded
                .push(format!("{} [{}] pprof request", want.id, want.status));
            continue;
        }
        if !parked(want) {
            o.excluded
                .push(format!("{} [{}] in pprof's dump", want.id, want.status));
            continue;
        }
        let later = go2.get(&want.id).copied();
        let Some(got) = ours.get(&want.id).copied() else {
            match later {
                None => o.gone.push(want.id),
                Some(l) => {
                    o.compared += 1;
                    let msg = format!("goroutine {} missing from gopeek's dump\n--- pprof\n{}\n--- pprof again\n{}", want.id, show(want), show(l));
                    if l != want {
                        o.timing.push(msg)
                    } else {
                        o.unexplained.push(msg)
                    }
                }
            }
            continue;
        };
        if !parked(got) {
            o.excluded
                .push(format!("{} [{}] in gopeek's dump", want.id, got.status));
            continue;
        }
        o.compared += 1;
        if got.header == want.header && got.lines == want.lines {
            o.matched += 1;
            continue;
        }
        let again = later.map(show).unwrap_or_else(|| "(exited)".into());
        let msg = format!(
            "goroutine {} differs\n--- pprof\n{}\n--- gopeek\n{}\n--- pprof again\n{}",
            want.id,
            show(want),
            show(got),
            again
        );
        let moved = later != Some(want);
        let seen_later = later.is_some_and(|l| l.header == got.header && l.lines == got.lines);
        if moved || seen_later {
            o.timing.push(msg)
        } else {
            o.unexplained.push(msg)
        }
    }
    o
}

fn check(suite: &str) {
    let Some(bin) = real_world_binary(suite) else {
        return;
    };
    let deb = std::fs::read_to_string(bin.parent().unwrap().join("../../DEB_VERSION"))
        .unwrap_or_default();
    let name = format!("prometheus {} ({suite})", deb.trim());
    let d = start_daemon(&bin);
    assert_running_untraced(d.pid);

    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        let pprof = |what: &str| {
            let (code, body) = d
                .get("/debug/pprof/goroutine?debug=2")
                .unwrap_or_else(|e| panic!("{name}: {what}: {e}\n{}", d.log()));
            assert_eq!(code, 200, "{name}: {what}: HTTP {code}\n{body}");
            body
        };
        let go1_text = pprof("pprof dump");
        let out = gopeek()
            .args(["dump", "--pid", &d.pid.to_string()])
            .output()
            .unwrap();
        let go2_text = pprof("second pprof dump");
        assert!(
            out.status.success(),
            "{name}: gopeek dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_running_untraced(d.pid);
        let ours_text = String::from_utf8(out.stdout).unwrap();
        let (go1, ours, go2) = (
            parse_dump(&go1_text),
            parse_dump(&ours_text),
            parse_dump(&go2_text),
        );
        let o = compare(&go1, &ours, &go2);

        eprintln!(
            "{name}, attempt {attempt}: {}/{} parked goroutines match ({:.1}%); {} in pprof's dump, {} in gopeek's; \
             {} excluded {:?}, {} exited in between {:?}, {} new; {} timing, {} unexplained",
            o.matched, o.compared, 100.0 * o.rate(), go1.len(), ours.len(), o.excluded.len(), o.excluded, o.gone.len(), o.gone,
            o.only_gopeek, o.timing.len(), o.unexplained.len()
        );
        for m in &o.timing {
            eprintln!("timing: {m}\n");
        }
        for m in &o.unexplained {
            eprintln!("UNEXPLAINED: {m}\n");
        }

        // The JSON form of the same process parses, names the Go version and
        // has every compared goroutine, without a read error.
        let out = gopeek()
            .args(["dump", "--pid", &d.pid.to_string(), "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: gopeek dump --format json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["schema"], "gopeek.dump/1");
        assert_eq!(v["pid"], d.pid);
        let gover = v["go_version"].as_str().unwrap_or("").to_string();
        assert!(gover.starts_with("go1."), "{name}: go_version {gover:?}");
        let gs = v["goroutines"].as_array().unwrap();
        assert!(
            gs.len() >= MIN_COMPARED,
            "{name}: {} goroutines in the JSON dump",
            gs.len()
        );
        let errors: Vec<String> = gs
            .iter()
            .filter(|g| !g["error"].is_null())
            .map(|g| format!("goroutine {}: {}", g["id"], g["error"]))
            .collect();
        assert!(
            errors.is_empty(),
            "{name}: goroutines with read errors:\n{}",
            errors.join("\n")
        );
        assert_running_untraced(d.pid);
        eprintln!("{name}: Go {gover}, pause {} us", v["pause_us"]);

        if o.ok() || !o.unexplained.is_empty() || attempt == ATTEMPTS {
            last = Some(o);
            break;
        }
        eprintln!(
            "{name}: below {:.0}% through timing alone; taking the snapshot again",
            100.0 * MIN_RATE
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let o = last.unwrap();
    assert!(
        o.compared >= MIN_COMPARED,
        "{name}: only {} parked goroutines compared (need {MIN_COMPARED})",
        o.compared
    );
    assert!(
        o.rate() >= MIN_RATE,
        "{name}: {}/{} parked goroutines match ({:.1}% < {:.0}%):\n{}\n{}",
        o.matched,
        o.compared,
        100.0 * o.rate(),
        100.0 * MIN_RATE,
        o.unexplained.join("\n\n"),
        o.timing.join("\n\n")
    );

    // Still the live daemon it was: serving, not stopped, not traced.
    assert!(d.run.child.id() as i32 == d.pid);
    let (code, _) = d
        .get("/-/healthy")
        .unwrap_or_else(|e| panic!("{name}: not serving after the dumps: {e}"));
    assert_eq!(code, 200, "{name}: /-/healthy after the dumps");
    assert_running_untraced(d.pid);
}

/// bookworm's prometheus 2.42, built with Go 1.19.8.
#[test]
fn prometheus_bookworm_matches_pprof() {
    check("bookworm");
}

/// trixie's prometheus 2.53, built with Go 1.24.4.
#[test]
fn prometheus_trixie_matches_pprof() {
    check("trixie");
}

/// sid's prometheus 3.5, built with Go 1.27.1.
#[test]
fn prometheus_sid_matches_pprof() {
    check("sid");
}

/// The comparison itself, on made-up dumps: a match, a timing difference,
/// an unexplained one, one that exited, and the pprof request's goroutines
/// (handler, its reader, the listener in accept4) left out.
#[test]
fn comparison_classifies_differences() {
    let go1 = "goroutine 9 [running]:\nruntime/pprof.writeGoroutineStacks({0x1, 0x2})\n\truntime/pprof/pprof.go:1 +0x1\n\n\
goroutine 10 [IO wait]:\nnet/http.(*connReader).backgroundRead(0xc0)\n\tnet/http/server.go:746 +0x32\ncreated by net/http.(*connReader).startBackgroundRead in goroutine 9\n\tnet/http/server.go:742 +0xba\n\n\
goroutine 1 [chan receive]:\nmain.main()\n\tmain.go:1 +0x1\n\n\
goroutine 2 [select]:\nmain.a(0x1)\n\ta.go:1 +0x1\n\n\
goroutine 3 [select]:\nmain.b(0x1)\n\tb.go:1 +0x1\n\n\
goroutine 4 [select]:\nmain.c()\n\tc.go:1 +0x1\n\n\
goroutine 5 [IO wait]:\nmain.d()\n\td.go:1 +0x1\n\n\
goroutine 6 [syscall]:\nsyscall.accept4(0x3)\n\tsyscall/z.go:1 +0x1\nnet/http.(*Server).Serve(0xc0)\n\tnet/http/server.go:1 +0x1\n";
    let ours = "goroutine 1 [chan receive]:\nmain.main()\n\tmain.go:1 +0x1\n\n\
goroutine 2 [select]:\nmain.a(...)\n\ta.go:1 +0x1\n\n\
goroutine 3 [chan receive]:\nmain.b2(...)\n\tb.go:2 +0x2\n\n\
goroutine 4 [select]:\nmain.c()\n\tc.go:9 +0x9\n\n\
goroutine 11 [select]:\nmain.e()\n\te.go:1 +0x1\n";
    let go2 = "goroutine 20 [running]:\nruntime/pprof.writeGoroutineStacks({0x1, 0x2})\n\truntime/pprof/pprof.go:1 +0x1\n\n\
goroutine 1 [chan receive]:\nmain.main()\n\tmain.go:1 +0x1\n\n\
goroutine 2 [select]:\nmain.a(0x1)\n\ta.go:1 +0x1\n\n\
goroutine 3 [chan receive]:\nmain.b2(0x1)\n\tb.go:2 +0x2\n\n\
goroutine 4 [select]:\nmain.c()\n\tc.go:1 +0x1\n";
    let o = compare(&parse_dump(go1), &parse_dump(ours), &parse_dump(go2));
    assert_eq!(o.compared, 4, "1, 2, 3, 4 compared");
    assert_eq!(o.matched, 2, "1 and 2 match (arguments normalised)");
    assert_eq!(o.timing.len(), 1, "3 moved: {:?}", o.timing);
    assert_eq!(
        o.unexplained.len(),
        1,
        "4 stayed put in pprof yet differs: {:?}",
        o.unexplained
    );
    assert!(o.unexplained[0].starts_with("goroutine 4 "));
    assert_eq!(o.gone, vec![5]);
    assert_eq!(
        o.excluded.len(),
        3,
        "the pprof request, its reader, the listener in accept4: {:?}",
        o.excluded
    );
    assert_eq!(o.only_gopeek, 1);
    assert!(!o.ok());
}
