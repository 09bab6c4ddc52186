//! Least privilege under `sudo`: the policy that says what may be
//! inspected, the audit line, the privilege drop, the `-o` file created as
//! the invoking user, and the root monitor's policy re-check, tied
//! together by [`SudoSession`]. Nothing below this layer knows about sudo;
//! the monitor (`process::monitor`) only runs the check this layer hands it.

pub mod audit;
mod exit_codes;
pub mod policy;
pub mod privilege;
mod session;

pub use session::{SudoError, SudoSession};
