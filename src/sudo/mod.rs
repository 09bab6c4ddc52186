//! Least privilege under `sudo`: the policy that says what may be
//! inspected, the audit line, the privilege drop, the `-o` file created as
//! the invoking user, and the root watchdog, tied together by
//! [`SudoSession`]. Nothing below this layer knows about sudo; the
//! snapshot only runs the hook this layer hands it.

pub mod audit;
mod exit_codes;
pub mod policy;
pub mod privilege;
mod session;
mod watchdog;

pub use session::{SudoError, SudoSession};
