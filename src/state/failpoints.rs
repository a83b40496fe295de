//! Fail points for tests (`configureFailPoint`, only with `enableTestCommands`): mongod's
//! `failCommand`, which makes chosen commands fail, stall or drop the connection,
//! `maxTimeAlwaysTimeOut`, which makes every operation with a `maxTimeMS` time out, and
//! `onPrimaryTransactionalWrite`, which fails a retryable write's commit or drops its
//! connection once it has committed, and `failGetMoreAfterCursorCheckout`, which fails a
//! `getMore` once it holds its cursor. Drivers' specification tests use them to exercise
//! retries, resumes, error handling and time limits.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bson::{Bson, Document, RawBsonRef, RawDocument};

use crate::error::{Error, ErrorCode, Result};

/// When an armed fail point fires.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Every time.
    AlwaysOn,
    /// The next `n` times, then off.
    Times(u64),
    /// Not the next `n` times, then always.
    Skip(u64),
    /// Each time with this probability.
    Probability(f64),
}

/// What `failCommand` does to the commands it names (its `data` document).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailCommand {
    commands: Vec<String>,
    app_name: Option<String>,
    /// Reply with this error code instead of running the command.
    pub error_code: Option<i32>,
    /// Close the connection without replying.
    pub close_connection: bool,
    /// Stall this long before going on.
    pub block: Option<Duration>,
    /// Labels added to the error (or write concern error) reply.
    pub error_labels: Option<Vec<Bson>>,
    /// Run the command, then add this `writeConcernError` to its reply.
    pub write_concern_error: Option<Document>,
}

/// What `onPrimaryTransactionalWrite` does to a retryable write's commit (its `data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionalWriteFault {
    /// Close the connection once the write has committed (`closeConnection`, default true).
    pub close_connection: bool,
    /// Fail with this code instead of committing (`failBeforeCommitExceptionCode`).
    pub fail_before_commit: Option<i32>,
}

#[derive(Debug)]
struct Armed {
    mode: Mode,
    action: FailCommand,
}

/// The server's fail points.
#[derive(Debug, Default)]
pub struct FailPoints {
    fail_command: Mutex<Option<Armed>>,
    entered: Mutex<u64>,
    max_time_always_time_out: Mutex<Option<Mode>>,
    max_time_entered: Mutex<u64>,
    transactional_write: Mutex<Option<(Mode, TransactionalWriteFault)>>,
    transactional_write_entered: Mutex<u64>,
    get_more_after_checkout: Mutex<Option<(Mode, i32)>>,
    get_more_after_checkout_entered: Mutex<u64>,
}

impl FailPoints {
    /// Configures a fail point from `configureFailPoint`'s `mode` and `data`; returns how many
    /// times it fired before (mongod's `count`).
    ///
    /// # Errors
    /// 2 BadValue for unknown fail points, modes or malformed data.
    pub fn configure(&self, name: &str, mode: Option<RawBsonRef<'_>>, data: Option<&RawDocument>) -> Result<u64> {
        if name == "maxTimeAlwaysTimeOut" {
            *self.max_time_always_time_out.lock().unwrap_or_else(PoisonError::into_inner) = parse_mode(mode)?;
            let mut entered = self.max_time_entered.lock().unwrap_or_else(PoisonError::into_inner);
            return Ok(std::mem::take(&mut *entered));
        }
        if name == "onPrimaryTransactionalWrite" {
            let fault = match parse_mode(mode)? {
                None => None,
                Some(mode) => Some((mode, parse_transactional_write(data)?)),
            };
            *self.transactional_write.lock().unwrap_or_else(PoisonError::into_inner) = fault;
            let mut entered = self.transactional_write_entered.lock().unwrap_or_else(PoisonError::into_inner);
            return Ok(std::mem::take(&mut *entered));
        }
        if name == "failGetMoreAfterCursorCheckout" {
            let fault = match parse_mode(mode)? {
                None => None,
                Some(mode) => {
                    let code = data.and_then(|d| d.get_i32("errorCode").ok()).ok_or_else(|| {
                        Error::new(ErrorCode::BadValue, "failGetMoreAfterCursorCheckout needs data.errorCode")
                    })?;
                    Some((mode, code))
                }
            };
            *self.get_more_after_checkout.lock().unwrap_or_else(PoisonError::into_inner) = fault;
            let mut entered = self.get_more_after_checkout_entered.lock().unwrap_or_else(PoisonError::into_inner);
            return Ok(std::mem::take(&mut *entered));
        }
        if name != "failCommand" {
            return Err(Error::new(ErrorCode::BadValue, format!("Cannot find fail point named '{name}'")));
        }
        let mode = parse_mode(mode)?;
        let armed = match mode {
            None => None,
            Some(mode) => Some(Armed { mode, action: parse_data(data)? }),
        };
        *self.fail_command.lock().unwrap_or_else(PoisonError::into_inner) = armed;
        let mut entered = self.entered.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *entered))
    }

    /// Whether `maxTimeAlwaysTimeOut` fires for an operation with a time limit; counts the
    /// firing and advances `times`/`skip`.
    pub fn max_time_always_times_out(&self) -> bool {
        let mut slot = self.max_time_always_time_out.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mode) = slot.as_mut() else { return false };
        if !fires(mode) {
            return false;
        }
        if *mode == Mode::Times(0) {
            *slot = None;
        }
        *self.max_time_entered.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        true
    }

    /// The error code `failGetMoreAfterCursorCheckout` fails a `getMore` with, once its
    /// cursor is checked out, if it fires; counts the firing and advances `times`/`skip`.
    pub fn get_more_after_checkout(&self) -> Option<i32> {
        let mut slot = self.get_more_after_checkout.lock().unwrap_or_else(PoisonError::into_inner);
        let (mode, code) = slot.as_mut()?;
        if !fires(mode) {
            return None;
        }
        let code = *code;
        if *mode == Mode::Times(0) {
            *slot = None;
        }
        *self.get_more_after_checkout_entered.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Some(code)
    }

    /// Whether `onPrimaryTransactionalWrite` fires for a retryable write's commit, and what it
    /// does; counts the firing and advances `times`/`skip`.
    pub fn transactional_write(&self) -> Option<TransactionalWriteFault> {
        let mut slot = self.transactional_write.lock().unwrap_or_else(PoisonError::into_inner);
        let (mode, fault) = slot.as_mut()?;
        if !fires(mode) {
            return None;
        }
        let fault = *fault;
        if *mode == Mode::Times(0) {
            *slot = None;
        }
        *self.transactional_write_entered.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Some(fault)
    }

    /// Whether the fail point fires for `command` from a client named `app_name`; counts the
    /// firing and advances `times`/`skip`.
    pub fn check(&self, command: &str, app_name: Option<&str>) -> Option<FailCommand> {
        let mut slot = self.fail_command.lock().unwrap_or_else(PoisonError::into_inner);
        let armed = slot.as_mut()?;
        if !armed.action.commands.iter().any(|c| c == command) {
            return None;
        }
        if armed.action.app_name.as_deref().is_some_and(|wanted| Some(wanted) != app_name) {
            return None;
        }
        if !fires(&mut armed.mode) {
            return None;
        }
        let action = armed.action.clone();
        if armed.mode == Mode::Times(0) {
            *slot = None;
        }
        *self.entered.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Some(action)
    }
}

/// Whether a fail point in `mode` fires now; advances `times` and `skip`.
fn fires(mode: &mut Mode) -> bool {
    match mode {
        Mode::AlwaysOn => true,
        Mode::Times(0) => false,
        Mode::Times(n) => {
            *n -= 1;
            true
        }
        Mode::Skip(0) => true,
        Mode::Skip(n) => {
            *n -= 1;
            false
        }
        Mode::Probability(p) => random_unit() < *p,
    }
}

fn parse_mode(mode: Option<RawBsonRef<'_>>) -> Result<Option<Mode>> {
    let bad = || {
        Error::new(
            ErrorCode::BadValue,
            "'mode' must be 'alwaysOn', 'off', or a document with 'times', 'skip' or 'activationProbability'",
        )
    };
    match mode {
        Some(RawBsonRef::String("alwaysOn")) => Ok(Some(Mode::AlwaysOn)),
        Some(RawBsonRef::String("off")) => Ok(None),
        Some(RawBsonRef::Document(spec)) => {
            let (key, value) = spec.iter().next().and_then(|e| e.ok()).ok_or_else(bad)?;
            let count = || number(value).filter(|n| *n >= 0.0).map(|n| n as u64).ok_or_else(bad);
            match key.as_str() {
                "times" => Ok(Some(Mode::Times(count()?))),
                "skip" => Ok(Some(Mode::Skip(count()?))),
                "activationProbability" => {
                    let p = number(value).filter(|p| (0.0..=1.0).contains(p)).ok_or_else(bad)?;
                    Ok(Some(Mode::Probability(p)))
                }
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// `onPrimaryTransactionalWrite`'s `data`: `closeConnection` (default true) and
/// `failBeforeCommitExceptionCode`.
fn parse_transactional_write(data: Option<&RawDocument>) -> Result<TransactionalWriteFault> {
    let mut fault = TransactionalWriteFault { close_connection: true, fail_before_commit: None };
    for element in data.into_iter().flatten() {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match (key.as_str(), value) {
            ("closeConnection", RawBsonRef::Boolean(b)) => fault.close_connection = b,
            ("failBeforeCommitExceptionCode", value) => fault.fail_before_commit = number(value).map(|n| n as i32),
            _ => {}
        }
    }
    Ok(fault)
}

fn parse_data(data: Option<&RawDocument>) -> Result<FailCommand> {
    let data = data.ok_or_else(|| Error::new(ErrorCode::BadValue, "failCommand requires 'data'"))?;
    let mut action = FailCommand::default();
    let (mut block_connection, mut block_ms) = (false, 0.0);
    for element in data {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match (key.as_str(), value) {
            ("failCommands", RawBsonRef::Array(names)) => {
                action.commands = names.into_iter().filter_map(|n| n.ok()?.as_str().map(str::to_owned)).collect();
            }
            ("errorCode", value) => action.error_code = number(value).map(|n| n as i32),
            ("closeConnection", RawBsonRef::Boolean(b)) => action.close_connection = b,
            ("blockConnection", RawBsonRef::Boolean(b)) => block_connection = b,
            ("blockTimeMS", value) => block_ms = number(value).unwrap_or(0.0).max(0.0),
            ("errorLabels", RawBsonRef::Array(labels)) => {
                action.error_labels = Some(labels.into_iter().filter_map(|l| Bson::try_from(l.ok()?).ok()).collect());
            }
            ("writeConcernError", RawBsonRef::Document(wce)) => {
                action.write_concern_error = Document::try_from(wce).ok();
            }
            ("appName", RawBsonRef::String(name)) => action.app_name = Some(name.to_owned()),
            _ => {}
        }
    }
    action.block = block_connection.then(|| Duration::from_millis(block_ms as u64));
    if action.commands.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "failCommand requires a non-empty 'failCommands' array"));
    }
    Ok(action)
}

fn number(value: RawBsonRef<'_>) -> Option<f64> {
    match value {
        RawBsonRef::Int32(n) => Some(f64::from(n)),
        RawBsonRef::Int64(n) => Some(n as f64),
        RawBsonRef::Double(n) => Some(n),
        _ => None,
    }
}

/// A number in `[0, 1)` from the standard library's randomly keyed hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{rawbson, rawdoc};

    #[test]
    fn failpoint_times_then_off_and_count() -> Result<()> {
        let points = FailPoints::default();
        let data = rawdoc! { "failCommands": ["insert"], "errorCode": 91 };
        points.configure("failCommand", Some(rawbson!({ "times": 2 }).as_raw_bson_ref()), Some(&data))?;
        assert!(points.check("find", None).is_none());
        assert_eq!(points.check("insert", None).and_then(|a| a.error_code), Some(91));
        assert!(points.check("insert", None).is_some());
        assert!(points.check("insert", None).is_none());
        assert_eq!(points.configure("failCommand", Some(RawBsonRef::String("off")), None)?, 2);
        Ok(())
    }

    #[test]
    fn failpoint_skip_and_app_name() -> Result<()> {
        let points = FailPoints::default();
        let data = rawdoc! { "failCommands": ["ping"], "closeConnection": true, "appName": "app1" };
        points.configure("failCommand", Some(rawbson!({ "skip": 1 }).as_raw_bson_ref()), Some(&data))?;
        assert!(points.check("ping", Some("app1")).is_none(), "skipped once");
        assert!(points.check("ping", Some("other")).is_none(), "other application");
        assert!(points.check("ping", Some("app1")).is_some_and(|a| a.close_connection));
        Ok(())
    }

    #[test]
    fn failpoint_rejects_unknown_names_and_modes() {
        let points = FailPoints::default();
        let data = rawdoc! { "failCommands": ["ping"] };
        assert!(points.configure("noSuchPoint", Some(RawBsonRef::String("alwaysOn")), Some(&data)).is_err());
        assert!(points.configure("failCommand", Some(RawBsonRef::String("sometimes")), Some(&data)).is_err());
    }
}
