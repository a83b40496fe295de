//! SIGHUP reloads the configuration: the same command line, config file and environment are
//! read again, and what can change while serving takes effect at once (log verbosity, the
//! log components, `quiet`, the slow-operation threshold and sample rate, the profiler's
//! default level, the runtime server parameters). Every other changed key is listed as
//! needing a restart; the TLS certificates are read again from their files beside this
//! (`state::tls`). One log line says what changed and what waits, and `/config` shows the
//! result. A configuration that no longer validates changes nothing.
//!
//! Settings changed at run time by `setParameter` or `profile` are overwritten only when the
//! reloaded file changes the same key.

use std::collections::BTreeMap;

use bson::{Bson, Document};

use crate::config::{Config, ConfigError};
use crate::obs::Observers;
use crate::state::State;

/// What a reload changed.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadOutcome {
    /// Keys (as `Config::effective()` spells them) now in effect with new values.
    pub changed: Vec<String>,
    /// Keys whose new values take effect only at the next start.
    pub needs_restart: Vec<String>,
}

/// The servers parts a runtime setting changes.
struct Targets<'a> {
    state: &'a State,
    observers: &'a Observers,
}

/// A setting that can change while serving.
struct RuntimeSetting {
    /// Its key in `Config::effective()`; a key ending in `.` covers a whole section.
    key: &'static str,
    /// Makes the reloaded configuration's value take effect (the one in effect is given too).
    apply: fn(&Targets<'_>, &Config, &Config),
    /// Copies `new`'s value into the configuration in effect.
    adopt: fn(&mut Config, &Config),
}

/// Every setting a reload applies; the rest need a restart.
const RUNTIME_SETTINGS: &[RuntimeSetting] = &[
    RuntimeSetting {
        key: "systemLog.verbosity",
        apply: |t, _, new| t.state.log.set_verbosity(i32::from(new.log.verbosity)),
        adopt: |config, new| config.log.verbosity = new.log.verbosity,
    },
    RuntimeSetting {
        key: "systemLog.component.",
        apply: |t, old, new| apply_components(t, &old.log.components, &new.log.components),
        adopt: |config, new| config.log.components = new.log.components.clone(),
    },
    RuntimeSetting {
        key: "systemLog.quiet",
        apply: |t, _, new| t.state.params.set_quiet(new.log.quiet),
        adopt: |config, new| config.log.quiet = new.log.quiet,
    },
    RuntimeSetting {
        key: "operationProfiling.slowOpThresholdMs",
        apply: |t, _, new| t.observers.slow_log.set(Some(new.profiling.slow_ms), None),
        adopt: |config, new| config.profiling.slow_ms = new.profiling.slow_ms,
    },
    RuntimeSetting {
        key: "operationProfiling.slowOpSampleRate",
        apply: |t, _, new| t.observers.slow_log.set(None, Some(new.profiling.sample_rate)),
        adopt: |config, new| config.profiling.sample_rate = new.profiling.sample_rate,
    },
    RuntimeSetting {
        key: "operationProfiling.mode",
        apply: |t, _, new| t.observers.profiler.set_default_level(new.profiling.level),
        adopt: |config, new| config.profiling.level = new.profiling.level,
    },
    RuntimeSetting {
        key: "setParameter.cursorTimeoutMillis",
        apply: |t, _, new| t.state.params.set_cursor_timeout_millis(new.parameters.cursor_timeout_millis),
        adopt: |config, new| config.parameters.cursor_timeout_millis = new.parameters.cursor_timeout_millis,
    },
    RuntimeSetting {
        key: "setParameter.ttlMonitorSleepSecs",
        apply: |t, _, new| t.state.params.set_ttl_monitor_sleep_secs(new.parameters.ttl_monitor_sleep_secs),
        adopt: |config, new| config.parameters.ttl_monitor_sleep_secs = new.parameters.ttl_monitor_sleep_secs,
    },
    RuntimeSetting {
        key: "setParameter.internalQueryMaxBlockingSortMemoryUsageBytes",
        apply: |t, _, new| t.state.params.set_max_blocking_sort_bytes(new.parameters.max_blocking_sort_bytes),
        adopt: |config, new| config.parameters.max_blocking_sort_bytes = new.parameters.max_blocking_sort_bytes,
    },
    RuntimeSetting {
        key: "setParameter.allowDiskUseByDefault",
        apply: |t, _, new| t.state.params.set_allow_disk_use_by_default(new.parameters.allow_disk_use_by_default),
        adopt: |config, new| config.parameters.allow_disk_use_by_default = new.parameters.allow_disk_use_by_default,
    },
    RuntimeSetting {
        key: "setParameter.scramIterationCount",
        apply: |t, _, new| t.state.params.set_scram_iterations(false, new.parameters.scram_iteration_count),
        adopt: |config, new| config.parameters.scram_iteration_count = new.parameters.scram_iteration_count,
    },
    RuntimeSetting {
        key: "setParameter.scramSHA256IterationCount",
        apply: |t, _, new| t.state.params.set_scram_iterations(true, new.parameters.scram_sha256_iteration_count),
        adopt: |config, new| {
            config.parameters.scram_sha256_iteration_count = new.parameters.scram_sha256_iteration_count;
        },
    },
    RuntimeSetting {
        key: "setParameter.transactionLifetimeLimitSeconds",
        apply: |t, _, new| t.state.params.set_transaction_lifetime_secs(new.parameters.transaction_lifetime_secs),
        adopt: |config, new| config.parameters.transaction_lifetime_secs = new.parameters.transaction_lifetime_secs,
    },
    RuntimeSetting {
        key: "setParameter.maxTransactionLockRequestTimeoutMillis",
        apply: |t, _, new| t.state.storage.set_transaction_lock_timeout_ms(new.parameters.transaction_lock_timeout_ms),
        adopt: |config, new| config.parameters.transaction_lock_timeout_ms = new.parameters.transaction_lock_timeout_ms,
    },
    RuntimeSetting {
        key: "setParameter.minSnapshotHistoryWindowInSeconds",
        apply: |t, _, new| t.state.storage.oplog.set_history_window(new.parameters.snapshot_history_window_secs),
        adopt: |config, new| {
            config.parameters.snapshot_history_window_secs = new.parameters.snapshot_history_window_secs;
        },
    },
    RuntimeSetting {
        key: "setParameter.monarchMinAvailableDiskSpaceMB",
        apply: |t, _, new| t.state.storage.set_min_available_disk_space_mb(new.parameters.min_available_disk_space_mb),
        adopt: |config, new| {
            config.parameters.min_available_disk_space_mb = new.parameters.min_available_disk_space_mb;
        },
    },
];

/// Keys of `Config::effective()` that are not settings.
const NOT_SETTINGS: &[&str] = &["warnings"];

/// Reads the configuration again from the command line the server started with, applies what
/// can change at run time, records the result for `/config`, and logs one line.
///
/// # Errors
/// The [`ConfigError`] of a configuration that no longer validates; nothing changes then.
pub fn reload(state: &State, observers: &Observers) -> Result<ReloadOutcome, ConfigError> {
    let reloaded = match Config::from_args(&state.config.argv) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(
                target: "CONTROL",
                id = 7_000_331,
                trigger = "SIGHUP",
                error = %error,
                "Configuration reload failed; the settings in effect are kept"
            );
            return Err(error);
        }
    };
    let mut in_effect = state.config_in_effect.get();
    let outcome = apply(&Targets { state, observers }, &mut in_effect, &reloaded);
    state.config_in_effect.replace(in_effect, outcome.needs_restart.clone());
    tracing::info!(
        target: "CONTROL",
        id = 7_000_330,
        trigger = "SIGHUP",
        changed = outcome.changed.join(","),
        needsRestart = outcome.needs_restart.join(","),
        "Configuration reloaded"
    );
    Ok(outcome)
}

/// Applies `reloaded`'s runtime settings that differ from `in_effect` and adopts them there;
/// lists what changed and which other keys differ.
fn apply(targets: &Targets<'_>, in_effect: &mut Config, reloaded: &Config) -> ReloadOutcome {
    let before = flatten(&in_effect.effective());
    let wanted = flatten(&reloaded.effective());
    for setting in RUNTIME_SETTINGS {
        let covers = |key: &&String| covered_by(setting.key, key);
        let differs = before.keys().chain(wanted.keys()).filter(covers).any(|key| before.get(key) != wanted.get(key));
        if differs {
            (setting.apply)(targets, in_effect, reloaded);
            (setting.adopt)(in_effect, reloaded);
        }
    }
    let after = flatten(&in_effect.effective());
    let differing = |a: &BTreeMap<String, Bson>, b: &BTreeMap<String, Bson>| -> Vec<String> {
        let mut keys: Vec<String> =
            a.keys().chain(b.keys()).filter(|key| a.get(*key) != b.get(*key)).cloned().collect();
        keys.sort();
        keys.dedup();
        keys
    };
    ReloadOutcome { changed: differing(&before, &after), needs_restart: differing(&after, &wanted) }
}

/// Sets the changed component levels: the new level of a changed one, the inherited level
/// (-1) of one the file no longer names.
fn apply_components(targets: &Targets<'_>, old: &Document, new: &Document) {
    let (before, wanted) = (flatten(old), flatten(new));
    let mut settings = Document::new();
    for path in before.keys().chain(wanted.keys()) {
        if before.get(path) != wanted.get(path) {
            insert_path(&mut settings, path, wanted.get(path).cloned().unwrap_or(Bson::Int32(-1)));
        }
    }
    if let Ok(raw) = bson::RawDocumentBuf::try_from(&settings) {
        // The reloaded configuration checked these names and levels.
        let _ = targets.state.log.set_component_verbosity(&raw);
    }
}

/// Whether `key` is the setting `setting` or inside its section.
fn covered_by(setting: &str, key: &str) -> bool {
    if setting.ends_with('.') { key.starts_with(setting) } else { key == setting }
}

/// Every leaf of `doc` by its dotted path (arrays are leaves), without the non-settings.
fn flatten(doc: &Document) -> BTreeMap<String, Bson> {
    fn walk(doc: &Document, prefix: &str, out: &mut BTreeMap<String, Bson>) {
        for (key, value) in doc {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                Bson::Document(inner) if !inner.is_empty() => walk(inner, &path, out),
                Bson::Document(_) => {}
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(doc, "", &mut out);
    out.retain(|key, _| !NOT_SETTINGS.iter().any(|skip| key == skip));
    out
}

/// Sets `value` at the dotted `path` of `doc`, creating documents on the way.
fn insert_path(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => {
            if !matches!(doc.get(head), Some(Bson::Document(_))) {
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn flatten_lists_leaves_by_path() {
        let flat = flatten(&doc! { "a": { "b": 1, "c": { "d": [1, 2] } }, "e": {}, "warnings": ["x"] });
        let keys: Vec<&str> = flat.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a.b", "a.c.d"]);
    }

    #[test]
    fn insert_path_builds_nested_documents() {
        let mut settings = Document::new();
        insert_path(&mut settings, "storage.journal.verbosity", Bson::Int32(2));
        insert_path(&mut settings, "storage.verbosity", Bson::Int32(-1));
        assert_eq!(settings, doc! { "storage": { "journal": { "verbosity": 2 }, "verbosity": -1 } });
    }

    #[test]
    fn sections_cover_their_keys_and_nothing_else() {
        assert!(covered_by("systemLog.component.", "systemLog.component.storage.verbosity"));
        assert!(!covered_by("systemLog.component.", "systemLog.verbosity"));
        assert!(covered_by("systemLog.quiet", "systemLog.quiet"));
        assert!(!covered_by("systemLog.quiet", "systemLog.quietly"));
    }
}
