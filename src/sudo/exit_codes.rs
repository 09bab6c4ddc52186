//! Which documented exit code each sudo error stands for: every refusal
//! of the policy, the audit log or the privilege drop is a permission
//! error (4).

use super::audit::AuditError;
use super::policy::PolicyError;
use super::privilege::{OutputFileError, PrivilegeError};
use super::SudoError;
use crate::exit::{ExitStatus, FAILURE, PERMISSION};

impl ExitStatus for SudoError {
    fn exit_code(&self) -> u8 {
        match self {
            SudoError::Process(p) => p.exit_code(),
            _ => PERMISSION,
        }
    }
}

impl ExitStatus for PolicyError {
    fn exit_code(&self) -> u8 {
        PERMISSION
    }
}

impl ExitStatus for AuditError {
    fn exit_code(&self) -> u8 {
        PERMISSION
    }
}

impl ExitStatus for PrivilegeError {
    fn exit_code(&self) -> u8 {
        PERMISSION
    }
}

impl ExitStatus for OutputFileError {
    fn exit_code(&self) -> u8 {
        if self.is_refusal() {
            PERMISSION
        } else {
            FAILURE
        }
    }
}
