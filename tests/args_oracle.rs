//! Arguments against Go's own text: the `parkedargs` fixture parks
//! goroutines in functions whose arguments exercise every rule of Go's
//! `printArgs` (sizes, negatives, floats, pointers, strings, slices,
//! interfaces, nested structs, `...` after 10 components, `_` past offset
//! 250, `?` for dead register arguments, and Go 1.19's liveness lookup at
//! the outermost inlined call site), writes `runtime.Stack(buf, true)`,
//! then stays parked. gopeek's text must equal Go's line for line, in the
//! default and `--nonblocking` modes, and the JSON `args` of each frame must
//! be what Go printed between its parentheses.
//!
//! Every Go version (the compiler's encoding and liveness change with it),
//! in the default and noinline modes (inlining decides which frames are
//! physical and where the liveness PC lies); the other build modes do not
//! touch arguments, and `dump_oracle` compares the `parked` fixture's
//! arguments in all of them.
//!
//! `?` words are compared too: a goroutine that stays parked never writes
//! its stack, so Go's read and gopeek's see the same bytes; the fixture's
//! values are constants or pointers that do not move.

#[macro_use]
mod common;
use common::*;

fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parkedargs") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let oracle_text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    // The fixture still exercises each rule (Go's own text says so).
    for (what, needle) in [
        ("a `?` word", "?, "),
        ("truncation", ", ...)"),
        ("an offset past 250", ", _, _)"),
        ("the depth limit", "{{{{{...}}}}}"),
    ] {
        assert!(
            oracle_text.contains(needle),
            "go{version}/{mode}: Go's dump has no {what} ({needle:?}):\n{oracle_text}"
        );
    }
    // Go 1.19 looks liveness up at the inlined call's site, where this
    // function's spills have not happened yet; later releases at the PC.
    if (version, mode) == ("1.19", "default") {
        assert!(
            oracle_text.contains("main.argsInlinedSpill(0x9a?, 0xbc?, "),
            "{oracle_text}"
        );
    }
    let oracle: Vec<Block> = parse_dump(&oracle_text)
        .into_iter()
        .filter(|b| b.id != 1)
        .collect();
    assert!(oracle.len() >= 12, "go{version}/{mode}: {oracle_text}");
    for how in [&[][..], &["--nonblocking"][..]] {
        let out = succeed(
            gopeek()
                .args(["dump", "--pid", &run.pid.to_string()])
                .args(how),
        );
        let (_, failures) = differences(
            &oracle,
            &blocks_by_id(&String::from_utf8(out.stdout).unwrap()),
            Compare::Exact,
            false,
        );
        assert!(
            failures.is_empty(),
            "go{version}/{mode} {how:?}: {} of {} goroutines differ:\n{}",
            failures.len(),
            oracle.len(),
            failures.join("\n\n")
        );
    }

    // JSON: each frame's `args` is the text between Go's parentheses.
    let out = gopeek()
        .args(["dump", "--pid", &run.pid.to_string(), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = 0;
    for g in v["goroutines"].as_array().unwrap() {
        let Some(want) = oracle.iter().find(|b| Some(b.id) == g["id"].as_u64()) else {
            continue;
        };
        for f in g["frames"].as_array().unwrap() {
            let name = f["function"].as_str().unwrap();
            if !name.starts_with("main.args") {
                continue;
            }
            let line = match f["args"].as_str() {
                Some(a) => format!("{name}({a})"),
                None => {
                    assert_eq!(f["inlined"], true, "go{version}/{mode}: {f}");
                    format!("{name}(...)")
                }
            };
            assert!(
                want.exact.contains(&line),
                "go{version}/{mode}: JSON frame {line:?} is not in Go's block:\n{}",
                want.exact.join("\n")
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 12,
        "go{version}/{mode}: {checked} frames checked"
    );
    assert_running_untraced(run.pid);
}

macro_rules! versions {
    ($($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn noinline() { super::check($v, "noinline") }
            }
        )*
    };
}

versions!(go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
          go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");
