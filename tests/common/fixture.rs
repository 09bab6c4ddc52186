//! Finding and building the programs the tests run.
//!
//! * The fixture matrix (go-fixtures/NAME, built by scripts/build-fixtures
//!   into target/fixtures/go1.N/MODE/NAME): [`fixture`], [`fixtures`],
//!   [`newest_fixture`]. A missing one skips the test with a note, or fails
//!   it with GOPEEK_REQUIRE_MATRIX=1 ([`present`]).
//! * Test-only targets (tests/targets), built on first use: [`test_target`].
//! * Any Go build, hermetic like scripts/build-fixtures: [`GoBuild`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

/// The Go versions of the fixture matrix (scripts/setup installs them as
/// /usr/lib/go-VERSION).
pub const GO_VERSIONS: [&str; 8] = [
    "1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26", "1.27",
];

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` when it exists, with symbolic links resolved (as the kernel
/// shows it in /proc/PID/exe: target/fixtures may be a link to a shared
/// build). Otherwise `None` and a note (the test skips), or with
/// GOPEEK_REQUIRE_MATRIX=1 a panic: `{what} {path} is missing: {fix}`.
pub fn present(path: PathBuf, what: &str, fix: &str) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(&path) {
        return Some(p);
    }
    if std::env::var("GOPEEK_REQUIRE_MATRIX").as_deref() == Ok("1") {
        panic!("{what} {} is missing: {fix}", path.display());
    }
    eprintln!(
        "note: skipping, {what} {} is missing ({fix})",
        path.display()
    );
    None
}

/// A fixture binary built by scripts/build-fixtures, or `None` (and a note)
/// when it is missing; with GOPEEK_REQUIRE_MATRIX=1 a missing one fails.
pub fn fixture(version: &str, mode: &str, name: &str) -> Option<PathBuf> {
    let p = root()
        .join("target/fixtures")
        .join(format!("go{version}"))
        .join(mode)
        .join(name);
    present(p, "fixture", "run scripts/setup and scripts/build-fixtures")
}

/// The fixtures `name` of the given (version, mode) cells that are built,
/// labelled `go1.N/MODE`.
pub fn fixtures(cells: &[(&str, &str)], name: &str) -> Vec<(String, PathBuf)> {
    cells
        .iter()
        .filter_map(|&(v, m)| fixture(v, m, name).map(|p| (format!("go{v}/{m}"), p)))
        .collect()
}

/// The fixture `name` of the newest Go version that has it built in `mode`
/// (else as [`fixture`] for the newest version: a note or a panic).
pub fn newest_fixture(mode: &str, name: &str) -> Option<PathBuf> {
    GO_VERSIONS
        .iter()
        .rev()
        .find_map(|v| {
            let p = root()
                .join("target/fixtures")
                .join(format!("go{v}"))
                .join(mode)
                .join(name);
            std::fs::canonicalize(p).ok()
        })
        .or_else(|| fixture(GO_VERSIONS[GO_VERSIONS.len() - 1], mode, name))
}

/// GOROOT of Go `version` as scripts/setup installs it.
pub fn goroot(version: &str) -> PathBuf {
    PathBuf::from(format!("/usr/lib/go-{version}"))
}

/// The `go` commands of the matrix versions that are installed, oldest first.
pub fn installed_go() -> Vec<PathBuf> {
    GO_VERSIONS
        .iter()
        .map(|v| goroot(v).join("bin/go"))
        .filter(|p| p.exists())
        .collect()
}

/// The build cache of the toolchain whose `go` command is `go`:
/// target/gocache/go1.N, shared with scripts/build-fixtures (`go tool
/// pprof` of Go 1.25+ and test-target builds are then built once).
pub fn gocache(go: &Path) -> PathBuf {
    let version = go
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().replace("go-", "go"))
        .unwrap_or_else(|| "go".into());
    root().join("target/gocache").join(version)
}

/// One `go build`, in the hermetic environment of scripts/build-fixtures:
/// local toolchain only, no module proxy, no VCS stamping, caches under
/// target/. The binary appears at its path atomically.
pub struct GoBuild {
    go: PathBuf,
    dir: PathBuf,
    flags: Vec<String>,
    env: Vec<(String, String)>,
}

impl GoBuild {
    /// Builds the main package in `dir` with the `go` command `go`
    /// (CGO_ENABLED=0, GOCACHE from [`gocache`]).
    pub fn new(go: &Path, dir: &Path) -> GoBuild {
        let r = root();
        let env = [
            ("GOTOOLCHAIN", "local".to_string()),
            ("GOFLAGS", "-buildvcs=false".to_string()),
            ("GOWORK", "off".to_string()),
            ("GOPROXY", "off".to_string()),
            ("GOSUMDB", "off".to_string()),
            ("GO111MODULE", "on".to_string()),
            ("GOPATH", r.join("target/gopath").display().to_string()),
            (
                "XDG_CONFIG_HOME",
                r.join("target/gohome/config").display().to_string(),
            ),
            ("GOCACHE", gocache(go).display().to_string()),
            ("CGO_ENABLED", "0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        GoBuild {
            go: go.to_path_buf(),
            dir: dir.to_path_buf(),
            flags: Vec::new(),
            env,
        }
    }

    /// Sets (or overrides) one variable of the build environment.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> GoBuild {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value));
        self
    }

    /// Cross-compiles for linux/`goarch`.
    pub fn goarch(self, goarch: &str) -> GoBuild {
        self.env("GOOS", "linux").env("GOARCH", goarch)
    }

    pub fn cgo(self, on: bool) -> GoBuild {
        self.env("CGO_ENABLED", if on { "1" } else { "0" })
    }

    /// `-ldflags=-s -w` when `on`.
    pub fn stripped(mut self, on: bool) -> GoBuild {
        if on {
            self.flags.push("-ldflags=-s -w".into());
        }
        self
    }

    /// `-buildmode=pie` when `on`.
    pub fn pie(mut self, on: bool) -> GoBuild {
        if on {
            self.flags.push("-buildmode=pie".into());
        }
        self
    }

    /// Everything that decides the output, for up-to-date checks.
    fn stamp(&self) -> String {
        format!(
            "{} {:?} {:?} {:?}",
            self.go.display(),
            self.dir,
            self.flags,
            self.env
        )
    }

    /// Builds into `out`; `Err` holds the reason (the compiler's output).
    pub fn build(&self, out: &Path) -> Result<(), String> {
        let tmp = tmp_name(out);
        let mut cmd = Command::new(&self.go);
        cmd.arg("build")
            .args(&self.flags)
            .arg("-o")
            .arg(&tmp)
            .arg(".")
            .current_dir(&self.dir)
            .env_remove("GOROOT");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let o = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.go.display()))?;
        if !o.status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "go build in {} failed: {}",
                self.dir.display(),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        std::fs::rename(&tmp, out).map_err(|e| format!("rename to {}: {e}", out.display()))
    }
}

/// A unique name next to `out`, for an atomic rename (test processes run
/// side by side and may build the same target).
fn tmp_name(out: &Path) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut s = out.as_os_str().to_owned();
    s.push(format!(".tmp.{}.{n}", std::process::id()));
    PathBuf::from(s)
}

/// The Go toolchain for test targets: GOPEEK_TEST_GO, else Go 1.27 as
/// scripts/setup installs it, else `go` on PATH.
pub fn test_go() -> PathBuf {
    if let Some(p) = std::env::var_os("GOPEEK_TEST_GO") {
        return p.into();
    }
    let p = goroot("1.27").join("bin/go");
    if p.exists() {
        p
    } else {
        PathBuf::from("go")
    }
}

/// Newest modification time of `p` (a file, or every file under a
/// directory).
fn newest_mtime(p: &Path) -> Option<SystemTime> {
    let m = std::fs::metadata(p).ok()?;
    if !m.is_dir() {
        return m.modified().ok();
    }
    std::fs::read_dir(p)
        .ok()?
        .flatten()
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// `out` exists, is newer than every source and the compiler, and was built
/// the same way (`stamp`, kept in `.NAME.stamp` beside it).
fn up_to_date(out: &Path, sources: &[&Path], stamp: &str) -> bool {
    let Some(built) = std::fs::metadata(out).ok().and_then(|m| m.modified().ok()) else {
        return false;
    };
    let stamp_file = stamp_path(out);
    std::fs::read_to_string(stamp_file).is_ok_and(|s| s == stamp)
        && sources
            .iter()
            .all(|s| newest_mtime(s).is_some_and(|t| t <= built))
}

fn stamp_path(out: &Path) -> PathBuf {
    let name = out.file_name().unwrap().to_string_lossy();
    out.with_file_name(format!(".{name}.stamp"))
}

fn write_stamp(out: &Path, stamp: &str) {
    let p = stamp_path(out);
    let tmp = tmp_name(&p);
    std::fs::write(&tmp, stamp).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
}

/// A test-only target of tests/targets, built (once per test process, and
/// only when out of date) into target/tmp:
///
/// * `heartbeat`, `heartbeat-pie`: tests/targets/heartbeat (Go, by
///   [`test_go`]; `-buildmode=pie` for the latter);
/// * `sigcount`: tests/targets/sigcount.c (C, by `cc`).
///
/// Both print `ready <pid>` first, then `beat=N ...` lines.
pub fn test_target(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let targets = root().join("tests/targets");
    match name {
        "heartbeat" | "heartbeat-pie" => {
            let go = test_go();
            let src = targets.join("heartbeat");
            let b = GoBuild::new(&go, &src).pie(name == "heartbeat-pie");
            let stamp = b.stamp();
            let go_on_disk = go.exists().then_some(go.as_path());
            let sources: Vec<&Path> = [Some(src.as_path()), go_on_disk]
                .into_iter()
                .flatten()
                .collect();
            if !up_to_date(&out, &sources, &stamp) {
                b.build(&out).unwrap_or_else(|e| {
                    panic!(
                        "building tests/targets/heartbeat with the Go toolchain {go:?}: {e}; \
                         install Go (scripts/setup) or set GOPEEK_TEST_GO"
                    )
                });
                write_stamp(&out, &stamp);
            }
        }
        "sigcount" => {
            let src = targets.join("sigcount.c");
            let stamp = "cc -O1 -pthread".to_string();
            if !up_to_date(&out, &[&src], &stamp) {
                let tmp = tmp_name(&out);
                let st = Command::new("cc")
                    .args(["-O1", "-pthread", "-o"])
                    .arg(&tmp)
                    .arg(&src)
                    .status()
                    .expect("run cc");
                assert!(st.success(), "cc tests/targets/sigcount.c failed");
                std::fs::rename(&tmp, &out).unwrap();
                write_stamp(&out, &stamp);
            }
        }
        _ => panic!("no test target {name:?} in tests/targets"),
    }
    built
        .as_mut()
        .unwrap()
        .insert(name.to_string(), out.clone());
    out
}
