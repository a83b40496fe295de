//! Why an operation must stop: `killOp`, or its `maxTimeMS` deadline. One [`Interrupt`] per
//! request; the executor's periodic checks and the cursor's batch loop read the same deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::error::{Error, ErrorCode, Result};

/// The kill flag and the `maxTimeMS` deadline of one request.
#[derive(Debug, Default)]
pub struct Interrupt {
    killed: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Interrupt {
    /// Marks the operation killed; it stops at its next check.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
    }

    /// Whether `killOp` marked it.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Sets the `maxTimeMS` deadline.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// The `maxTimeMS` deadline, if the request set one.
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails with 11601 Interrupted after `killOp`, 50 MaxTimeMSExpired past the deadline.
    ///
    /// # Errors
    /// As described.
    pub fn check(&self) -> Result<()> {
        if self.killed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Interrupted, "operation was interrupted"));
        }
        check_deadline(self.deadline())
    }
}

/// Fails with 50 MaxTimeMSExpired once `deadline` has passed.
///
/// # Errors
/// As described.
pub fn check_deadline(deadline: Option<Instant>) -> Result<()> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(time_limit_exceeded());
    }
    Ok(())
}

/// mongod's error for a `maxTimeMS` that ran out.
pub fn time_limit_exceeded() -> Error {
    Error::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_deadline_interrupts_at_the_next_check() {
        let interrupt = Interrupt::default();
        interrupt.set_deadline(Some(Instant::now()));
        assert_eq!(interrupt.check().map(|()| 0).unwrap_err().code(), ErrorCode::MaxTimeMSExpired);
    }
}
