//! `getParameter`: server parameters, as mongod reports them.

use bson::{Bson, Document, RawBsonRef, doc};

use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::server::Shared;

/// One server parameter: its name, how it may be set, and how to read it.
struct Parameter {
    name: &'static str,
    settable_at_startup: bool,
    settable_at_runtime: bool,
    value: fn(&Shared) -> Bson,
}

/// Every parameter this server has, alphabetically.
const PARAMETERS: &[Parameter] = &[
    Parameter {
        name: "allowDiskUseByDefault",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Boolean(s.config.parameters.allow_disk_use_by_default),
    },
    Parameter {
        name: "cursorTimeoutMillis",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Int64(i64::try_from(s.config.parameters.cursor_timeout_millis).unwrap_or(i64::MAX)),
    },
    Parameter {
        name: "enableTestCommands",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Boolean(s.config.parameters.enable_test_commands),
    },
    Parameter {
        name: "internalQueryMaxBlockingSortMemoryUsageBytes",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Int64(i64::try_from(s.config.parameters.max_blocking_sort_bytes).unwrap_or(i64::MAX)),
    },
    Parameter {
        name: "monarchObservability",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Boolean(s.config.parameters.observability),
    },
    Parameter {
        name: "ttlMonitorSleepSecs",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Int32(i32::try_from(s.config.parameters.ttl_monitor_sleep_secs).unwrap_or(i32::MAX)),
    },
    Parameter {
        name: "featureCompatibilityVersion",
        settable_at_startup: false,
        settable_at_runtime: false,
        value: |_| Bson::Document(doc! { "version": "7.0" }),
    },
    Parameter {
        name: "logLevel",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Int32(i32::from(s.config.log.verbosity)),
    },
    Parameter {
        name: "quiet",
        settable_at_startup: true,
        settable_at_runtime: false,
        value: |s| Bson::Boolean(s.config.log.quiet),
    },
];

/// Fields every command may carry that are not parameter names.
fn is_generic_argument(name: &str) -> bool {
    name.starts_with('$') || matches!(name, "lsid" | "comment" | "apiVersion" | "apiStrict" | "apiDeprecationErrors")
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
        let value = (p.value)(ctx.server);
        if details {
            Bson::Document(doc! {
                "value": value,
                "settableAtRuntime": p.settable_at_runtime,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_parameter_feature_compatibility_version() -> Result<(), bson::error::Error> {
        let reply = Shared::for_tests()
            .run_command(doc! { "getParameter": 1, "featureCompatibilityVersion": 1, "$db": "admin" });
        assert_eq!(reply.get_document("featureCompatibilityVersion")?.get_str("version")?, "7.0");
        assert_eq!(reply.get_f64("ok")?, 1.0);
        Ok(())
    }

    #[test]
    fn get_parameter_star_lists_all() {
        let reply = Shared::for_tests().run_command(doc! { "getParameter": "*", "$db": "admin" });
        assert_eq!(reply.get_bool("enableTestCommands").ok(), Some(false));
        assert_eq!(reply.len(), PARAMETERS.len() + 1);
    }

    #[test]
    fn get_parameter_unknown_is_invalid_options() {
        for body in
            [doc! { "getParameter": 1, "foo": 1, "$db": "admin" }, doc! { "getParameter": "foo", "$db": "admin" }]
        {
            let reply = Shared::for_tests().run_command(body);
            assert_eq!(reply.get_i32("code").ok(), Some(72), "{reply}");
            assert_eq!(reply.get_str("errmsg").ok(), Some("no option found to get"));
        }
    }

    #[test]
    fn get_parameter_show_details() -> Result<(), bson::error::Error> {
        let reply = Shared::for_tests()
            .run_command(doc! { "getParameter": { "showDetails": true }, "quiet": 1, "$db": "admin" });
        assert!(!reply.get_document("quiet")?.get_bool("settableAtRuntime")?);
        Ok(())
    }
}
