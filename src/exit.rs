//! The exit codes users' scripts rely on (README, "Exit status"), and the
//! trait by which every error type says its own. `main` maps an error to a
//! code in one place, by asking the error; no layer needs to know another
//! layer's errors to get the code right.

/// Anything else went wrong.
pub const FAILURE: u8 = 1;
/// A bad command line (clap's own usage errors exit 2 too).
pub const USAGE: u8 = 2;
/// Not a Go program, or a Go binary gopeek cannot read.
pub const NOT_GO: u8 = 3;
/// Not permitted: ptrace refused, or the sudo policy, audit log or
/// privilege drop said no.
pub const PERMISSION: u8 = 4;
/// No such process, a zombie, or it exited while being read.
pub const NO_PROCESS: u8 = 5;
/// The target would have been held longer than `--max-pause`.
pub const PAUSE_BUDGET: u8 = 6;
/// `gopeek leaks` found a growing cluster (not an error: a finding).
pub const LEAK_FOUND: u8 = 10;

/// An error that knows which documented exit code it stands for.
pub trait ExitStatus: std::error::Error {
    /// One of the constants of this module.
    fn exit_code(&self) -> u8;
}

impl ExitStatus for std::io::Error {
    fn exit_code(&self) -> u8 {
        FAILURE
    }
}
