//! `gopeek threads --core CORE --disasm N` on arm64 (issue 12), against
//! GNU objdump for aarch64 (`aarch64-linux-gnu-objdump`, installed by
//! scripts/setup) and Go's own `go tool objdump`.
//!
//! Target: the `parked` fixture built for linux/arm64, run under
//! qemu-user, whose guest core (GOTRACEBACK=crash, SIGQUIT) gopeek reads;
//! Go 1.27, default and stripped (`scripts/build-fixtures` with
//! GOPEEK_FIXTURE_MODES="arm64 arm64-stripped"). For every thread whose PC
//! is in the executable, the 256 instructions from the PC (the syscall
//! stubs threads park in, and the functions after them, where branches
//! are) must be those
//! objdump prints at the same addresses: address, mnemonic and operands
//! equal after these normalizations only, where the two printers
//! legitimately differ:
//!
//! 1. a PC-relative target (B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, ADR/ADRP,
//!    literal loads) is written by gopeek as gdb writes it, `0x12188`,
//!    by objdump without the `0x` when it names the address and with it
//!    when it does not: the `0x` is dropped on both sides;
//! 2. the symbol after such a target is `<f+344>` (gdb: decimal offset)
//!    in gopeek, `<f+0x158>` in objdump, which also names assembly
//!    functions by their ELF symbol `f.abi0`: compared as (name, offset),
//!    and only where both name it (objdump names nothing in the stripped
//!    binary, which has no `.symtab`; gopeek names Go functions from the
//!    pclntab and data only inside a `.symtab` symbol's size).
//!
//! Everything else (libopcodes' comments such as `// b.any` and
//! `// #5`, its padding before them, tabs) is compared byte for byte.
//! On the default binary each instruction's file:line must also be the
//! one `go tool objdump` prints for that address, and its bytes the word
//! it shows.

mod common;
#[path = "core_dump/crash.rs"]
#[allow(dead_code)]
mod crash;
#[path = "core_dump/qemu.rs"]
#[allow(dead_code)]
mod qemu;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

const OBJDUMP: &str = "aarch64-linux-gnu-objdump";

/// One instruction, normalized: (address, text with the target's `0x`
/// dropped and its `<symbol>` cut out, the symbol).
type Line = (u64, String, Option<String>);

/// Cuts ` <sym>` out of `text`; returns the rest and the symbol.
fn cut_symbol(text: &str) -> (String, Option<String>) {
    match text.split_once(" <") {
        Some((head, rest)) => match rest.split_once('>') {
            Some((sym, tail)) => (format!("{head}{tail}"), Some(sym.to_string())),
            None => (text.to_string(), None),
        },
        None => (text.to_string(), None),
    }
}

/// objdump's lines from `start` to `stop`.
fn objdump(bin: &Path, start: u64, stop: u64) -> Vec<Line> {
    let out = std::process::Command::new(OBJDUMP)
        .args([
            "-d",
            // Zero words (Go's padding, `udf #0`) printed, not folded to `...`.
            "-z",
            "--no-show-raw-insn",
            &format!("--start-address={start:#x}"),
            &format!("--stop-address={stop:#x}"),
        ])
        .arg(bin)
        .output()
        .unwrap_or_else(|e| {
            panic!("{OBJDUMP}: {e} (scripts/setup installs binutils-aarch64-linux-gnu)")
        });
    assert!(out.status.success(), "{OBJDUMP}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((addr, insn)) = line.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(a) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        let (text, sym) = cut_symbol(insn);
        v.push((a, drop_0x(text), sym));
    }
    v
}

/// gopeek's instruction, normalized as objdump's (see the module doc).
fn ours(i: &Value) -> Line {
    let text = i["text"].as_str().unwrap();
    let (text, sym) = cut_symbol(text);
    (i["address"].as_u64().unwrap(), drop_0x(text), sym)
}

/// Normalization 1: the one `0x` not after `#` is the target's.
fn drop_0x(text: String) -> String {
    if text.starts_with(".inst") {
        return text;
    }
    text.replace("\t0x", "\t").replace(", 0x", ", ")
}

/// `name+0x23` (objdump) or `name+35` (gdb) as (name, offset).
fn sym_parts(s: &str) -> (String, u64) {
    let s = &s.replace(".abi0", "");
    match s.rsplit_once('+') {
        Some((n, o)) => {
            let off = match o.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
                None => o.parse().unwrap_or(u64::MAX),
            };
            (n.to_string(), off)
        }
        None => (s.to_string(), 0),
    }
}

/// `go tool objdump BIN START END`: address → (file base name, line, word).
fn go_objdump(bin: &Path, start: u64, stop: u64) -> HashMap<u64, (String, i64, String)> {
    let out = std::process::Command::new("/usr/lib/go-1.27/bin/go")
        .args(["tool", "objdump"])
        .arg(bin)
        .args([format!("{start:#x}"), format!("{stop:#x}")])
        .output()
        .expect("go 1.27 (scripts/setup)");
    assert!(out.status.success(), "go tool objdump: {out:?}");
    let mut m = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split_whitespace();
        let (Some(fl), Some(addr), Some(word)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Some((file, l)), Some(a)) = (fl.rsplit_once(':'), addr.strip_prefix("0x")) else {
            continue;
        };
        if let (Ok(l), Ok(a)) = (l.parse(), u64::from_str_radix(a, 16)) {
            m.insert(a, (file.to_string(), l, word.to_string()));
        }
    }
    m
}

#[test]
fn arm64_core_disasm_matches_objdump() {
    let cells = [("1.27", "arm64"), ("1.27", "arm64-stripped")];
    for (label, bin) in fixtures(&cells, "parked") {
        let crash = qemu::qemu_crash(&bin);
        let out = gopeek()
            .args(["threads", "--core"])
            .arg(&crash.core)
            .args(["--format", "json", "--disasm", "256"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_slice(&out.stdout).expect("gopeek threads JSON");
        assert_eq!(j["schema"], "gopeek.threads/1");
        assert_eq!(j["goarch"], "arm64", "{label}");
        let (mut compared, mut named, mut lines) = (0, 0, 0);
        for th in j["threads"].as_array().unwrap() {
            let d = th["disasm"].as_array().unwrap();
            // Only code in the executable (named from its pclntab).
            if d.is_empty() || d[0]["symbol"].is_null() {
                continue;
            }
            let pc = th["registers"]["pc"].as_u64().expect("pc");
            assert_eq!(d[0]["address"].as_u64(), Some(pc), "{label}: starts at pc");
            assert_eq!(d.len(), 256, "{label}: {th:#}");
            assert!(th["disasm_error"].is_null(), "{label}: {th:#}");
            let want = objdump(&bin, pc, pc + 1024);
            let got: Vec<Line> = d.iter().map(ours).collect();
            let strip = |v: &[Line]| -> Vec<(u64, String)> {
                v.iter().map(|(a, t, _)| (*a, t.clone())).collect()
            };
            let (g, w) = (strip(&got), strip(&want));
            if let Some(k) = (0..g.len().max(w.len())).find(|&k| g.get(k) != w.get(k)) {
                panic!(
                    "{label}: thread {} at {pc:#x}: instruction {k}: gopeek {:?}, objdump {:?}",
                    th["tid"],
                    g.get(k),
                    w.get(k)
                );
            }
            for ((_, text, s1), (_, _, s2)) in got.iter().zip(&want) {
                if let (Some(a), Some(b)) = (s1, s2) {
                    assert_eq!(sym_parts(a), sym_parts(b), "{label}: target of {text:?}");
                    named += 1;
                }
            }
            if label.ends_with("arm64") {
                let go = go_objdump(&bin, pc, pc + 1024);
                for i in d {
                    let a = i["address"].as_u64().unwrap();
                    let Some((file, line, word)) = go.get(&a) else {
                        panic!("{label}: go tool objdump has no {a:#x}");
                    };
                    let ours_file = i["file"].as_str().unwrap_or("");
                    assert!(
                        ours_file.rsplit('/').next() == Some(file.as_str())
                            && i["line"].as_i64() == Some(*line),
                        "{label}: {a:#x} at {ours_file}:{}, go tool objdump says {file}:{line}",
                        i["line"]
                    );
                    // objdump shows the word; JSON has the bytes in memory order.
                    let bytes = i["bytes"].as_str().unwrap();
                    let le: String = (0..4).rev().map(|k| &bytes[2 * k..2 * k + 2]).collect();
                    assert_eq!(&le, word, "{label}: bytes at {a:#x}");
                    lines += 1;
                }
            }
            compared += 1;
        }
        assert!(
            compared >= 2,
            "{label}: fewer than 2 threads' PCs in the executable:\n{j:#}"
        );
        if label.ends_with("arm64") {
            // Measured: 170 to 176 targets named by both (7 threads).
            assert!(
                named >= 100,
                "{label}: {named} branch targets named by both"
            );
            assert!(lines >= 32, "{label}: {lines} file:lines compared");
        }
        eprintln!(
            "{label}: {compared} threads x 256 instructions equal to {OBJDUMP}, \
             {named} targets named alike, {lines} file:lines equal to go tool objdump"
        );
    }
}
