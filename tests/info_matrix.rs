//! `gopeek info` and `gopeek symbolize` against independent oracles, for
//! every installed Go version and build mode of the `parked` fixture:
//!
//! a. Go version and build settings equal what the toolchain's own
//!    `go version -m` prints; `stripped`/`position_independent` follow the
//!    build mode.
//! b. The runtime globals (allgs, allglen, allm, allp, waitReasonStrings,
//!    and sched when reported) are at `nm`'s addresses: from the symbol
//!    table when there is one, and by disassembly once a copy has been
//!    stripped with `objcopy --strip-all`. Binaries built stripped
//!    (`-s -w`) are checked against `nm` of the unstripped build of the
//!    same version (allowing for the bigger `.go.buildinfo`).
//! c. Every function entry of the pclntab, and every instruction of the
//!    main package (where the inline trees show), symbolizes to the names
//!    and file:lines that `addr2line -f -i` reads from DWARF, inlined
//!    frames included (at least 99.5% of them; the rest are listed); the
//!    stripped copy, and the `-s -w` build, symbolize identically.
//!
//! addr2line and gopeek disagree in a few documented, understood ways
//! ([`normalize`], [`Verdict`]); each such answer is confirmed by a second
//! reader where one is installed ([`second_opinions`]). GNU addr2line
//! cannot read Go 1.25+'s DWARF 5; llvm-addr2line stands in for it there
//! ([`choose_oracle`]). That side of part c is in tests/info_matrix/oracle.rs.

#[macro_use]
mod common;
#[path = "info_matrix/oracle.rs"]
mod oracle;

use common::*;
use oracle::{choose_oracle, compare_with_oracle};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Build modes whose fixtures were linked with `-ldflags='-s -w'`.
fn is_stripped_mode(mode: &str) -> bool {
    matches!(mode, "stripped" | "cgo-stripped")
}

/// The mode built with the same flags minus `-s -w`: the oracle for a
/// stripped build (same code; data shifted at most by the build info).
fn unstripped_sibling(mode: &str) -> Option<&'static str> {
    match mode {
        "stripped" => Some("default"),
        "cgo-stripped" => Some("cgo"),
        _ => None,
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: output is not UTF-8: {e}"))
}

fn gopeek_json(args: &[&str], what: &str) -> Value {
    let text = run(gopeek().args(args), what);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: bad JSON: {e}"))
}

fn info(bin: &Path) -> Value {
    gopeek_json(
        &["info", bin.to_str().unwrap(), "--format", "json"],
        &format!("gopeek info {}", bin.display()),
    )
}

fn symbolize_all(bin: &Path) -> Value {
    gopeek_json(
        &[
            "symbolize",
            bin.to_str().unwrap(),
            "--all-functions",
            "--format",
            "json",
        ],
        &format!("gopeek symbolize {}", bin.display()),
    )
}

/// What `go version -m` says: the version token and the build settings.
struct GoVersionM {
    version: String,
    settings: Vec<(String, String)>,
}

/// Undoes the `strconv.Quote` Go applies to a build-setting value that
/// holds spaces or quotes (`-ldflags="-s -w"`).
fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

fn go_version_m(version: &str, bin: &Path) -> GoVersionM {
    let go = goroot(version).join("bin/go");
    assert!(
        go.exists(),
        "{} is missing: run scripts/setup",
        go.display()
    );
    let text = run(
        Command::new(&go)
            .args(["version", "-m"])
            .arg(bin)
            .env("GOTOOLCHAIN", "local"),
        "go version -m",
    );
    let first = text.lines().next().unwrap_or("");
    let version = first
        .split_whitespace()
        .find(|t| t.starts_with("go1."))
        .unwrap_or_else(|| panic!("no go1.N token in {first:?}"))
        .to_string();
    let settings = text
        .lines()
        .filter_map(|l| l.strip_prefix("\tbuild\t"))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), unquote(v))
        })
        .collect();
    GoVersionM { version, settings }
}

/// `runtime.X` addresses from `nm`.
fn nm_globals(bin: &Path) -> HashMap<String, u64> {
    let text = run(Command::new("nm").arg(bin), "nm");
    let mut out = HashMap::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let Some(short) = name.strip_prefix("runtime.") {
            if matches!(
                short,
                "allgs"
                    | "allglen"
                    | "allm"
                    | "allp"
                    | "sched"
                    | "waitReasonStrings"
                    | "gomaxprocs"
                    | "starttime"
                    | "runtimeInitTime"
                    | "gcphase"
                    | "worldsema"
                    | "gcsema"
                    | "work"
                    | "memstats"
                    | "gcController"
            ) {
                out.insert(short.to_string(), u64::from_str_radix(addr, 16).unwrap());
            }
        }
    }
    out
}

/// `gopeek info` JSON key for each global, with its `runtime.` name.
const GLOBALS: [(&str, &str); 15] = [
    ("allgs", "allgs"),
    ("allglen", "allglen"),
    ("allm", "allm"),
    ("allp", "allp"),
    ("wait_reason_strings", "waitReasonStrings"),
    ("sched", "sched"),
    // The scheduler/GC globals of `gopeek sched` (binary/locate_sched.rs).
    ("gomaxprocs", "gomaxprocs"),
    ("starttime", "starttime"),
    ("runtime_init_time", "runtimeInitTime"),
    ("gcphase", "gcphase"),
    ("worldsema", "worldsema"),
    ("gcsema", "gcsema"),
    ("work", "work"),
    ("memstats", "memstats"),
    ("gc_controller", "gcController"),
];

/// Globals gopeek finds from `.symtab` only (no stable small user to
/// disassemble): absent from a stripped binary's report, by design.
const SYMTAB_ONLY: [&str; 2] = ["memstats", "gcController"];

/// Checks every global of `info` against `want` (runtime name → address),
/// each located by `method` ("symtab" or "disassembly"). sched is only
/// checked when reported: `gopeek info` passes no schedt layout, which
/// the stripped-binary route for sched needs.
fn check_globals(
    info: &Value,
    want: &HashMap<String, u64>,
    method: &str,
    what: &str,
) -> Vec<String> {
    let mut errs = Vec::new();
    for (key, sym) in GLOBALS {
        let g = &info["globals"][key];
        if g.is_null() {
            if sym != "sched" && !(method == "disassembly" && SYMTAB_ONLY.contains(&sym)) {
                errs.push(format!(
                    "{what}: {key} not found (want {:#x} from nm)",
                    want.get(sym).copied().unwrap_or(0)
                ));
            }
            continue;
        }
        let Some(&addr) = want.get(sym) else {
            errs.push(format!("{what}: nm has no runtime.{sym}"));
            continue;
        };
        if method == "disassembly" && SYMTAB_ONLY.contains(&sym) {
            errs.push(format!(
                "{what}: {key} reported without a symbol table: {g}"
            ));
            continue;
        }
        let got = g["addr"].as_u64().unwrap();
        if got != addr {
            errs.push(format!(
                "{what}: {key} at {got:#x}, nm says {addr:#x} (how: {})",
                g["how"]
            ));
        }
        if g["how"]["method"] != method {
            errs.push(format!(
                "{what}: {key} found by {}, expected {method}",
                g["how"]
            ));
        }
    }
    errs
}

/// Build settings as gopeek reports them, in order.
fn settings_of(info: &Value) -> Vec<(String, String)> {
    info["build"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv[0].as_str().unwrap().to_string(),
                kv[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Part a: version, flags and build settings.
fn check_info(version: &str, mode: &str, bin: &Path, info: &Value) {
    let what = format!("go{version}/{mode}");
    let gv = go_version_m(version, bin);
    assert_eq!(
        info["go_version"],
        gv.version.as_str(),
        "{what}: go_version vs `go version`"
    );
    let stripped = is_stripped_mode(mode);
    assert_eq!(info["stripped"], stripped, "{what}: stripped");
    assert_eq!(info["has_symtab"], !stripped, "{what}: has_symtab");
    assert_eq!(info["has_dwarf"], !stripped, "{what}: has_dwarf");
    assert_eq!(
        info["position_independent"],
        mode == "pie",
        "{what}: position_independent"
    );
    assert_eq!(info["arch"], "amd64", "{what}: arch");

    let settings = settings_of(info);
    assert_eq!(
        settings, gv.settings,
        "{what}: build settings differ from `go version -m`"
    );
    let get = |k: &str| {
        settings
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        get("-ldflags"),
        stripped.then_some("-s -w"),
        "{what}: -ldflags"
    );
    assert_eq!(
        get("CGO_ENABLED"),
        Some(if mode.starts_with("cgo") { "1" } else { "0" }),
        "{what}: CGO_ENABLED"
    );
    assert_eq!(
        get("-trimpath"),
        (mode == "trimpath").then_some("true"),
        "{what}: -trimpath"
    );
    assert_eq!(
        get("-gcflags"),
        (mode == "noinline").then_some("all=-l"),
        "{what}: -gcflags"
    );
    // Go 1.19 records no -buildmode at all (1.20 started recording it).
    let buildmode = get("-buildmode");
    let want = match (version, mode) {
        ("1.19", _) => None,
        (_, "pie") => Some("pie"),
        _ => Some("exe"),
    };
    assert_eq!(buildmode, want, "{what}: -buildmode");
}

/// Start of every instruction (alignment padding excluded) of the `main`
/// package's functions: the PCs where inlined frames show up (a function
/// entry rarely has any from Go 1.21 on).
fn main_package_pcs(bin: &Path, all: &[Value]) -> Vec<u64> {
    let g = gopeek::binary::elf::GoBinary::open(bin).unwrap();
    let mut pcs = Vec::new();
    for (i, a) in all.iter().enumerate() {
        if !a["function"].as_str().unwrap_or("").starts_with("main.") {
            continue;
        }
        let entry = a["addr"].as_u64().unwrap();
        let Some(end) = all.get(i + 1).and_then(|n| n["addr"].as_u64()) else {
            continue;
        };
        let code = g.slice_at_vaddr(entry, (end - entry) as usize).unwrap();
        let mut dec = iced_x86::Decoder::with_ip(64, code, entry, iced_x86::DecoderOptions::NONE);
        for ins in &mut dec {
            if ins.mnemonic() != iced_x86::Mnemonic::Int3 {
                pcs.push(ins.ip());
            }
        }
    }
    pcs
}

/// The text form and the address path (`find_func`, where
/// `--all-functions` walks the function table): a few PCs print exactly
/// the frames the JSON gave for them, with and without `0x`.
fn check_text_form(what: &str, bin: &Path, answers: &[&Value]) {
    let mut args = vec!["symbolize".to_string(), bin.display().to_string()];
    let mut want = String::new();
    for (i, a) in answers.iter().enumerate() {
        let addr = a["addr"].as_u64().unwrap();
        args.push(if i % 2 == 0 {
            format!("{addr:#x}")
        } else {
            format!("{addr:x}")
        });
        for f in a["frames"].as_array().unwrap() {
            let inlined = if f["inlined"] == true { " inlined" } else { "" };
            want.push_str(&format!(
                "{addr:#x} {} {}:{}{inlined}\n",
                f["name"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["line"]
            ));
        }
    }
    let got = run(
        gopeek().args(&args),
        &format!("gopeek symbolize {}", args[2..].join(" ")),
    );
    assert_eq!(got, want, "{what}: text form differs from JSON");
}

/// Part c for a binary with DWARF: every function entry, and every
/// instruction of the main package, against addr2line; the text form
/// against the JSON.
fn check_symbolization(version: &str, what: &str, bin: &Path, all: &Value) {
    let entries = all["addresses"].as_array().unwrap();
    assert!(
        entries.len() > 1000,
        "{what}: only {} functions symbolized",
        entries.len()
    );
    let addrs: Vec<u64> = entries
        .iter()
        .map(|a| a["addr"].as_u64().unwrap())
        .collect();
    let oracle = choose_oracle(bin, &addrs);
    let pcs = main_package_pcs(bin, entries);
    assert!(
        pcs.len() > 500,
        "{what}: only {} instructions in package main",
        pcs.len()
    );
    let args: Vec<String> = [
        "symbolize".to_string(),
        bin.display().to_string(),
        "--format".into(),
        "json".into(),
    ]
    .into_iter()
    .chain(pcs.iter().map(|p| format!("{p:#x}")))
    .collect();
    let mid = gopeek_json(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &format!("gopeek symbolize {what} (main package)"),
    );
    let mid = mid["addresses"].as_array().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            compare_with_oracle(
                version,
                &format!("{what} function entries"),
                bin,
                &oracle,
                entries,
            )
        });
        s.spawn(|| {
            compare_with_oracle(
                version,
                &format!("{what} main-package PCs"),
                bin,
                &oracle,
                mid,
            )
        });
    });

    let main = entries
        .iter()
        .find(|a| a["function"] == "main.main")
        .expect("main.main");
    let mut picks = vec![main];
    picks.extend(
        mid.iter()
            .filter(|a| a["frames"].as_array().unwrap().len() > 1)
            .take(3),
    );
    picks.extend(mid.iter().skip(1).take(1));
    check_text_form(what, bin, &picks);
}

/// Whether two executables load the same code at the same addresses
/// (`-s -w` drops only unloaded sections; the text never moves).
fn same_code(a: &gopeek::binary::elf::GoBinary, b: &gopeek::binary::elf::GoBinary) -> bool {
    let seg = |g: &gopeek::binary::elf::GoBinary| {
        g.segments()
            .iter()
            .filter(|s| s.executable)
            .map(|s| (s.vaddr, s.memsz))
            .collect::<Vec<_>>()
    };
    seg(a) == seg(b)
}

/// Where the globals of a `-s -w` build must be, given `nm` of the
/// unstripped build of the same version. `-s -w` is recorded in the build
/// info, so `.go.buildinfo` (in the writable segment) grows, usually by
/// 0x20, and everything linked after it moves by that much; what comes
/// before it (`.data` under external linking) stays. `None` when the
/// layouts differ in any other way.
fn expected_after_strip(
    stripped: &gopeek::binary::elf::GoBinary,
    sib: &gopeek::binary::elf::GoBinary,
    nm: &HashMap<String, u64>,
) -> Option<HashMap<String, u64>> {
    let rw = |g: &gopeek::binary::elf::GoBinary| {
        g.segments()
            .iter()
            .filter(|s| s.writable)
            .map(|s| (s.vaddr, s.memsz, s.filesz))
            .collect::<Vec<_>>()
    };
    let (a, b) = (rw(stripped), rw(sib));
    if a.len() != 1 || b.len() != 1 || a[0].0 != b[0].0 {
        return None;
    }
    let delta = a[0].1.checked_sub(b[0].1)?;
    if a[0].2.checked_sub(b[0].2)? != delta {
        return None;
    }
    let bi = sib.sections().iter().find(|s| s.name == ".go.buildinfo")?;
    nm.iter()
        .map(|(k, &v)| {
            let shift = if v >= bi.addr + bi.size {
                delta
            } else if v < bi.addr {
                0
            } else {
                return None;
            };
            Some((k.clone(), v + shift))
        })
        .collect()
}

/// One (version, mode) cell of the matrix: parts a, b and c on `parked`.
fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    let what = format!("go{version}/{mode}");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("parked.stripped");

    let info_orig = info(&bin);
    check_info(version, mode, &bin, &info_orig);
    assert!(
        info_orig["moduledata"].is_object(),
        "{what}: no module data: {}",
        info_orig["moduledata_error"]
    );

    let mut errs = Vec::new();
    if !is_stripped_mode(mode) {
        // The symbol table and its stripped copy run side by side.
        let (want, sym_orig, (info_copy, sym_copy)) = std::thread::scope(|s| {
            let nm = s.spawn(|| nm_globals(&bin));
            let sym = s.spawn(|| symbolize_all(&bin));
            let stripped = s.spawn(|| {
                run(
                    Command::new("objcopy")
                        .arg("--strip-all")
                        .arg(&bin)
                        .arg(&copy),
                    "objcopy --strip-all",
                );
                (info(&copy), symbolize_all(&copy))
            });
            (
                nm.join().unwrap(),
                sym.join().unwrap(),
                stripped.join().unwrap(),
            )
        });
        errs.extend(check_globals(
            &info_orig,
            &want,
            "symtab",
            &format!("{what} (symtab)"),
        ));
        assert_eq!(
            info_copy["stripped"], true,
            "{what}: the objcopy --strip-all copy is not reported stripped"
        );
        errs.extend(check_globals(
            &info_copy,
            &want,
            "disassembly",
            &format!("{what} stripped by objcopy"),
        ));
        assert!(
            sym_orig["addresses"] == sym_copy["addresses"],
            "{what}: symbolization of the objcopy-stripped copy differs from the original's"
        );
        check_symbolization(version, &what, &bin, &sym_orig);
        assert!(errs.is_empty(), "{}", errs.join("\n"));
    } else if let Some(sib) = unstripped_sibling(mode).and_then(|m| fixture(version, m, "parked")) {
        // A real `-s -w` build: the unstripped build of the same version
        // is the oracle.
        let (x, y) = (
            gopeek::binary::elf::GoBinary::open(&bin).unwrap(),
            gopeek::binary::elf::GoBinary::open(&sib).unwrap(),
        );
        match expected_after_strip(&x, &y, &nm_globals(&sib)) {
            Some(want) => errs.extend(check_globals(
                &info_orig,
                &want,
                "disassembly",
                &format!("{what} (against nm of {})", sib.display()),
            )),
            None => {
                eprintln!("note: {what}: data layout differs from {}'s; globals checked for presence only", sib.display());
                for (key, _) in GLOBALS
                    .iter()
                    .filter(|(k, s)| *k != "sched" && !SYMTAB_ONLY.contains(s))
                {
                    if info_orig["globals"][key]["how"]["method"] != "disassembly" {
                        errs.push(format!(
                            "{what}: {key} not found by disassembly: {}",
                            info_orig["globals"][key]
                        ));
                    }
                }
            }
        }
        assert!(errs.is_empty(), "{}", errs.join("\n"));
        if same_code(&x, &y) {
            assert!(
                symbolize_all(&bin)["addresses"] == symbolize_all(&sib)["addresses"],
                "{what}: symbolization differs from the unstripped build {}",
                sib.display()
            );
        } else {
            eprintln!(
                "note: {what}: code differs from {}'s; symbolization not compared",
                sib.display()
            );
        }
    }
}

// One test per Go version and build mode, each calling `check(version, mode)`.
go_matrix!();
