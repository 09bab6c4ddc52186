//! Core files, with Go itself as the oracle: the `parked` fixture runs
//! with GOTRACEBACK=crash and the core limit raised, is sent SIGQUIT,
//! prints every goroutine on stderr (runtime frames, `fp= sp= pc=`,
//! `gp= m= mp=` as its version does) and aborts, leaving a kernel core in
//! its working directory. `gopeek dump --core core --system` must print
//! the same goroutines, headers, frames, arguments and `file:line +off`.
//!
//! Also: a `gcore` (gdb) core of a live fixture against the fixture's own
//! runtime.Stack, and corrupt cores (truncated, notes removed, the wrong
//! executable), each with its clear error and exit code.

#[macro_use]
mod common;
#[path = "core_dump/crash.rs"]
mod crash;
#[path = "core_dump/qemu.rs"]
mod qemu;
use common::*;
use crash::*;

/// Every goroutine of the crash text (its first section: the goroutines
/// the signalled M printed) must be in gopeek's dump of the core, equal
/// header and lines, arguments included.
fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    compare_with_crash_text(&format!("go{version}/{mode}"), &crash_core(&bin));
}

/// The same comparison on arm64: the fixture built for linux/arm64, run
/// under qemu-user, its guest core read by gopeek.
fn check_arm64(version: &str, stripped: bool) {
    let Some(bin) = qemu::arm64_parked(version, stripped) else {
        return;
    };
    let what = format!(
        "go{version}/arm64-{}",
        if stripped { "stripped" } else { "default" }
    );
    compare_with_crash_text(&what, &qemu::qemu_crash(&bin));
}

// arm64 under qemu is slow (about 10x; each cell starts the fixture under
// qemu and reads its core): CI runs the cells that carry risk, and
// GOPEEK_FULL_MATRIX=1 runs all sixteen (every version, default and
// stripped), by hand:
//   GOPEEK_FIXTURE_MODES="arm64 arm64-stripped" scripts/build-fixtures parked
//   GOPEEK_FULL_MATRIX=1 cargo nextest run --release -E 'binary(core_dump) & test(arm64)'
// The CI cells: 1.19 (the oldest: the old unwinder, no `gp= m=` headers),
// 1.22 (the first with the `gp= m= mp=` headers), 1.27 default and
// stripped (the newest layouts; the ADRP/ADD/LDR locator).
const ARM64_CI_CELLS: &[(&str, bool)] = &[
    ("1.19", false),
    ("1.22", false),
    ("1.27", false),
    ("1.27", true),
];

/// Runs the arm64 cell unless it is outside CI's cells and the full
/// matrix was not asked for.
fn arm64_cell(version: &str, stripped: bool) {
    let full = std::env::var("GOPEEK_FULL_MATRIX").as_deref() == Ok("1");
    if !full && !ARM64_CI_CELLS.contains(&(version, stripped)) {
        eprintln!(
            "note: skipping arm64 go{version} (stripped: {stripped}): set GOPEEK_FULL_MATRIX=1"
        );
        return;
    }
    check_arm64(version, stripped);
}

macro_rules! arm64_versions {
    ($($name:ident => $v:literal),*) => {$(
        mod $name {
            #[test] fn default() { super::arm64_cell($v, false) }
            #[test] fn stripped() { super::arm64_cell($v, true) }
        }
    )*};
}
arm64_versions!(arm64_go1_19 => "1.19", arm64_go1_21 => "1.21", arm64_go1_22 => "1.22",
                arm64_go1_23 => "1.23", arm64_go1_24 => "1.24", arm64_go1_25 => "1.25",
                arm64_go1_26 => "1.26", arm64_go1_27 => "1.27");

/// gopeek's `dump --core --system` of `c` against the text Go printed.
fn compare_with_crash_text(what: &str, c: &Crash) {
    let out = gopeek()
        .args(["dump", "--core"])
        .arg(&c.core)
        .arg("--system")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: gopeek dump --core failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = blocks_by_id(&String::from_utf8(out.stdout).unwrap());
    let oracle = crash_blocks(&c.stderr);
    let (compared, mut failures) = differences(
        oracle.iter().filter(|b| b.id != 0),
        &ours,
        Compare::Lines,
        false,
    );
    // Nothing gopeek lists that Go did not print.
    for id in ours.keys() {
        if !oracle.iter().any(|b| b.id == *id) {
            failures.push(format!("goroutine {id} is in gopeek's dump, not in Go's"));
        }
    }
    assert!(
        compared >= 25,
        "{what}: only {compared} goroutines in the crash text"
    );
    assert!(
        failures.is_empty(),
        "{what}: {} of {compared} goroutines differ from Go's crash text:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// amd64 kernel cores: every version default and stripped (layouts and
// the locator differ per version); PIE (load bias from AT_ENTRY) and cgo
// (a C thread, libc mappings) on the newest.
macro_rules! core_versions {
    ($($name:ident => $v:literal),*) => {$(
        mod $name {
            #[test] fn default() { super::check($v, "default") }
            #[test] fn stripped() { super::check($v, "stripped") }
        }
    )*};
}
core_versions!(go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23", go1_24 => "1.24",
               go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");

#[test]
fn go1_27_pie() {
    check("1.27", "pie");
}

#[test]
fn go1_27_cgo() {
    check("1.27", "cgo");
}

/// gdb's `gcore` of a live fixture (still running afterwards), against
/// the fixture's own runtime.Stack, as the live oracle tests compare:
/// every goroutine that was parked when the fixture dumped itself.
#[test]
fn gcore_of_a_live_fixture() {
    let Some(bin) = fixture("1.27", "stripped", "parked") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let prefix = run.dir.path().join("gcore");
    let st = std::process::Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(run.pid.to_string())
        .output()
        .expect("gcore (gdb) is installed by scripts/setup");
    assert!(st.status.success(), "gcore failed: {st:?}");
    let core = run.dir.path().join(format!("gcore.{}", run.pid));
    let out = succeed(gopeek().args(["dump", "--core"]).arg(&core));
    let ours = blocks_by_id(&String::from_utf8(out.stdout).unwrap());
    let oracle = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    // Goroutine 1 was dumping itself; the spinner runs.
    let (compared, failures) = differences(
        parse_dump(&oracle)
            .iter()
            .filter(|b| b.id != 1 && b.status != "running" && b.status != "runnable"),
        &ours,
        Compare::Lines,
        false,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(compared >= 25, "only {compared} goroutines compared");
    assert_running_untraced(run.pid);
}

/// Corrupt cores and wrong executables: each a clear error and its exit
/// code, never a panic. One crash core serves every case.
#[test]
fn corrupt_cores_and_wrong_executables() {
    let Some(bin) = fixture("1.27", "default", "parked") else {
        return;
    };
    let Some(other) = fixture("1.26", "default", "parked") else {
        return;
    };
    let c = crash_core(&bin);
    let dir = c.core.parent().unwrap().to_path_buf();
    let run = |core: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let out = gopeek()
            .args(["dump", "--core"])
            .arg(core)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("panicked"), "gopeek panicked:\n{err}");
        (out.status.code().unwrap_or(-1), err)
    };
    // `info --core` reports the executable the core names, as `info` does.
    let info = |args: &[&std::ffi::OsStr]| {
        let out = succeed(gopeek().arg("info").args(args).args(["--format", "json"]));
        out.stdout
    };
    assert_eq!(
        info(&["--core".as_ref(), c.core.as_os_str()]),
        info(&[bin.as_os_str()])
    );
    // The wrong executable: exit 3, says so.
    let (code, err) = run(&c.core, &["--exe".as_ref(), other.as_os_str()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("does not belong to the core"), "{err}");
    // The executable given as the core.
    let (code, err) = run(&bin, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not an ELF core"), "{err}");
    // The notes removed (PT_NOTE turned into PT_NULL).
    let bytes = std::fs::read(&c.core).unwrap();
    let mut no_notes = bytes.clone();
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(bytes[56..58].try_into().unwrap()) as usize;
    for i in 0..phnum {
        let at = phoff + 56 * i;
        if no_notes[at..at + 4] == 4u32.to_le_bytes() {
            no_notes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        }
    }
    let p = dir.join("no-notes.core");
    std::fs::write(&p, &no_notes).unwrap();
    let (code, err) = run(&p, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no PT_NOTE segment"), "{err}");
    // Truncated at pseudo-random offsets (fixed seed), the header, the
    // notes and the memory: a clear error, or a dump that says the core
    // is truncated.
    let p = dir.join("cut.core");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut offsets = vec![10, 200, 3000];
    for _ in 0..6 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        offsets.push((x >> 11) as usize % bytes.len());
    }
    for cut in offsets {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let exe: &[&std::ffi::OsStr] = &["--exe".as_ref(), bin.as_os_str()];
        let (code, err) = run(&p, exe);
        match code {
            0 => assert!(
                err.contains("the core file is truncated"),
                "cut at {cut}: {err}"
            ),
            1 | 3 => assert!(
                err.contains("truncated")
                    || err.contains("not an ELF core")
                    || err.contains("corrupt"),
                "cut at {cut}: exit {code}: {err}"
            ),
            _ => panic!("cut at {cut}: exit {code}: {err}"),
        }
    }
}

/// `gopeek leaks --core A --core B --core C`: three kernel cores of the
/// `leaky` fixture, crashed 1, 2 and 3 s after start (separate runs: a
/// kernel core ends its process). The leaking cluster's counts rise from
/// core to core, the fixed pool's stay; cores out of order are exit 2.
#[test]
fn leaks_over_cores() {
    let Some(bin) = fixture("1.27", "stripped", "leaky") else {
        return;
    };
    let mut crashes = Vec::new();
    for wait_ms in [800, 1800, 2800] {
        crashes.push(crash_after(&bin, &["-leak-every", "50ms"], wait_ms));
    }
    let cores: Vec<&std::path::Path> = crashes.iter().map(|c| c.core.as_path()).collect();
    let leaks = |order: &[usize]| {
        let mut cmd = gopeek();
        cmd.args(["leaks", "--format", "json"]);
        for &i in order {
            cmd.arg("--core").arg(cores[i]);
        }
        cmd.output().unwrap()
    };
    let out = leaks(&[0, 1, 2]);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(10),
        "{:?}: {}",
        code,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = |site: &str| -> Vec<u64> {
        let c = v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["created_by"]["function"] == site)
            .unwrap_or_else(|| panic!("no cluster created by {site}: {v}"));
        c["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    let leak = counts("main.serveRequests");
    assert_eq!(leak.len(), 3, "{leak:?}");
    assert!(
        leak[0] < leak[1] && leak[1] < leak[2],
        "the leak grows: {leak:?}"
    );
    let pool = counts("main.startPool");
    assert!(
        pool.iter().all(|&n| n == pool[0]),
        "the pool stays: {pool:?}"
    );
    let out = leaks(&[2, 1, 0]);
    assert_eq!(out.status.code(), Some(2), "cores out of order");
    assert!(String::from_utf8_lossy(&out.stderr).contains("oldest first"));
}

/// The aarch64 static gopeek (scripts/release ships it; scripts/test
/// builds it in debug) run under qemu-aarch64 reads an arm64 core exactly
/// as the host's gopeek does: the same text, every goroutine, and the
/// same JSON. Only 1.27 default: what is tested is the arm64 build of
/// gopeek, not another layout.
#[test]
fn aarch64_static_gopeek_reads_an_arm64_core() {
    let Some(bin) = qemu::arm64_parked("1.27", false) else {
        return;
    };
    let Some(arm) = present(
        root().join("target/aarch64-unknown-linux-musl/debug/gopeek"),
        "aarch64 static gopeek",
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc cargo build --target aarch64-unknown-linux-musl (scripts/test does)",
    ) else {
        return;
    };
    let elf = std::process::Command::new("readelf")
        .args(["-hlW"])
        .arg(&arm)
        .output()
        .unwrap();
    let elf = String::from_utf8_lossy(&elf.stdout);
    assert!(
        elf.contains("AArch64"),
        "{} is not arm64:\n{elf}",
        arm.display()
    );
    assert!(
        !elf.contains("INTERP"),
        "{} is not static:\n{elf}",
        arm.display()
    );
    let c = qemu::qemu_crash(&bin);
    for args in [&["--system"][..], &["--format", "json"][..]] {
        let host = gopeek()
            .args(["dump", "--core"])
            .arg(&c.core)
            .args(args)
            .output()
            .unwrap();
        let guest = std::process::Command::new("/usr/bin/qemu-aarch64")
            .arg(&arm)
            .args(["dump", "--core"])
            .arg(&c.core)
            .args(args)
            .output()
            .unwrap();
        assert!(
            host.status.success(),
            "host gopeek: {}",
            String::from_utf8_lossy(&host.stderr)
        );
        assert!(
            guest.status.success(),
            "aarch64 gopeek under qemu ({}): {}",
            guest.status,
            String::from_utf8_lossy(&guest.stderr)
        );
        let (h, g) = (
            String::from_utf8_lossy(&host.stdout),
            String::from_utf8_lossy(&guest.stdout),
        );
        assert!(
            h.matches("goroutine ").count() >= 25 || h.contains("\"goroutines\""),
            "{h}"
        );
        // JSON carries the time of the reading and the pause: compare
        // everything else.
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.contains("\"taken_at\"") && !l.contains("\"pause_us\""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            strip(&h),
            strip(&g),
            "dump --core {args:?}: host and aarch64 gopeek differ"
        );
    }
}
