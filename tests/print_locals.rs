//! `gopeek print --goroutine N [--frame K]` against Go itself: the
//! `parkedlocals` fixture parks goroutines (channel receive, select,
//! mutex) in functions holding arguments and locals of every kind, after
//! writing each one's `json.Marshal` and `%#v` to a file. gopeek reads each
//! from outside, in the frame the oracle names, and must give the same
//! JSON value and the same text, or say "optimized out" where Go's DWARF
//! gives the variable no stack location at the frame's PC. Which ones Go's
//! DWARF leaves without a location at the park differs by release; every
//! one that is read must be right, [`ALWAYS_READ`] (readable in every
//! cell measured) must be read, and [`ALWAYS_OUT`] (a struct argument Go
//! describes only in registers) must be said optimized out.
//!
//! Matrix: Go 1.19 and 1.21–1.27 in the default build (`waitFor` inlined
//! into `parkChan`: an inlined frame's locals) and the noinline build
//! (the same frame physical); PIE (load bias on the PC lookup) and cgo on
//! 1.27.

#[macro_use]
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Read in every cell measured (Go 1.19–1.27, default and noinline).
const ALWAYS_READ: &[(&str, &str)] = &[
    ("main.parkChan", "n"),
    ("main.parkChan", "xs"),
    ("main.parkChan", "m"),
    ("main.parkChan", "ptr"),
    ("main.parkChan", "name"),
    ("main.parkSelect", "limit"),
    ("main.parkSelect", "label"),
    ("main.parkSelect", "words"),
    ("main.parkMutex", "counts"),
    ("main.parkMutex", "arr"),
    ("main.parkMutex", "seen"),
    ("main.waitFor", "tag"),
];

/// Optimized out in every cell measured: `cfg` arrives in seven registers
/// and Go's location list for it has register pieces only, ending before
/// the park (its fields are spilled, but the DWARF does not say where).
/// gopeek must say so (Delve's "could not find loclist entry"), not read
/// the stack.
const ALWAYS_OUT: &[(&str, &str)] = &[("main.parkSelect", "cfg")];

fn print_json(
    pid: i32,
    g: u64,
    frame: Option<usize>,
    names: &[&str],
) -> (Value, std::process::Output) {
    let mut cmd = gopeek();
    cmd.args(["print", "--pid", &pid.to_string(), "--format", "json"])
        .args([
            "--goroutine",
            &g.to_string(),
            "--max-len",
            "2000",
            "--max-depth",
            "64",
        ]);
    if let Some(k) = frame {
        cmd.args(["--frame", &k.to_string()]);
    }
    let out = cmd.args(names).output().unwrap();
    (
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        out,
    )
}

/// The frame of goroutine `g` running `func`, as `--frame` counts.
fn frame_of(pid: i32, g: u64, func: &str) -> usize {
    for k in 0..12 {
        let (doc, out) = print_json(pid, g, Some(k), &["n"]);
        if doc["function"] == func {
            return k;
        }
        assert!(
            doc["function"].is_string(),
            "goroutine {g}: no frame of {func}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("goroutine {g}: no frame of {func} in 12 frames");
}

fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parkedlocals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let mut groups: BTreeMap<(u64, String), Vec<Value>> = BTreeMap::new();
    for l in text.lines() {
        let o: Value = serde_json::from_str(l).unwrap();
        let key = (
            o["goroutine"].as_u64().unwrap(),
            o["func"].as_str().unwrap().to_string(),
        );
        groups.entry(key).or_default().push(o);
    }
    assert_eq!(groups.len(), 4, "{text}");
    let mut failures = Vec::new();
    let (mut read, mut unreadable, mut regs_out) = (0, Vec::new(), 0);
    for ((g, func), want) in &groups {
        let k = frame_of(run.pid, *g, func);
        let names: Vec<&str> = want.iter().map(|o| o["name"].as_str().unwrap()).collect();
        let (doc, out) = print_json(run.pid, *g, Some(k), &names);
        assert_eq!(doc["schema"], "gopeek.print/1");
        assert_eq!(doc["goroutine"], *g);
        assert_eq!(doc["frame"], k);
        assert_eq!(doc["function"], func.as_str());
        assert!(
            doc["file"].as_str().unwrap().ends_with("main.go") && doc["line"].as_i64() > Some(0)
        );
        let got = doc["values"].as_array().unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A variable asked for by name that is optimized out fails the run.
        let any_out = got.iter().any(|v| v["optimized_out"] == true);
        assert_eq!(out.status.code(), Some(if any_out { 1 } else { 0 }));
        for (w, v) in want.iter().zip(got) {
            let name = w["name"].as_str().unwrap();
            let at = format!("{func}.{name}");
            if ALWAYS_OUT.contains(&(func.as_str(), name)) {
                let e = v["error"].as_str().unwrap_or("");
                if v["optimized_out"] != true || !e.contains("could not find loclist entry") {
                    failures.push(format!(
                        "{at}: register-only argument not said optimized out: {v}"
                    ));
                }
                regs_out += 1;
                continue;
            }
            if v["optimized_out"] == true {
                let e = v["error"].as_str().unwrap_or("");
                if !(e.contains("could not find loclist entry")
                    || e.contains("no location")
                    || e.contains("register"))
                {
                    failures.push(format!("{at}: optimized out without DWARF's reason: {e}"));
                }
                if ALWAYS_READ.contains(&(func.as_str(), name)) {
                    failures.push(format!(
                        "{at}: optimized out ({e}), read in every other cell"
                    ));
                }
                unreadable.push(at);
                continue;
            }
            if !v["error"].is_null() {
                failures.push(format!("{at}: error {}", v["error"]));
                continue;
            }
            read += 1;
            match (w.get("json"), v.get("json")) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => failures.push(format!("{at}: json\n   go:     {a:?}\n   gopeek: {b:?}")),
            }
            if w["gov"] != v["text"] {
                failures.push(format!(
                    "{at}: %#v\n   go:     {}\n   gopeek: {}",
                    w["gov"], v["text"]
                ));
            }
        }
    }
    eprintln!("go{version}/{mode}: {read} read, optimized out: {unreadable:?} and {regs_out} register-only");
    assert_running_untraced(run.pid);
    assert!(
        failures.is_empty(),
        "go{version}/{mode}: {} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

macro_rules! locals_matrix {
    ($($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn noinline() { super::check($v, "noinline") }
            }
        )*
    };
}

locals_matrix!(go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
               go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");

#[test]
fn go1_27_pie() {
    check("1.27", "pie")
}

#[test]
fn go1_27_cgo() {
    check("1.27", "cgo")
}

/// Without `--frame`, the frame is the innermost one of user code (past
/// the runtime's and sync's); `--locals` lists the frame's variables under
/// a header, an optimized-out one as Delve says it, and exits 0.
#[test]
fn locals_text_and_default_frame() {
    let Some(bin) = newest_fixture("default", "parkedlocals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let goroutine_of = |func: &str| -> u64 {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|o| o["func"] == func)
            .and_then(|o| o["goroutine"].as_u64())
            .unwrap()
    };
    for func in ["main.parkMutex", "main.parkSelect"] {
        let g = goroutine_of(func);
        let out = gopeek()
            .args([
                "print",
                "--pid",
                &run.pid.to_string(),
                "--goroutine",
                &g.to_string(),
                "--locals",
            ])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{s}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if func == "main.parkSelect" {
            assert!(
                s.contains("\ncfg = (unreadable optimized out: could not find loclist entry at 0x"),
                "{s}"
            );
        }
        let first = s.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("goroutine {g} frame "))
                && first.contains(&format!(": {func} at ")),
            "{s}"
        );
    }
    let g = goroutine_of("main.parkChan");
    let k = frame_of(run.pid, g, "main.parkChan");
    let out = gopeek()
        .args([
            "print",
            "--pid",
            &run.pid.to_string(),
            "--goroutine",
            &g.to_string(),
        ])
        .args(["--frame", &k.to_string(), "--locals"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(
        s.contains("\nn = 42\n") && s.contains("\ns = \"hello\"\n"),
        "{s}"
    );
    // Fields and expressions on a local; a frame that is not there.
    let out = gopeek()
        .args([
            "print",
            "--pid",
            &run.pid.to_string(),
            "--goroutine",
            &g.to_string(),
        ])
        .args([
            "--frame",
            &k.to_string(),
            "ptr.Y",
            "len(xs)",
            "m[\"b\"]",
            "main.records",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("ptr.Y = 8\nlen(xs) = 3\nm[\"b\"] = 2\nmain.records = (chan []main.record)("),
        "{s}"
    );
    let out = gopeek()
        .args([
            "print",
            "--pid",
            &run.pid.to_string(),
            "--goroutine",
            &g.to_string(),
        ])
        .args(["--frame", "99", "n"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frame 99 is past them"));
    assert_running_untraced(run.pid);
}

/// `print --core --goroutine`: a gcore of the fixture gives each parked
/// goroutine's frame exactly as the live process does.
#[test]
fn core_locals_equal_live() {
    let Some(bin) = newest_fixture("default", "parkedlocals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let prefix = run.dir.path().join("gcore");
    let st = std::process::Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(run.pid.to_string())
        .output()
        .expect("gcore (gdb) is installed by scripts/setup");
    assert!(st.status.success(), "gcore failed: {st:?}");
    let core = run.dir.path().join(format!("gcore.{}", run.pid));
    let mut seen = std::collections::BTreeSet::new();
    for l in text.lines() {
        let o: Value = serde_json::from_str(l).unwrap();
        let g = o["goroutine"].as_u64().unwrap();
        if !seen.insert(g) {
            continue;
        }
        let args = [
            "--format",
            "json",
            "--goroutine",
            &g.to_string(),
            "--locals",
        ];
        let live = gopeek()
            .args(["print", "--pid", &run.pid.to_string()])
            .args(args)
            .output()
            .unwrap();
        let dead = gopeek()
            .args(["print", "--core"])
            .arg(&core)
            .args(args)
            .output()
            .unwrap();
        assert!(
            dead.status.success(),
            "{}",
            String::from_utf8_lossy(&dead.stderr)
        );
        let (a, b): (Value, Value) = (
            serde_json::from_slice(&live.stdout).unwrap(),
            serde_json::from_slice(&dead.stdout).unwrap(),
        );
        assert!(a["values"].as_array().is_some_and(|v| v.len() >= 4), "{a}");
        assert_eq!(a, b);
    }
    assert_eq!(seen.len(), 3);
    assert_running_untraced(run.pid);
}

/// A running goroutine's innermost frame (`parkedlocals -spin`:
/// `main.spinRegs`, a loop without calls that keeps `name` in registers):
/// while the target runs its register variables are refused with the way
/// out (`--consistent`); under `--consistent` they are read from the
/// thread's registers, in the same hold as the frame, and equal what the
/// goroutine recorded; from a core, from the core's thread registers.
fn running_registers(version: &str) {
    let Some(bin) = fixture(version, "default", "parkedlocals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m", "-spin"]);
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let want: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["func"] == "main.spinRegs")
        .collect();
    assert_eq!(want.len(), 3, "{text}");
    let g = want[0]["goroutine"].as_u64().unwrap().to_string();
    let oracle = |name: &str| {
        want.iter()
            .find(|o| o["name"] == name)
            .map(|o| o["json"].clone())
            .unwrap()
    };
    let print = |extra: &[&str]| {
        let out = gopeek()
            .args(["print", "--format", "json", "--goroutine", &g])
            .args(extra)
            .arg("name")
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(doc["function"], "main.spinRegs", "{doc} {out:?}");
        (doc["values"][0].clone(), out)
    };
    let pid = run.pid.to_string();
    let (v, out) = print(&["--pid", &pid]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    let e = v["error"].as_str().unwrap_or("");
    assert!(
        e.contains("in register")
            && e.contains("goroutine is running")
            && e.contains("--consistent"),
        "{v}"
    );
    for _ in 0..5 {
        let (v, out) = print(&["--pid", &pid, "--consistent"]);
        assert!(out.status.success(), "{v} {out:?}");
        assert_eq!(v["json"], oracle("name"), "{v}");
    }
    assert_running_untraced(run.pid);
    let prefix = run.dir.path().join("gcore");
    let st = std::process::Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(&pid)
        .output()
        .expect("gcore (gdb) is installed by scripts/setup");
    assert!(st.status.success(), "gcore failed: {st:?}");
    let core = run.dir.path().join(format!("gcore.{pid}"));
    let core = core.to_str().unwrap();
    let (v, out) = print(&["--core", core]);
    assert!(out.status.success(), "{v} {out:?}");
    assert_eq!(v["json"], oracle("name"), "{v}");
    assert_running_untraced(run.pid);
}

#[test]
fn running_registers_go1_27() {
    running_registers("1.27")
}

#[test]
fn running_registers_go1_19() {
    running_registers("1.19")
}
