//! Which documented exit code each process error stands for.

use super::ProcessError;
use crate::exit::{ExitStatus, FAILURE, NO_PROCESS, PAUSE_BUDGET, PERMISSION};

impl ExitStatus for ProcessError {
    fn exit_code(&self) -> u8 {
        match self {
            ProcessError::PermissionDenied { .. } | ProcessError::AlreadyTraced { .. } => {
                PERMISSION
            }
            ProcessError::NoSuchProcess { .. }
            | ProcessError::Zombie { .. }
            | ProcessError::Exited { .. } => NO_PROCESS,
            ProcessError::PauseBudgetExceeded { .. } => PAUSE_BUDGET,
            ProcessError::Monitor { code, .. } => *code,
            _ => FAILURE,
        }
    }
}
