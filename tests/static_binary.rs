//! The static (musl) gopeek, in a root that holds nothing but it: no
//! loader, no libc, no /etc. What an engineer gets after copying the one
//! file into a distroless container or onto a bare host. It must dump the
//! demo service and match Go's own traceback of the `parked` fixture.
//!
//! The binary is `target/x86_64-unknown-linux-musl/debug/gopeek`, which
//! scripts/test builds (scripts/release builds the shipped one the same
//! way, optimized); GOPEEK_STATIC_BIN names another.

#[macro_use]
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn static_bin() -> Option<PathBuf> {
    let p = match std::env::var_os("GOPEEK_STATIC_BIN") {
        Some(p) => PathBuf::from(p),
        None => root().join("target/x86_64-unknown-linux-musl/debug/gopeek"),
    };
    present(
        p,
        "static gopeek",
        "cargo build --target x86_64-unknown-linux-musl (scripts/test does)",
    )
}

fn readelf(flag: &str, bin: &Path) -> String {
    let out = Command::new("readelf")
        .args([flag, "-W"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A root directory holding only the static gopeek (as /gopeek) and an
/// empty /proc to mount over.
fn empty_root(bin: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(bin, root.path().join("gopeek")).unwrap();
    std::fs::create_dir(root.path().join("proc")).unwrap();
    root
}

/// Runs `/gopeek ARGS` chrooted into `root`, with the host's /proc mounted
/// there in a private mount namespace (gone when it exits).
fn in_root(root: &Path, args: &[&str]) -> Output {
    let script = format!(
        "mount -t proc proc '{0}/proc' && exec chroot '{0}' /gopeek \"$@\"",
        root.display()
    );
    Command::new("unshare")
        .args([
            "--mount",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn has_no_dynamic_dependency() {
    let Some(bin) = static_bin() else { return };
    assert!(
        !readelf("-l", &bin).contains("INTERP"),
        "has a program interpreter"
    );
    assert!(
        !readelf("-d", &bin).contains("(NEEDED)"),
        "needs a shared library"
    );
}

#[test]
fn dumps_from_an_empty_root() {
    let Some(bin) = static_bin() else { return };
    let Some(parked) = fixture("1.27", "default", "parked") else {
        return;
    };
    let Some(demo) = fixture("1.27", "stripped", "demo") else {
        return;
    };
    let root = empty_root(&bin);
    let entries: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");

    let out = in_root(root.path(), &["--version"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gopeek "));

    // Go's own traceback of the parked fixture, against the static gopeek's.
    let run = start(&parked, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let oracle = parse_dump(&std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap());
    let out = in_root(root.path(), &["dump", "--pid", &run.pid.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: std::collections::HashMap<u64, Block> =
        parse_dump(&String::from_utf8(out.stdout).unwrap())
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
    let mut compared = 0;
    for want in oracle
        .iter()
        .filter(|b| b.id != 1 && b.status != "running" && b.status != "runnable")
    {
        let got = &ours[&want.id];
        assert_eq!(got.header.replace(" (scan)", ""), want.header);
        assert_eq!(got.lines, want.lines, "goroutine {}", want.id);
        compared += 1;
    }
    assert!(compared >= 20);
    assert_running_untraced(run.pid);

    // The demo service (stripped), every format that writes to stdout, and
    // `ps`, which reads /etc/passwd where there is none.
    let demo_run = start(&demo, &[]);
    let pid = demo_run.pid.to_string();
    let out = in_root(root.path(), &["dump", "--pid", &pid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("main.main"), "{text}");
    let out = in_root(root.path(), &["dump", "--pid", &pid, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "gopeek.dump/1");
    let out = in_root(root.path(), &["ps", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == demo_run.pid)
        .unwrap_or_else(|| panic!("demo not listed: {v:#}"));
    assert_eq!(
        me["user"], "0",
        "no /etc/passwd in the root: uids as numbers"
    );
    assert_running_untraced(demo_run.pid);
}

/// What scripts/release packages beside the binary: completion scripts and
/// man pages, generated from the same clap definitions as the parser, so
/// every subcommand and flag is in them.
#[test]
fn completions_and_man_pages_name_every_command() {
    for (shell, marker) in [
        ("bash", "_gopeek()"),
        ("zsh", "#compdef gopeek"),
        ("fish", "complete -c gopeek"),
    ] {
        let out = gopeek().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["dump", "leaks", "ps", "nonblocking", "max-pause"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = gopeek().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = gopeek().arg("manpage").output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") && page.contains(".TH gopeek 1"),
        "{page}"
    );
    assert!(page.contains("gopeek\\-dump(1)"), "{page}");
    let out = gopeek().args(["manpage", "dump"]).output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH gopeek-dump 1  \"gopeek-dump 0."),
        "{page}"
    );
    assert!(page.contains("\\-\\-nonblocking"), "{page}");
    let out = gopeek().args(["manpage", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
