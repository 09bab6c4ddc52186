//! The built-in layout tables (src/layout/tables.rs) against fresh builds.
//!
//! For every Go toolchain installed as `/usr/lib/go-1.N` (N >= 19; restrict
//! with `GOPEEK_GO_VERSIONS="1.25 1.27"`), this builds `scripts/layoutgen`
//! into a temporary directory for linux/amd64, linux/arm64, with cgo (if
//! gcc is installed) and stripped, and checks that:
//!
//! * the DWARF layouts equal the built-in table for that version and
//!   architecture, struct by struct and field by field;
//! * the status and wait-reason tables equal the binary's own
//!   `runtime.gStatusStrings` / `runtime.waitReasonStrings`;
//! * `RuntimeLayout::for_binary` uses DWARF when present and the table when
//!   stripped;
//! * `dwarf_variables` agrees with the symbol table.
//!
//! A toolchain without a table fails the test with the fix (run
//! scripts/gen-layouts). With no toolchain at all the test prints a note and
//! passes. Go builds share the cache in target/gocache with
//! scripts/gen-layouts.

mod common;

use common::GoBuild;
use gopeek::binary::elf::{Arch, GoBinary};
use gopeek::binary::version::GoVersion;
use gopeek::layout::{
    dwarf_variables, gstatus_table, supported_minors, symbol_string_array, wait_reason_table,
    LayoutSource, RuntimeLayout, RuntimeOffsets,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Installed toolchains as `(minor, GOROOT)`, oldest first.
fn toolchains() -> Vec<(u32, PathBuf)> {
    let only: Option<Vec<u32>> = std::env::var("GOPEEK_GO_VERSIONS").ok().map(|v| {
        v.split_whitespace()
            .filter_map(|s| s.trim_start_matches("go").strip_prefix("1.")?.parse().ok())
            .collect()
    });
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/usr/lib") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(minor) = name
            .strip_prefix("go-1.")
            .and_then(|m| m.parse::<u32>().ok())
        else {
            continue;
        };
        if minor < 19 || !e.path().join("bin/go").is_file() {
            continue;
        }
        if only.as_ref().is_some_and(|o| !o.contains(&minor)) {
            continue;
        }
        found.push((minor, e.path()));
    }
    found.sort();
    found
}

fn have_gcc() -> bool {
    Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One build of layoutgen.
struct Build {
    what: String,
    path: PathBuf,
    arch: Arch,
    stripped: bool,
}

/// One build of scripts/layoutgen, in the environment of scripts/gen-layouts
/// (whose cache, target/gocache, it shares).
fn go_build(
    goroot: &Path,
    out: &Path,
    goarch: &str,
    cgo: bool,
    stripped: bool,
) -> Result<(), String> {
    GoBuild::new(
        &goroot.join("bin/go"),
        &Path::new(REPO).join("scripts/layoutgen"),
    )
    .env("GOCACHE", Path::new(REPO).join("target/gocache"))
    .env("GOFLAGS", "")
    .goarch(goarch)
    .cgo(cgo)
    .stripped(stripped)
    .build(out)
}

fn builds_for(minor: u32, goroot: &Path, dir: &Path, gcc: bool) -> Result<Vec<Build>, String> {
    let mut v = vec![
        ("amd64", "amd64", false, false),
        ("arm64", "arm64", false, false),
        ("amd64 stripped", "amd64", false, true),
        ("arm64 stripped", "arm64", false, true),
    ];
    if gcc {
        v.push(("amd64 cgo", "amd64", true, false));
    }
    let mut out = Vec::new();
    for (what, goarch, cgo, stripped) in v {
        let path = dir.join(format!("layoutgen-1.{minor}-{}", what.replace(' ', "-")));
        go_build(goroot, &path, goarch, cgo, stripped)
            .map_err(|e| format!("go1.{minor} {what}: {e}"))?;
        let arch = if goarch == "arm64" {
            Arch::Arm64
        } else {
            Arch::Amd64
        };
        out.push(Build {
            what: format!("go1.{minor} {what}"),
            path,
            arch,
            stripped,
        });
    }
    Ok(out)
}

/// Compares a layout read from DWARF with the table; one message per
/// difference.
fn compare(what: &str, dwarf: &RuntimeLayout, table: &RuntimeLayout, problems: &mut Vec<String>) {
    for t in table.structs() {
        let Some(d) = dwarf.struct_layout(&t.name) else {
            problems.push(format!("{what}: DWARF lacks {} (in the table)", t.name));
            continue;
        };
        if d.size != t.size {
            problems.push(format!(
                "{what}: {} size: DWARF {:#x}, table {:#x}",
                t.name, d.size, t.size
            ));
        }
        if d.fields != t.fields {
            let before = problems.len();
            for (name, off) in &t.fields {
                match d.offset(name) {
                    Some(o) if o == *off => {}
                    Some(o) => problems.push(format!(
                        "{what}: {}.{name}: DWARF {o:#x}, table {off:#x}",
                        t.name
                    )),
                    None => problems.push(format!("{what}: {}.{name}: not in DWARF", t.name)),
                }
            }
            for (name, _) in &d.fields {
                if t.offset(name).is_none() {
                    problems.push(format!("{what}: {}.{name}: not in the table", t.name));
                }
            }
            if problems.len() == before {
                problems.push(format!(
                    "{what}: {} fields differ in order or repetition",
                    t.name
                ));
            }
        }
    }
    for d in dwarf.structs() {
        if table.struct_layout(&d.name).is_none() {
            problems.push(format!(
                "{what}: DWARF has {} but the table does not",
                d.name
            ));
        }
    }
}

fn check_build(
    minor: u32,
    version: &GoVersion,
    b: &Build,
    problems: &mut Vec<String>,
    timings: &mut Vec<String>,
) {
    let what = b.what.as_str();
    let bin = match GoBinary::open(&b.path) {
        Ok(bin) => bin,
        Err(e) => return problems.push(format!("{what}: {e}")),
    };
    let table = RuntimeLayout::from_table_for(minor, b.arch).expect("table checked by the caller");
    let chosen = match RuntimeLayout::for_binary(&bin, version) {
        Ok(l) => l,
        Err(e) => return problems.push(format!("{what}: for_binary: {e}")),
    };
    if let Err(e) = RuntimeOffsets::from_layout(&chosen) {
        problems.push(format!("{what}: offsets: {e}"));
    }
    if b.stripped {
        if bin.has_dwarf() {
            problems.push(format!("{what}: stripped build still has DWARF"));
        }
        if chosen != table {
            problems.push(format!(
                "{what}: for_binary did not pick the go1.{minor} {:?} table",
                b.arch
            ));
        }
        return;
    }
    if chosen.source != LayoutSource::Dwarf {
        problems.push(format!(
            "{what}: for_binary used {} despite DWARF",
            chosen.source
        ));
    }
    let t0 = Instant::now();
    let dwarf = match RuntimeLayout::from_dwarf(&bin) {
        Ok(l) => l,
        Err(e) => return problems.push(format!("{what}: from_dwarf: {e}")),
    };
    timings.push(format!("{what}: from_dwarf {:?}", t0.elapsed()));
    compare(what, &dwarf, &table, problems);

    for (sym, tab) in [
        ("runtime.gStatusStrings", gstatus_table(minor)),
        ("runtime.waitReasonStrings", wait_reason_table(minor)),
    ] {
        let tab = tab.expect("table checked by the caller");
        match symbol_string_array(&bin, sym) {
            Ok(v) if v == tab => {}
            Ok(v) => problems.push(format!("{what}: {sym}: binary {v:?}, table {tab:?}")),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }

    let names = [
        "runtime.allgs",
        "runtime.allglen",
        "runtime.allm",
        "runtime.allp",
        "runtime.sched",
        "runtime.firstmoduledata",
        "runtime.waitReasonStrings",
        "runtime.m0",
        "runtime.g0",
    ];
    let vars = dwarf_variables(&bin, &names);
    for n in names {
        match (vars.get(n), bin.symbol(n)) {
            (Some(a), Some(s)) if *a == s => {}
            (a, s) => problems.push(format!("{what}: {n}: DWARF {a:x?}, symbol table {s:x?}")),
        }
    }
}

#[test]
fn every_installed_toolchain_matches_its_table() {
    let chains = toolchains();
    if chains.is_empty() {
        eprintln!("note: no Go toolchain at /usr/lib/go-1.N (N >= 19); layout tables not checked (see scripts/setup)");
        return;
    }
    let gcc = have_gcc();
    if !gcc {
        eprintln!("note: gcc not found; the cgo variant is not built");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut timings = Vec::new();
    let mut checked = Vec::new();
    for (minor, goroot) in &chains {
        if !supported_minors().contains(minor) {
            problems.push(format!(
                "go1.{minor} is installed at {} but has no built-in table: run scripts/gen-layouts",
                goroot.display()
            ));
            continue;
        }
        let version = match Command::new(goroot.join("bin/go"))
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .output()
        {
            Ok(o) => GoVersion::parse(&String::from_utf8_lossy(&o.stdout)),
            Err(_) => None,
        };
        let Some(version) = version.filter(|v| v.minor == *minor) else {
            problems.push(format!("{}: cannot tell its Go version", goroot.display()));
            continue;
        };
        let t0 = Instant::now();
        let builds = match builds_for(*minor, goroot, dir.path(), gcc) {
            Ok(b) => b,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let build_time = t0.elapsed();
        for b in &builds {
            check_build(*minor, &version, b, &mut problems, &mut timings);
        }
        checked.push(format!(
            "{} ({} builds in {:.1?})",
            version,
            builds.len(),
            build_time
        ));
    }
    eprintln!("checked: {}", checked.join(", "));
    for t in &timings {
        eprintln!("  {t}");
    }
    eprintln!("total {:.1?}", started.elapsed());
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `RuntimeOffsets::from_layout` works for every table, and agrees with the
/// offsets read by hand from the DWARF of the real toolchains.
#[test]
fn offsets_from_every_table_agree_with_dwarf_values() {
    assert!(
        !supported_minors().is_empty(),
        "no built-in tables: run scripts/gen-layouts"
    );
    for &minor in supported_minors() {
        for arch in [Arch::Amd64, Arch::Arm64] {
            let layout = RuntimeLayout::from_table_for(minor, arch).unwrap();
            assert_eq!(layout.source, LayoutSource::Table { version: minor });
            if let Err(e) = RuntimeOffsets::from_layout(&layout) {
                panic!("go1.{minor} {arch:?}: {e}");
            }
        }
    }
    let o = |minor: u32| {
        RuntimeLayout::from_table(minor)
            .unwrap_or_else(|| panic!("no go1.{minor} table"))
            .offsets()
            .unwrap()
    };
    // (version, what, value from the table, value read from DWARF)
    let checks: &[(u32, &str, u64, u64)] = &[
        (19, "g.goid", o(19).g.goid, 0x98),
        (19, "g.lockedm", o(19).g.lockedm, 0xe8),
        (19, "g.sched.sp", o(19).g.sched_sp, 0x38),
        (19, "g.sched.lr", o(19).g.sched_lr, 0x60),
        (19, "g.sched.bp", o(19).g.sched_bp, 0x68),
        (19, "m.procid", o(19).m.procid, 0x48),
        (19, "p.m", o(19).p.m, 0x38),
        (19, "schedt.runqsize", o(19).sched.runq_size, 0x70),
        (21, "g.parentGoid", o(21).g.parent_goid.unwrap(), 0x110),
        (21, "schedt size", o(21).sched.size, 0x660),
        (22, "m.libcallpc", o(22).m.libcallpc, 0x418),
        (22, "m size", o(22).m.size, 0x7e8),
        (23, "g.syscallbp", o(23).g.syscallbp.unwrap(), 0x80),
        (23, "g.atomicstatus", o(23).g.atomicstatus, 0x98),
        (23, "p.m", o(23).p.m, 0x30),
        (24, "g.syncGroup", o(24).g.sync_group.unwrap(), 0x188),
        (25, "g.syscallsp", o(25).g.syscallsp, 0x68),
        (25, "g.sched.lr", o(25).g.sched_lr, 0x58),
        (25, "g.sched.bp", o(25).g.sched_bp, 0x60),
        (25, "m.procid", o(25).m.procid, 0x40),
        (25, "m.p", o(25).m.p, 0xc8),
        (25, "schedt.runq.head", o(25).sched.runq_head, 0x70),
        (25, "schedt.runq.size", o(25).sched.runq_size, 0x80),
        (26, "m.lockedg", o(26).m.lockedg, 0x180),
        (26, "p size", o(26).p.size, 0x3e30),
        (27, "m.procid", o(27).m.procid, 0x40),
        (27, "m.curg", o(27).m.curg, 0xb8),
        (27, "g.labels", o(27).g.labels, 0x160),
        (27, "moduledata.gofunc", o(27).moduledata.gofunc, 0x158),
        (26, "moduledata.gofunc", o(26).moduledata.gofunc, 0x140),
        (19, "moduledata.gofunc", o(19).moduledata.gofunc, 0x130),
        (27, "schedt.gcwaiting", o(27).sched.gcwaiting, 0x108),
    ];
    let bad: Vec<String> = checks
        .iter()
        .filter(|(_, _, got, want)| got != want)
        .map(|(v, what, got, want)| format!("go1.{v} {what}: table {got:#x}, DWARF {want:#x}"))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // arm64 differs from amd64 only in the size of p from 1.26 (xRegs).
    let arm = |minor| RuntimeLayout::from_table_for(minor, Arch::Arm64).unwrap();
    assert_eq!(arm(27).size("runtime.p"), Some(0x37f0));
    assert_eq!(
        arm(25).size("runtime.p"),
        RuntimeLayout::from_table(25).unwrap().size("runtime.p")
    );

    // Wait reasons: runtime2.go's waitReasonStrings of each release.
    assert_eq!(wait_reason_table(19).unwrap().len(), 27);
    assert_eq!(wait_reason_table(25).unwrap()[3], "chan receive (nil chan)");
    assert_eq!(wait_reason_table(26).unwrap()[3], "dumping heap");
    assert_eq!(wait_reason_table(27).unwrap()[18], "select");
    assert_eq!(gstatus_table(26).unwrap()[11], "waiting for cgo callback");
    assert_eq!(gstatus_table(25).unwrap().len(), 10);
}

/// The DWARF reader takes the file as untrusted input: random corruption of
/// `.debug_info`/`.debug_abbrev` must end in an error or a partial result,
/// never a panic or a hang. Uses uncompressed DWARF so the corruption
/// reaches the parser, on the oldest (DWARF 4) and newest (DWARF 5)
/// installed toolchains.
#[test]
fn corrupted_dwarf_never_panics() {
    const ROUNDS: u32 = 100;
    use object::{Object, ObjectSection};
    let chains = toolchains();
    let picks: Vec<&(u32, PathBuf)> = chains.first().into_iter().chain(chains.last()).collect();
    if picks.is_empty() {
        eprintln!("note: no Go toolchain at /usr/lib/go-1.N; corruption test skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (minor, goroot) in picks {
        let path = dir.path().join(format!("layoutgen-1.{minor}-plain-dwarf"));
        let mut cmd = Command::new(goroot.join("bin/go"));
        cmd.args(["build", "-ldflags=-compressdwarf=false", "-o"])
            .arg(&path)
            .arg(".")
            .current_dir(Path::new(REPO).join("scripts/layoutgen"))
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", Path::new(REPO).join("target/gocache"))
            .env("GOPATH", Path::new(REPO).join("target/gopath"))
            .env("GOFLAGS", "")
            .env("GOWORK", "off")
            .env("GOARCH", "amd64")
            .env("CGO_ENABLED", "0");
        let o = cmd.output().expect("go build");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let data = std::fs::read(&path).unwrap();
        let ranges: Vec<(usize, usize)> = {
            let file = object::File::parse(&*data).unwrap();
            [".debug_info", ".debug_abbrev"]
                .iter()
                .filter_map(|n| file.section_by_name(n)?.file_range())
                .map(|(o, l)| (o as usize, l as usize))
                .collect()
        };
        assert_eq!(ranges.len(), 2, "go1.{minor}: DWARF sections not found");
        // The uncorrupted file reads fine.
        let clean = GoBinary::from_vec("clean", data.clone()).unwrap();
        assert!(RuntimeLayout::from_dwarf(&clean).is_ok());

        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(*minor);
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let started = Instant::now();
        let (mut ok, mut failed) = (0, 0);
        for round in 0..ROUNDS {
            let mut bad = data.clone();
            let flips = 1 + (rand() % 64) as usize;
            for _ in 0..flips {
                let (off, len) = ranges[(rand() % 2) as usize];
                // Half the time aim at the first 4 KiB (unit headers,
                // early abbreviations), else anywhere in the section.
                let span = if rand() % 2 == 0 { len.min(4096) } else { len };
                let at = off + (rand() as usize) % span.max(1);
                bad[at] = if round % 3 == 0 { 0xff } else { rand() as u8 };
            }
            let bin = GoBinary::from_vec("corrupt", bad).unwrap();
            match RuntimeLayout::from_dwarf(&bin) {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
            let _ = dwarf_variables(&bin, &["runtime.allgs", "runtime.sched"]);
        }
        eprintln!(
            "go1.{minor}: {ROUNDS} corrupted copies read in {:.1?} ({ok} still complete, {failed} rejected)",
            started.elapsed()
        );
    }
}
