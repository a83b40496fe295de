//! `getParameter` and `setParameter`: server parameters, as mongod reports and changes them.
//! Runtime-settable parameters live in [`crate::state::parameters::RuntimeParameters`] (and the log
//! sink for verbosity), whose readers see a new value at once.

use bson::{Bson, Document, RawBsonRef, doc};

use super::options::is_generic_argument;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::State;

/// How a parameter takes a new value at runtime (`None` in [`Parameter::set`]: startup only).
type Setter = fn(&State, &str, RawBsonRef<'_>) -> Result<()>;

/// One server parameter: its name, how it may be set, and how to read and change it.
struct Parameter {
    name: &'static str,
    settable_at_startup: bool,
    value: fn(&State) -> Bson,
    set: Option<Setter>,
}

/// Every parameter this server has, in `getParameter: '*'` order.
const PARAMETERS: &[Parameter] = &[
    Parameter {
        name: "allowDiskUseByDefault",
        settable_at_startup: true,
        value: |s| Bson::Boolean(s.params.allow_disk_use_by_default()),
        set: Some(|s, name, value| {
            s.params.set_allow_disk_use_by_default(coerce_bool(name, value)?);
            Ok(())
        }),
    },
    Parameter {
        name: "cursorTimeoutMillis",
        settable_at_startup: true,
        value: |s| Bson::Int64(i64::try_from(s.params.cursor_timeout_millis()).unwrap_or(i64::MAX)),
        set: Some(|s, name, value| {
            s.params.set_cursor_timeout_millis(u64::try_from(coerce_integer(name, value)?).unwrap_or(0));
            Ok(())
        }),
    },
    Parameter {
        name: "enableTestCommands",
        settable_at_startup: true,
        value: |s| Bson::Boolean(s.config.parameters.enable_test_commands),
        set: None,
    },
    Parameter {
        name: "internalQueryMaxBlockingSortMemoryUsageBytes",
        settable_at_startup: true,
        value: |s| Bson::Int64(i64::try_from(s.params.max_blocking_sort_bytes()).unwrap_or(i64::MAX)),
        set: Some(|s, name, value| {
            let bytes = coerce_integer(name, value)?;
            let bytes = u64::try_from(bytes).map_err(|_| not_at_least(name, bytes, 0))?;
            s.params.set_max_blocking_sort_bytes(bytes);
            Ok(())
        }),
    },
    Parameter {
        name: "maxTransactionLockRequestTimeoutMillis",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.storage.transaction_lock_timeout_ms()).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| {
            s.storage.set_transaction_lock_timeout_ms(coerce_integer(name, value)?);
            Ok(())
        }),
    },
    Parameter {
        name: "minSnapshotHistoryWindowInSeconds",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.storage.oplog.history_window().as_secs()).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| {
            let seconds = coerce_integer(name, value)?;
            let seconds = u64::try_from(seconds).map_err(|_| not_at_least(name, seconds, 0))?;
            s.storage.oplog.set_history_window(seconds);
            Ok(())
        }),
    },
    Parameter {
        name: "logicalSessionRefreshMillis",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.config.parameters.session_refresh_millis).unwrap_or(i32::MAX)),
        set: None,
    },
    Parameter {
        name: "userCacheInvalidationIntervalSecs",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.config.parameters.user_cache_invalidation_secs).unwrap_or(i32::MAX)),
        set: None,
    },
    Parameter {
        name: "monarchMinAvailableDiskSpaceMB",
        settable_at_startup: true,
        value: |s| Bson::Int64(i64::try_from(s.storage.min_available_disk_space_mb()).unwrap_or(i64::MAX)),
        set: Some(|s, name, value| {
            let mb = coerce_integer(name, value)?;
            let mb = u64::try_from(mb).map_err(|_| not_at_least(name, mb, 0))?;
            s.storage.set_min_available_disk_space_mb(mb);
            Ok(())
        }),
    },
    Parameter {
        name: "monarchObservability",
        settable_at_startup: true,
        value: |s| Bson::Boolean(s.config.parameters.observability),
        set: None,
    },
    Parameter {
        name: "monarchTLSHandshakeTimeoutMillis",
        settable_at_startup: true,
        value: |s| Bson::Int64(i64::try_from(s.config.parameters.tls_handshake_timeout_millis).unwrap_or(i64::MAX)),
        set: None,
    },
    Parameter {
        name: "periodicNoopIntervalSecs",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.config.parameters.periodic_noop_interval_secs).unwrap_or(i32::MAX)),
        set: None,
    },
    Parameter {
        name: "scramIterationCount",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.params.scram_iterations(false)).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| set_scram_iterations(s, name, value, false)),
    },
    Parameter {
        name: "scramSHA256IterationCount",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.params.scram_iterations(true)).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| set_scram_iterations(s, name, value, true)),
    },
    Parameter {
        name: "transactionLifetimeLimitSeconds",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.params.transaction_lifetime().as_secs()).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| {
            let seconds = coerce_integer(name, value)?;
            if seconds < 1 {
                return Err(Error::new(
                    ErrorCode::BadValue,
                    format!("Invalid value for parameter {name}: {seconds} is not greater than or equal to 1"),
                ));
            }
            s.params.set_transaction_lifetime_secs(u64::try_from(seconds).unwrap_or(1));
            Ok(())
        }),
    },
    Parameter {
        name: "ttlMonitorSleepSecs",
        settable_at_startup: true,
        value: |s| Bson::Int32(i32::try_from(s.params.ttl_monitor_sleep_secs()).unwrap_or(i32::MAX)),
        set: Some(|s, name, value| {
            let seconds = coerce_integer(name, value)?;
            if seconds <= 0 {
                return Err(Error::new(
                    ErrorCode::BadValue,
                    format!("Invalid value for parameter {name}: {seconds} is not greater than 0"),
                ));
            }
            s.params.set_ttl_monitor_sleep_secs(u64::try_from(seconds).unwrap_or(1));
            Ok(())
        }),
    },
    Parameter {
        name: "featureCompatibilityVersion",
        settable_at_startup: false,
        value: |_| Bson::Document(doc! { "version": "7.0" }),
        set: None,
    },
    Parameter {
        name: "logComponentVerbosity",
        settable_at_startup: true,
        value: |s| Bson::Document(s.log.component_verbosity()),
        set: Some(|s, _, value| {
            let RawBsonRef::Document(settings) = value else {
                return Err(Error::new(
                    ErrorCode::TypeMismatch,
                    format!("log component verbosity is not a BSON object: logComponentVerbosity: {}", shown(value)),
                ));
            };
            s.log.set_component_verbosity(settings).map_err(|message| Error::new(ErrorCode::BadValue, message))
        }),
    },
    Parameter {
        name: "logLevel",
        settable_at_startup: true,
        value: |s| Bson::Int32(s.log.verbosity()),
        set: Some(|s, name, value| {
            let level = match value {
                RawBsonRef::Int32(n) => Some(i64::from(n)),
                RawBsonRef::Int64(n) => Some(n),
                RawBsonRef::Double(n) if n.fract() == 0.0 => Some(n as i64),
                _ => None,
            }
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Error::new(ErrorCode::BadValue, format!("Invalid value for logLevel: {name}: {}", shown(value)))
            })?;
            s.log.set_verbosity(level);
            Ok(())
        }),
    },
    Parameter {
        name: "quiet",
        settable_at_startup: true,
        value: |s| Bson::Boolean(s.params.quiet()),
        set: Some(|s, name, value| {
            s.params.set_quiet(coerce_bool(name, value)?);
            Ok(())
        }),
    },
];

/// A value as mongod prints it in these messages (relaxed extended JSON).
fn shown(value: RawBsonRef<'_>) -> String {
    Bson::try_from(value).map_or_else(|_| "?".to_owned(), |v| v.into_relaxed_extjson().to_string())
}

/// A number parameter's new value; mongod coerces any number.
fn coerce_integer(name: &str, value: RawBsonRef<'_>) -> Result<i64> {
    match value {
        RawBsonRef::Int32(n) => Ok(i64::from(n)),
        RawBsonRef::Int64(n) => Ok(n),
        RawBsonRef::Double(n) if n.is_finite() => Ok(n as i64),
        RawBsonRef::Boolean(b) => Ok(i64::from(b)),
        _ => Err(Error::new(
            ErrorCode::TypeMismatch,
            format!("Failed validating {name}: Unable to coerce value to integral type"),
        )),
    }
}

/// A boolean parameter's new value; numbers count as booleans, as in mongod.
fn coerce_bool(name: &str, value: RawBsonRef<'_>) -> Result<bool> {
    match value {
        RawBsonRef::Boolean(b) => Ok(b),
        RawBsonRef::Int32(n) => Ok(n != 0),
        RawBsonRef::Int64(n) => Ok(n != 0),
        RawBsonRef::Double(n) => Ok(n != 0.0),
        _ => Err(Error::new(
            ErrorCode::TypeMismatch,
            format!("Failed validating {name}: Unable to coerce value to bool"),
        )),
    }
}

/// `scramIterationCount`/`scramSHA256IterationCount`: at least mongod's 5,000.
fn set_scram_iterations(s: &State, name: &str, value: RawBsonRef<'_>, sha256: bool) -> Result<()> {
    let iterations = coerce_integer(name, value)?;
    let floor = i64::try_from(crate::config::MIN_SCRAM_ITERATIONS).unwrap_or(i64::MAX);
    if iterations < floor {
        return Err(not_at_least(name, iterations, floor));
    }
    s.params.set_scram_iterations(sha256, u64::try_from(iterations).unwrap_or(u64::MAX));
    Ok(())
}

fn not_at_least(name: &str, value: i64, bound: i64) -> Error {
    Error::new(
        ErrorCode::BadValue,
        format!("Invalid value for parameter {name}: {value} is not greater than or equal to {bound}"),
    )
}

/// `getParameter`: `'*'` (or `{allParameters: true}`) for all, else the named ones;
/// `{showDetails: true}` adds how each may be set.
pub fn get_parameter(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let (all, details) = match req.command_value() {
        Some(RawBsonRef::String("*")) => (true, false),
        Some(RawBsonRef::Document(options)) => {
            let flag = |key: &str| matches!(options.get(key), Ok(Some(RawBsonRef::Boolean(true))));
            (flag("allParameters"), flag("showDetails"))
        }
        _ => (false, false),
    };
    let describe = |p: &Parameter| {
        let value = (p.value)(ctx.state);
        if details {
            Bson::Document(doc! {
                "value": value,
                "settableAtRuntime": p.set.is_some(),
                "settableAtStartup": p.settable_at_startup,
            })
        } else {
            value
        }
    };
    let mut reply = Document::new();
    if all {
        for parameter in PARAMETERS {
            reply.insert(parameter.name, describe(parameter));
        }
        return Ok(reply);
    }
    for element in req.body().iter().skip(1) {
        let Ok((name, _)) = element else { continue };
        let name = name.as_str();
        if is_generic_argument(name) {
            continue;
        }
        let parameter = PARAMETERS
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::new(ErrorCode::InvalidOptions, "no option found to get"))?;
        reply.insert(parameter.name, describe(parameter));
    }
    if reply.is_empty() {
        return Err(Error::new(ErrorCode::InvalidOptions, "no option found to get"));
    }
    Ok(reply)
}

/// `setParameter: 1, <name>: <value>, ...`: checks every name first (known, settable at
/// runtime, given once), then sets them in name order; the reply's `was` is the first one's
/// old value, as mongod.
pub fn set_parameter(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, "setParameter may only be run against the admin database."));
    }
    let mut chosen: Vec<(&Parameter, Setter, RawBsonRef<'_>)> = Vec::new();
    for element in req.body().iter().skip(1) {
        let (name, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let name = name.as_str();
        if is_generic_argument(name) {
            continue;
        }
        let parameter = PARAMETERS.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidOptions,
                format!("attempted to set unrecognized parameter [{name}], use help:true to see options "),
            )
        })?;
        let Some(setter) = parameter.set else {
            return Err(Error::new(ErrorCode::IllegalOperation, format!("not allowed to change [{name}] at runtime")));
        };
        if let Some((_, _, first)) = chosen.iter().find(|(p, _, _)| p.name == name) {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                format!(
                    "attempted to set parameter [{name}] twice in the same setParameter command, once to value: \
                     [{}], and once to value: [{}]",
                    shown(*first),
                    shown(value)
                ),
            ));
        }
        chosen.push((parameter, setter, value));
    }
    if chosen.is_empty() {
        return Err(Error::new(ErrorCode::InvalidOptions, "no option found to set, use help:true to see options "));
    }
    // mongod sets them in name order (its map's order).
    chosen.sort_by_key(|(p, _, _)| p.name);
    let mut reply = Document::new();
    for (parameter, setter, value) in chosen {
        let old = (parameter.value)(ctx.state);
        setter(ctx.state, parameter.name, value)?;
        if reply.is_empty() {
            reply.insert("was", old.clone());
        }
        tracing::info!(
            target: "COMMAND",
            id = 23435,
            parameterName = parameter.name,
            newValue = shown(value),
            oldValue = old.into_relaxed_extjson().to_string(),
            "Successfully set parameter to new value"
        );
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestServer;

    #[test]
    fn get_parameter_feature_compatibility_version() -> Result<(), bson::error::Error> {
        let reply =
            TestServer::new().run_command(doc! { "getParameter": 1, "featureCompatibilityVersion": 1, "$db": "admin" });
        assert_eq!(reply.get_document("featureCompatibilityVersion")?.get_str("version")?, "7.0");
        assert_eq!(reply.get_f64("ok")?, 1.0);
        Ok(())
    }

    #[test]
    fn get_parameter_star_lists_all() {
        let reply = TestServer::new().run_command(doc! { "getParameter": "*", "$db": "admin" });
        assert_eq!(reply.get_bool("enableTestCommands").ok(), Some(false));
        assert_eq!(reply.len(), PARAMETERS.len() + 1);
    }

    #[test]
    fn get_parameter_unknown_is_invalid_options() {
        for body in
            [doc! { "getParameter": 1, "foo": 1, "$db": "admin" }, doc! { "getParameter": "foo", "$db": "admin" }]
        {
            let reply = TestServer::new().run_command(body);
            assert_eq!(reply.get_i32("code").ok(), Some(72), "{reply}");
            assert_eq!(reply.get_str("errmsg").ok(), Some("no option found to get"));
        }
    }

    #[test]
    fn get_parameter_show_details() -> Result<(), bson::error::Error> {
        let reply = TestServer::new()
            .run_command(doc! { "getParameter": { "showDetails": true }, "enableTestCommands": 1, "$db": "admin" });
        assert!(!reply.get_document("enableTestCommands")?.get_bool("settableAtRuntime")?);
        Ok(())
    }

    #[test]
    fn set_parameter_changes_and_reports_was() -> Result<(), bson::error::Error> {
        let shared = TestServer::new();
        let reply = shared.run_command(doc! { "setParameter": 1, "cursorTimeoutMillis": 1234, "$db": "admin" });
        assert_eq!(reply.get_i64("was")?, 600_000, "{reply}");
        assert_eq!(shared.params.cursor_timeout_millis(), 1234);
        let reply = shared.run_command(doc! { "getParameter": 1, "cursorTimeoutMillis": 1, "$db": "admin" });
        assert_eq!(reply.get_i64("cursorTimeoutMillis")?, 1234);
        Ok(())
    }

    #[test]
    fn set_parameter_refuses_as_mongod() {
        let shared = TestServer::new();
        let cases = [
            (
                doc! { "setParameter": 1, "noSuchParameter": 1, "$db": "admin" },
                72,
                "attempted to set unrecognized parameter [noSuchParameter], use help:true to see options ",
            ),
            (
                doc! { "setParameter": 1, "enableTestCommands": 1, "$db": "admin" },
                20,
                "not allowed to change [enableTestCommands] at runtime",
            ),
            (doc! { "setParameter": 1, "$db": "admin" }, 72, "no option found to set, use help:true to see options "),
            (doc! { "setParameter": 1, "logLevel": -1, "$db": "admin" }, 2, "Invalid value for logLevel: logLevel: -1"),
        ];
        for (body, code, message) in cases {
            let reply = shared.run_command(body);
            assert_eq!(reply.get_i32("code").ok(), Some(code), "{reply}");
            assert_eq!(reply.get_str("errmsg").ok(), Some(message), "{reply}");
        }
    }

    #[test]
    fn set_parameter_log_component_verbosity() -> Result<(), bson::error::Error> {
        let shared = TestServer::new();
        let reply = shared.run_command(
            doc! { "setParameter": 1, "logComponentVerbosity": { "verbosity": 1, "storage": { "journal": 2 } }, "$db": "admin" },
        );
        assert_eq!(reply.get_f64("ok")?, 1.0, "{reply}");
        let reply = shared.run_command(doc! { "getParameter": 1, "logComponentVerbosity": 1, "$db": "admin" });
        let tree = reply.get_document("logComponentVerbosity")?;
        assert_eq!(tree.get_i32("verbosity")?, 1);
        assert_eq!(tree.get_document("storage")?.get_document("journal")?.get_i32("verbosity")?, 2);
        assert_eq!(tree.get_document("query")?.get_i32("verbosity")?, -1);
        let reply =
            shared.run_command(doc! { "setParameter": 1, "logComponentVerbosity": { "nonsense": 1 }, "$db": "admin" });
        assert_eq!(reply.get_i32("code").ok(), Some(2), "{reply}");
        Ok(())
    }
}
