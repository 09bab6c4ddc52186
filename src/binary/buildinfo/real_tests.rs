//! Build info of real binaries, against `go version -m` of each toolchain.

use super::modinfo::*;
use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `go version -m FILE` parsed back: (version, modinfo text).
fn go_version_m(go: &Path, file: &Path) -> Option<(String, String)> {
    let out = Command::new(go)
        .arg("version")
        .arg("-m")
        .arg(file)
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "note: {} version -m {} failed: {}",
            go.display(),
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let first = lines.next()?;
    let version = first.rsplit_once(": ")?.1.to_string();
    let mut modinfo = String::new();
    for l in lines {
        modinfo.push_str(l.strip_prefix('\t')?);
        modinfo.push('\n');
    }
    Some((version, modinfo))
}

/// Section headers removed (`e_shoff`, `e_shnum`, `e_shstrndx` zeroed),
/// so that only the segment scan can find the record.
fn without_sections(mut file: Vec<u8>) -> Vec<u8> {
    file[0x28..0x30].fill(0);
    file[0x3c..0x40].fill(0);
    file
}

/// Checks one binary against the toolchain's own reading of it.
fn check_real(go: &Path, file: &Path) -> bool {
    let Some((version, modinfo)) = go_version_m(go, file) else {
        return false;
    };
    let bin = GoBinary::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let bi = BuildInfo::from_binary(&bin).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut want =
        parse_modinfo(&modinfo).unwrap_or_else(|e| panic!("{}: go's output: {e}", file.display()));
    want.go_version = version;
    assert_eq!(bi, want, "{}", file.display());
    // The raw text is byte-identical to what the toolchain prints.
    let raw = locate_raw(&bin).unwrap();
    assert_eq!(
        String::from_utf8_lossy(strip_sentinels(&raw.modinfo)),
        modinfo,
        "{}",
        file.display()
    );
    assert!(bi.version().is_some(), "{}", bi.go_version);
    // Same answer from the segment scan alone.
    let stripped = GoBinary::from_vec("stripped", without_sections(bin.data().to_vec())).unwrap();
    assert!(stripped.section(".go.buildinfo").is_none());
    assert_eq!(
        BuildInfo::from_binary(&stripped).unwrap(),
        bi,
        "{} without sections",
        file.display()
    );
    true
}

/// Builds a small module program with a replaced dependency and quoted
/// `-ldflags`, offline, so that `dep`/`=>` lines and quoting are checked
/// against real toolchain output too.
fn build_module_program(go: &Path, dir: &Path, extra: &[&str]) -> Option<PathBuf> {
    let write = |p: &str, s: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    write(
        "go.mod",
        "module example.com/peektest\n\ngo 1.19\n\nrequire example.com/dep v1.2.3\n\nreplace example.com/dep v1.2.3 => ./dep\n",
    );
    write(
        "main.go",
        "package main\n\nimport \"example.com/dep\"\n\nvar greeting = \"x\"\n\nfunc main() { println(dep.Hello(), greeting) }\n",
    );
    write("dep/go.mod", "module example.com/dep\n\ngo 1.19\n");
    write(
        "dep/dep.go",
        "package dep\n\nfunc Hello() string { return \"hi\" }\n",
    );
    let out = dir.join("peektest");
    let res = Command::new(go)
        .current_dir(dir)
        .args(["build", "-o"])
        .arg(&out)
        .args(extra)
        .arg(".")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", "0")
        .output()
        .ok()?;
    if !res.status.success() {
        eprintln!(
            "note: could not build a test program with {}: {}",
            go.display(),
            String::from_utf8_lossy(&res.stderr)
        );
        return None;
    }
    Some(out)
}

#[test]
fn matches_go_version_m_on_real_binaries() {
    let mut checked = Vec::new();
    let go27 = Path::new("/usr/lib/go-1.27/bin/go");
    let go19 = Path::new("/usr/lib/go-1.19/bin/go");
    if go27.exists() && check_real(go27, go27) {
        checked.push(go27.to_path_buf());
    }
    if let Ok(rd) = std::fs::read_dir("/usr/lib/go-1.19/pkg/tool/linux_amd64") {
        let mut tools: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        tools.sort();
        for t in tools {
            if go19.exists() && check_real(go19, &t) {
                checked.push(t);
            }
        }
    }
    for go in [go27, go19] {
        if !go.exists() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        // Not -trimpath: Go then leaves -ldflags out of the record.
        let flags = ["-ldflags=-s -w -X \"main.greeting=hello world\""];
        let Some(exe) = build_module_program(go, dir.path(), &flags) else {
            continue;
        };
        assert!(check_real(go, &exe));
        let bi = BuildInfo::from_binary(&GoBinary::open(&exe).unwrap()).unwrap();
        assert_eq!(
            bi.setting("-ldflags"),
            Some("-s -w -X \"main.greeting=hello world\"")
        );
        assert_eq!(bi.path.as_deref(), Some("example.com/peektest"));
        let dep = &bi.deps[0];
        assert_eq!(
            (dep.path.as_str(), dep.version.as_str()),
            ("example.com/dep", "v1.2.3")
        );
        assert_eq!(dep.replace.as_ref().unwrap().path, "./dep");
        if go == go27 {
            assert!(
                bi.default_godebug()
                    .is_some_and(|g| g.contains("tracebacklabels=0")),
                "{bi:?}"
            );
        }
        checked.push(exe);
    }
    if checked.is_empty() {
        eprintln!("note: no Go toolchain under /usr/lib/go-1.27 or /usr/lib/go-1.19; real-binary check skipped");
    } else {
        eprintln!(
            "checked {} real Go binaries against `go version -m`",
            checked.len()
        );
    }
}
