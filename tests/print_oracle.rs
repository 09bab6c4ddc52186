//! `gopeek print` against Go itself: the `printvals` fixture writes, for
//! every global of every kind, `json.Marshal(v)` (or Marshal's error) and
//! `fmt.Sprintf("%#v", v)` to a file, then idles; gopeek reads each
//! global from outside and must give, value for value, the same JSON
//! (compared as JSON values: key order and number spelling aside) or
//! likewise no JSON, and exactly the same `%#v` text. Pointers, channels
//! and funcs print as addresses in `%#v`; both sides read the same
//! process, so the addresses are compared too.
//!
//! Matrix: Go 1.19 and 1.21–1.27 (each release's map form, DWARF version
//! and runtime type layout), in the default, PIE (a load bias on globals
//! and runtime type addresses) and cgo (external linking) builds. The
//! limits, expressions, `--consistent`, and the stripped-binary error run
//! on the newest Go only: they do not depend on the release.

#[macro_use]
mod common;
use common::*;
use serde_json::Value;

/// Globals the oracle records only to keep them linked (their values are
/// cut by the default limits; tested below).
const SEPARATE: &[&str] = &["main.vHuge", "main.vHugeStr"];

fn oracle(run: &Running) -> Vec<Value> {
    let text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn print_json(pid: i32, args: &[&str]) -> (Value, std::process::Output) {
    let out = gopeek()
        .args(["print", "--pid", &pid.to_string(), "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (doc, out)
}

fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "printvals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let want: Vec<Value> = oracle(&run)
        .into_iter()
        .filter(|o| !SEPARATE.contains(&o["name"].as_str().unwrap()))
        .collect();
    let names: Vec<&str> = want.iter().map(|o| o["name"].as_str().unwrap()).collect();
    let mut args = vec!["--max-len", "2000", "--max-depth", "64"];
    args.extend(&names);
    let (doc, out) = print_json(run.pid, &args);
    assert!(
        out.status.success(),
        "gopeek print failed on go{version}/{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["schema"], "gopeek.print/1");
    let got = doc["values"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    let mut failures = Vec::new();
    for (w, g) in want.iter().zip(got) {
        let name = w["name"].as_str().unwrap();
        assert_eq!(g["expr"], name);
        if !g["error"].is_null() {
            failures.push(format!("{name}: error {}", g["error"]));
            continue;
        }
        match (w.get("json"), g.get("json")) {
            (Some(a), Some(b)) if a == b => {}
            (None, None) => {
                // Marshal failed; gopeek must say why there is no JSON.
                if g["json_error"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("{name}: no json and no json_error"));
                }
            }
            // A MarshalJSON/MarshalText method: gopeek says it cannot run it.
            (Some(_), None)
                if g["json_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("MarshalJSON or MarshalText")) => {}
            (a, b) => failures.push(format!("{name}: json\n   go:     {a:?}\n   gopeek: {b:?}")),
        }
        if w["notext"] != true && w["gov"] != g["text"] {
            failures.push(format!(
                "{name}: %#v\n   go:     {}\n   gopeek: {}",
                w["gov"], g["text"]
            ));
        }
    }
    assert_running_untraced(run.pid);
    assert!(
        failures.is_empty(),
        "go{version}/{mode}: {} of {} values differ:\n{}",
        failures.len(),
        want.len(),
        failures.join("\n")
    );
}

macro_rules! print_matrix {
    ($($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn pie() { super::check($v, "pie") }
                #[test] fn cgo() { super::check($v, "cgo") }
            }
        )*
    };
}

print_matrix!(go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
              go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");

fn newest() -> Option<Running> {
    let bin = newest_fixture("default", "printvals")?;
    Some(start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]))
}

/// The limits cut where they say, say so in the tree and the text, and
/// leave no JSON for a partial value.
#[test]
fn limits_cut_and_say_so() {
    let Some(run) = newest() else { return };
    let (doc, out) = print_json(
        run.pid,
        &[
            "--max-len",
            "10",
            "main.vHuge",
            "main.vHugeStr",
            "main.vMap1000",
            "main.vChain",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = &doc["values"];
    assert_eq!(v[0]["value"]["cut"], "max-len");
    assert_eq!(v[0]["value"]["len"], 100000);
    assert_eq!(v[0]["value"]["elems"].as_array().unwrap().len(), 10);
    assert!(v[0].get("json").is_none() && v[0]["json_error"].is_string());
    assert!(
        v[0]["text"]
            .as_str()
            .unwrap()
            .ends_with("9, /* 99990 more, max-len */}"),
        "{}",
        v[0]["text"]
    );
    assert_eq!(v[1]["value"]["value"], "ababababab");
    assert_eq!(v[1]["value"]["len"], 100000);
    assert_eq!(v[2]["value"]["entries"].as_array().unwrap().len(), 10);
    assert_eq!(v[2]["value"]["len"], 900);
    // Depth: the chain of 12 nodes is cut at --max-depth.
    let (doc, _) = print_json(run.pid, &["--max-depth", "5", "main.vChain"]);
    let tree = doc["values"][0]["value"].to_string();
    assert!(tree.contains("\"cut\":\"max-depth\""), "{tree}");
    // The byte budget: a 100000-element slice does not fit in 4 KiB.
    let (doc, _) = print_json(
        run.pid,
        &["--max-len", "100000", "--max-bytes", "4096", "main.vHuge"],
    );
    assert_eq!(doc["values"][0]["value"]["cut"], "max-bytes", "{doc}");
    // A cycle is found, not followed forever, and has no JSON.
    let (doc, _) = print_json(run.pid, &["--max-depth", "1000", "main.vCycle"]);
    let g = &doc["values"][0];
    assert!(g["value"].to_string().contains("\"cut\":\"cycle\""), "{g}");
    assert!(g["json_error"].as_str().unwrap().contains("cycle"), "{g}");
    assert_running_untraced(run.pid);
}

/// Expressions: fields (through pointers, promoted), indexes, map keys,
/// `*`, `len`, `cap`; a bad name is an error for that expression only.
#[test]
fn expressions() {
    let Some(run) = newest() else { return };
    let out = gopeek()
        .args(["print", "--pid", &run.pid.to_string()])
        .args([
            "cfg.Tags[1]",
            "main.cfg.Limits.Ratio",
            "cfg.Backup.MaxConns",
            "vDerived.ID",
            "vDerived.MaxConns",
            "len(vHuge)",
            "cap(vSlice)",
            "vMap1[\"one\"]",
            "vMap9[14]",
            "*vPtrInt",
            "**vPtrPtr",
            "vStr[0]",
            "vArrPts[1].Y",
            "main.noSuchThing",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let want = [
        "cfg.Tags[1] = \"b\"",
        "main.cfg.Limits.Ratio = 0.75",
        "cfg.Backup.MaxConns = 5",
        "vDerived.ID = 7",
        "vDerived.MaxConns = 1",
        "len(vHuge) = 100000",
        "cap(vSlice) = 10",
        "vMap1[\"one\"] = 1",
        "vMap9[14] = \"w2\"",
        "*vPtrInt = -42",
        "**vPtrPtr = -42",
        "vStr[0] = 0x68",
        "vArrPts[1].Y = 4",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..want.len()], &want[..], "{text}");
    assert!(
        lines[want.len()]
            .starts_with("main.noSuchThing: error: no variable named main.noSuchThing"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_running_untraced(run.pid);
}

/// `--consistent` reads under one hold and gives the same values.
#[test]
fn consistent_equals_running() {
    let Some(run) = newest() else { return };
    let names = ["main.cfg", "main.vMap9", "main.vAnyAny", "main.vChan"];
    let (a, _) = print_json(run.pid, &names);
    let mut args = vec!["--consistent"];
    args.extend(names);
    let (b, out) = print_json(run.pid, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(a, b);
    // The channel's buffered elements in receive order: setup() sent 1
    // then 2 into vChan (cap 4); the tree's len says 2 as well.
    let ch = &a["values"][3]["value"];
    assert_eq!(ch["len"], 2, "{ch}");
    let elems: Vec<&Value> = ch["elems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["value"])
        .collect();
    assert_eq!(elems, [&Value::from(1), &Value::from(2)], "{ch}");
    assert_running_untraced(run.pid);
}

/// A binary without DWARF: exit 3, naming the flags that removed it.
#[test]
fn stripped_binary_says_which_flag() {
    let Some(bin) = fixture("1.27", "stripped", "printvals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let out = gopeek()
        .args(["print", "--pid", &run.pid.to_string(), "main.cfg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("-ldflags=-w") && err.contains("-s"), "{err}");
    assert_running_untraced(run.pid);
}

/// `print --core`: a gcore of the live fixture gives, global for global,
/// the JSON document the live process gives (both against the oracle
/// above); the fixture runs on, untraced.
#[test]
fn core_equals_live() {
    let Some(bin) = fixture("1.27", "default", "printvals") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let names: Vec<String> = oracle(&run)
        .into_iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .filter(|n| !SEPARATE.contains(&n.as_str()))
        .collect();
    let prefix = run.dir.path().join("gcore");
    let st = std::process::Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(run.pid.to_string())
        .output()
        .expect("gcore (gdb) is installed by scripts/setup");
    assert!(st.status.success(), "gcore failed: {st:?}");
    let core = run.dir.path().join(format!("gcore.{}", run.pid));
    let (live, _) = print_json(
        run.pid,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = succeed(
        gopeek()
            .args(["print", "--format", "json", "--core"])
            .arg(&core)
            .args(&names),
    );
    let from_core: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(live["values"].as_array().unwrap().len(), names.len());
    assert_eq!(live, from_core);
    assert_running_untraced(run.pid);
}
