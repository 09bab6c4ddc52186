//! Shared helpers for the integration tests; every test file has
//! `mod common;` and uses what it needs:
//!
//! * [`fixture`]: where the fixture binaries are ([`fixture()`],
//!   [`fixtures`], [`newest_fixture`], [`present`]), the Go toolchains, and
//!   the one builder of test programs ([`GoBuild`], [`test_target`]);
//! * [`target`]: the one way to start a target and wait for its
//!   `ready <pid>` line ([`Launch`], [`start`], [`start_env`], [`Running`]);
//! * [`procfs`]: thread states and tracers from /proc, and waiting for them;
//! * [`dump`]: Go-style text dumps parsed into [`Block`]s;
//! * [`gopeek`] (the binary under test) and [`go_matrix!`] (one test per Go
//!   version and build mode).
//!
//! Helpers only one test binary needs live beside it, in tests/NAME/
//! (included with `#[path]`), not here. Nothing here uses the gopeek
//! library: these are checks from outside, and stay put while src/ moves.
#![allow(dead_code, unused_imports)]

pub mod dump;
pub mod fixture;
pub mod procfs;
pub mod target;

pub use dump::*;
pub use fixture::*;
pub use procfs::*;
pub use target::*;

use std::process::Command;

/// The gopeek binary under test.
pub fn gopeek() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gopeek"))
}

/// Runs `cmd` (a gopeek command line) to its end and returns its output,
/// failing the test with gopeek's stderr unless it succeeded: the check
/// every test makes before it reads what gopeek wrote.
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Generates one `#[test]` per Go version (1.19, 1.21–1.27) and build mode,
/// each calling `check(version, mode)` of the invoking test file, so that
/// nextest reports every cell of the matrix by name.
#[macro_export]
macro_rules! go_matrix {
    () => {
        $crate::go_matrix!(@versions go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
                           go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");
    };
    (@versions $($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn stripped() { super::check($v, "stripped") }
                #[test] fn pie() { super::check($v, "pie") }
                #[test] fn cgo() { super::check($v, "cgo") }
                #[test] fn cgo_stripped() { super::check($v, "cgo-stripped") }
                #[test] fn trimpath() { super::check($v, "trimpath") }
                #[test] fn noinline() { super::check($v, "noinline") }
            }
        )*
    };
}
