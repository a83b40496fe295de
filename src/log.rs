//! Logging in mongod's shape: one JSON object per line
//! (`{"t":{"$date":…},"s":"I","c":"NETWORK","id":22943,"ctx":"conn12","msg":…,"attr":{…}}`),
//! written to standard output or `--logpath`, and kept in memory for `getLog`.
//!
//! Events name their component through the tracing target (`target: "NETWORK"`), their
//! mongod-style message id through an `id` field, and their context (`conn12`) through the
//! `ctx` field of an enclosing span; every other field becomes an attribute.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// Logging settings (`systemLog`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Log file; standard output when `None`.
    pub path: Option<std::path::PathBuf>,
    /// Append to an existing file instead of renaming it aside.
    pub append: bool,
    /// Suppress connection events.
    pub quiet: bool,
    /// mongod's verbosity, 0..=5.
    pub verbosity: u8,
    /// Per-component levels (`systemLog.component`), shaped as `logComponentVerbosity` is,
    /// already checked by [`check_component_verbosity`].
    pub components: bson::Document,
}

/// Lines kept for `getLog: "global"`, as mongod's in-memory log.
const RING_CAPACITY: usize = 1024;

/// mongod's log components, as `logComponentVerbosity` names them: the short name and the
/// index of the parent (`None`: a child of the default component). Monarch's tracing targets
/// are the upper-case short names (`NETWORK`, `COMMAND`, ...).
const COMPONENTS: &[(&str, Option<usize>)] = &[
    ("accessControl", None),
    ("assert", None),
    ("command", None),
    ("control", None),
    ("executor", None),
    ("geo", None),
    ("globalIndex", None),
    ("index", None),
    ("network", None),
    ("processHealth", None),
    ("query", None),
    ("queryStats", None),
    ("replication", None),
    ("sharding", None),
    ("storage", None),
    ("write", None),
    ("ftdc", None),
    ("tracking", None),
    ("transaction", None),
    ("tenantMigration", None),
    ("test", None),
    ("resourceConsumption", None),
    ("streams", None),
    ("asio", Some(8)),
    ("bridge", Some(8)),
    ("connectionPool", Some(8)),
    ("election", Some(12)),
    ("heartbeats", Some(12)),
    ("initialSync", Some(12)),
    ("rollback", Some(12)),
    ("rangeDeleter", Some(13)),
    ("shardingCatalogRefresh", Some(13)),
    ("migration", Some(13)),
    ("recovery", Some(14)),
    ("journal", Some(14)),
    ("wt", Some(14)),
];

/// Where log lines go, the in-memory copies `getLog` reads, and the verbosity settings
/// (`logLevel`, `logComponentVerbosity`), which `setParameter` changes while the server runs.
pub struct LogSink {
    out: Mutex<Box<dyn Write + Send>>,
    /// The log file, when the log goes to one (what `logRotate` renames aside).
    path: Mutex<Option<std::path::PathBuf>>,
    global: Mutex<Ring>,
    startup_warnings: Mutex<Ring>,
    starting: AtomicBool,
    /// The default component's verbosity (`logLevel`).
    verbosity: AtomicI32,
    /// Per component, in [`COMPONENTS`] order: -1 inherits from the parent.
    component_verbosity: Vec<AtomicI32>,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<String>,
    total: u64,
}

impl Ring {
    fn push(&mut self, line: String) {
        if self.lines.len() == RING_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.total += 1;
    }
}

/// A copy of one in-memory log: the retained lines and how many were ever written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    /// Lines written since start (more than `lines.len()` once the ring has wrapped).
    pub total_lines_written: u64,
    /// The retained lines, oldest first.
    pub lines: Vec<String>,
}

impl LogSink {
    /// A sink writing to `out`; warnings count as startup warnings until
    /// [`LogSink::startup_complete`].
    pub fn new(out: Box<dyn Write + Send>) -> Arc<Self> {
        Arc::new(Self {
            out: Mutex::new(out),
            path: Mutex::default(),
            global: Mutex::default(),
            startup_warnings: Mutex::default(),
            starting: AtomicBool::new(true),
            verbosity: AtomicI32::new(0),
            component_verbosity: COMPONENTS.iter().map(|_| AtomicI32::new(-1)).collect(),
        })
    }

    /// Renames the log file aside (with [`rotation_suffix`]) and goes on in a new one; returns
    /// the rotated file's name, or `None` when the log goes to standard output.
    ///
    /// # Errors
    /// The rename or the new file failed (the log then stays where it was).
    pub fn rotate(&self) -> std::io::Result<Option<std::path::PathBuf>> {
        let path = self.path.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(path) = path else { return Ok(None) };
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.flush();
        let aside = aside_name(&path);
        std::fs::rename(&path, &aside)?;
        *out = open_log_file(&path)?;
        Ok(Some(aside))
    }

    /// The default verbosity (`logLevel`): 0 logs informational lines, 1..=5 debug lines.
    pub fn verbosity(&self) -> i32 {
        self.verbosity.load(Ordering::Relaxed)
    }

    /// Sets the default verbosity (`setParameter: {logLevel}`); it applies to the next line.
    pub fn set_verbosity(&self, level: i32) {
        self.verbosity.store(level.max(0), Ordering::Relaxed);
    }

    /// The verbosity a component logs at: its own, else its parent's, else the default.
    fn effective_verbosity(&self, component: &str) -> i32 {
        let mut index = COMPONENTS.iter().position(|(name, _)| name.eq_ignore_ascii_case(component));
        while let Some(i) = index {
            let level = self.component_verbosity.get(i).map_or(-1, |v| v.load(Ordering::Relaxed));
            if level >= 0 {
                return level;
            }
            index = COMPONENTS.get(i).and_then(|(_, parent)| *parent);
        }
        self.verbosity()
    }

    /// `logComponentVerbosity` as mongod reports it: the default `verbosity`, then every
    /// component with its own `verbosity` (-1: inherited) and its children.
    pub fn component_verbosity(&self) -> bson::Document {
        fn level_of(sink: &LogSink, i: usize) -> i32 {
            sink.component_verbosity.get(i).map_or(-1, |v| v.load(Ordering::Relaxed))
        }
        fn subtree(sink: &LogSink, i: usize) -> bson::Document {
            let mut doc = bson::doc! { "verbosity": level_of(sink, i) };
            for (child, (name, parent)) in COMPONENTS.iter().enumerate() {
                if *parent == Some(i) {
                    doc.insert(*name, subtree(sink, child));
                }
            }
            doc
        }
        let mut doc = bson::doc! { "verbosity": self.verbosity() };
        for (i, (name, parent)) in COMPONENTS.iter().enumerate() {
            if parent.is_none() {
                doc.insert(*name, subtree(self, i));
            }
        }
        doc
    }

    /// Applies a `logComponentVerbosity` document: `verbosity` sets the default, a component
    /// takes a number or a document with its own `verbosity` and children; a negative level
    /// clears a component's setting (it inherits again). Nothing changes when the document
    /// is invalid.
    ///
    /// # Errors
    /// mongod's message (as text) for an unknown component or a value of the wrong type.
    pub fn set_component_verbosity(&self, settings: &bson::RawDocument) -> Result<(), String> {
        let mut levels: Vec<(Option<usize>, i32)> = Vec::new();
        collect_levels(settings, None, &mut levels)?;
        for (component, level) in levels {
            match component {
                None => self.set_verbosity(level),
                Some(i) => {
                    if let Some(slot) = self.component_verbosity.get(i) {
                        slot.store(level.max(-1), Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the startup phase: later warnings are no longer startup warnings.
    pub fn startup_complete(&self) {
        self.starting.store(false, Ordering::Release);
    }

    /// The `global` log.
    pub fn global(&self) -> LogSnapshot {
        snapshot(&self.global)
    }

    /// The `startupWarnings` log.
    pub fn startup_warnings(&self) -> LogSnapshot {
        snapshot(&self.startup_warnings)
    }

    /// Writes one informational line built by the caller (the slow-query log, whose
    /// attributes are documents rather than tracing fields).
    pub fn write_event(&self, component: &str, id: i64, context: &str, message: &str, attr: Map<String, Value>) {
        self.write_at(Level::INFO, component, id, context, message, attr);
    }

    /// Writes one warning line whose attributes are a document (a document that would fail
    /// validation), kept in the document's field order as mongod writes them.
    pub fn write_warning(&self, component: &str, id: i64, context: &str, message: &str, attr: &bson::Document) {
        let attr = match serde_json::to_value(attr) {
            Ok(Value::Object(attr)) => attr,
            _ => Map::new(),
        };
        self.write_at(Level::WARN, component, id, context, message, attr);
    }

    /// Writes a line built by the caller, with the correlation IDs of the operation running
    /// on this thread, if any.
    fn write_at(
        &self,
        level: Level,
        component: &str,
        id: i64,
        context: &str,
        message: &str,
        mut attr: Map<String, Value>,
    ) {
        crate::obs::correlation::add_current(&mut attr);
        let attr = render_attr(attr);
        let line =
            format_line(&LineParts { level, component, id, context, message, attr: &attr, startup_warning: false });
        self.write(line, false);
    }

    fn write(&self, line: String, startup_warning: bool) {
        {
            let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            // A log write that fails has nowhere to be reported; the line stays in memory.
            let _ = out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
        }
        if startup_warning {
            self.startup_warnings.lock().unwrap_or_else(PoisonError::into_inner).push(line.clone());
        }
        self.global.lock().unwrap_or_else(PoisonError::into_inner).push(line);
    }
}

/// The dotted name mongod uses in messages (`default`, `storage.journal`).
fn dotted_name(component: Option<usize>) -> String {
    match component.and_then(|i| COMPONENTS.get(i).map(|c| (i, c))) {
        None => "default".to_owned(),
        Some((_, (name, None))) => (*name).to_owned(),
        Some((_, (name, Some(parent)))) => format!("{}.{name}", dotted_name(Some(*parent))),
    }
}

fn level_value(value: bson::RawBsonRef<'_>) -> Option<i32> {
    match value {
        bson::RawBsonRef::Int32(n) => Some(n),
        bson::RawBsonRef::Int64(n) => Some(i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })),
        bson::RawBsonRef::Double(n) => Some(n as i32),
        _ => None,
    }
}

/// Reads one level of a `logComponentVerbosity` document under `parent` (`None`: the root).
/// Checks a `logComponentVerbosity` document (component names, level types) without applying
/// it: what `systemLog.component` in the config file must pass.
///
/// # Errors
/// mongod's message for the first bad component or level.
pub fn check_component_verbosity(settings: &bson::Document) -> Result<(), String> {
    let raw = bson::RawDocumentBuf::try_from(settings).map_err(|e| e.to_string())?;
    collect_levels(&raw, None, &mut Vec::new())
}

fn collect_levels(
    settings: &bson::RawDocument,
    parent: Option<usize>,
    levels: &mut Vec<(Option<usize>, i32)>,
) -> Result<(), String> {
    for element in settings {
        let (key, value) = element.map_err(|e| e.to_string())?;
        let key = key.as_str();
        if key == "verbosity" {
            let level = level_value(value).ok_or_else(|| {
                format!(
                    "Expected {}.verbosity to be a number, but found {}",
                    dotted_name(parent),
                    crate::query::type_name(value.element_type())
                )
            })?;
            levels.push((parent, level));
            continue;
        }
        let child = COMPONENTS.iter().position(|(name, up)| *name == key && *up == parent);
        let Some(child) = child else {
            return Err(format!("Invalid component name {}.{key}", dotted_name(parent)));
        };
        match value {
            bson::RawBsonRef::Document(inner) => collect_levels(inner, Some(child), levels)?,
            other => match level_value(other) {
                Some(level) => levels.push((Some(child), level)),
                None => {
                    return Err(format!(
                        "Invalid type {} for component {}.{key}",
                        crate::query::type_name(other.element_type()),
                        dotted_name(parent)
                    ));
                }
            },
        }
    }
    Ok(())
}

fn snapshot(ring: &Mutex<Ring>) -> LogSnapshot {
    let ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
    LogSnapshot { total_lines_written: ring.total, lines: ring.lines.iter().cloned().collect() }
}

/// The suffix a rotated log file takes: the time, as mongod names rotated files
/// (`.2026-12-03T09-40-00`).
pub fn rotation_suffix() -> String {
    const SUFFIX: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]");
    let now = time::OffsetDateTime::now_utc();
    now.format(SUFFIX).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// `path` with the rotation suffix (and a counter when a file of that name exists already:
/// two rotations within a second must not overwrite the first).
pub fn aside_name(path: &std::path::Path) -> std::path::PathBuf {
    let stamped = format!("{}.{}", path.display(), rotation_suffix());
    let mut aside = std::path::PathBuf::from(&stamped);
    let mut counter = 1;
    while aside.exists() {
        aside = std::path::PathBuf::from(format!("{stamped}.{counter}"));
        counter += 1;
    }
    aside
}

/// Opens a log file for appending, one flush per line.
pub fn open_log_file(path: &std::path::Path) -> std::io::Result<Box<dyn Write + Send>> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Box::new(std::io::LineWriter::new(file)))
}

/// Opens the log destination of `config` and installs the global subscriber.
///
/// Without `logAppend`, an existing log file is renamed aside with a timestamp suffix first,
/// as mongod does.
///
/// # Errors
/// The I/O error when the log file cannot be opened or renamed.
pub fn install(config: &LogConfig) -> std::io::Result<Arc<LogSink>> {
    let out: Box<dyn Write + Send> = match &config.path {
        None => Box::new(std::io::stdout()),
        Some(path) => {
            if !config.append && path.exists() {
                std::fs::rename(path, aside_name(path))?;
            }
            open_log_file(path)?
        }
    };
    let sink = LogSink::new(out);
    if let Ok(components) = bson::RawDocumentBuf::try_from(&config.components) {
        // Checked when the configuration was read.
        let _ = sink.set_component_verbosity(&components);
    }
    *sink.path.lock().unwrap_or_else(PoisonError::into_inner) = config.path.clone();
    let subscriber = tracing_subscriber::registry().with(MongoLogLayer::new(sink.clone(), config.verbosity));
    // Fails only if a subscriber is already installed (a second server in one process): the
    // first one keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber);
    if log::set_logger(&EngineLogBridge).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    Ok(sink)
}

/// Carries the warnings and errors the storage engine's crates write through `log` into the
/// server's log, under STORAGE: a background flush or compaction that fails (a full disk, an
/// I/O error) is reported nowhere else.
struct EngineLogBridge;

impl log::Log for EngineLogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        let source = record.target();
        match record.level() {
            log::Level::Error => {
                crate::storage::note_engine_failure(record.args().to_string());
                tracing::error!(target: "STORAGE", id = 7_000_414, source, "Storage engine: {}", record.args());
            }
            log::Level::Warn => {
                tracing::warn!(target: "STORAGE", id = 7_000_415, source, "Storage engine: {}", record.args());
            }
            _ => {}
        }
    }

    fn flush(&self) {}
}

/// The tracing layer that formats events as mongod log lines.
pub struct MongoLogLayer {
    sink: Arc<LogSink>,
}

impl MongoLogLayer {
    /// A layer writing to `sink`, starting at mongod verbosity `verbosity` (0 =
    /// informational); `setParameter` changes the sink's verbosity later.
    pub fn new(sink: Arc<LogSink>, verbosity: u8) -> Self {
        sink.set_verbosity(i32::from(verbosity));
        Self { sink }
    }

    /// Whether an event at `level` is logged: `component` is its mongod component, `None`
    /// for a dependency's event (rustls, fjall, ...), which follows the default verbosity.
    fn enabled_for(&self, level: Level, component: Option<&str>) -> bool {
        let max = match (component, self.sink.verbosity()) {
            // Dependencies speak only at warnings unless asked for detail.
            (None, ..=2) => Level::WARN,
            (None, _) => Level::DEBUG,
            (Some(component), _) => match self.sink.effective_verbosity(component) {
                ..=0 => Level::INFO,
                1 => Level::DEBUG,
                _ => Level::TRACE,
            },
        };
        level <= max
    }
}

/// The span extension holding a `ctx` name such as `conn12`.
struct LogContext(String);

impl<S> Layer<S> for MongoLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(name), Some(span)) = (fields.ctx, ctx.span(id)) {
            span.extensions_mut().insert(LogContext(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        let component = component_of(target);
        let ours = component.or_else(|| target.starts_with("monarch").then_some("-"));
        if !self.enabled_for(*meta.level(), ours) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let context = fields
            .ctx
            .take()
            .or_else(|| {
                ctx.event_scope(event)?.find_map(|span| span.extensions().get::<LogContext>().map(|c| c.0.clone()))
            })
            .or_else(crate::obs::correlation::current_ctx);
        crate::obs::correlation::add_current(&mut fields.attr);
        let startup_warning = *meta.level() == Level::WARN && self.sink.starting.load(Ordering::Acquire);
        let line = format_line(&LineParts {
            level: *meta.level(),
            component: component.unwrap_or("-"),
            id: fields.id.unwrap_or(0),
            context: context.as_deref().unwrap_or("main"),
            message: fields.message.as_deref().unwrap_or(""),
            attr: &render_attr(fields.attr),
            startup_warning,
        });
        self.sink.write(line, startup_warning);
    }
}

/// mongod's components are upper-case words; a target that is one names the component.
fn component_of(target: &str) -> Option<&str> {
    (!target.is_empty() && target.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')).then_some(target)
}

struct LineParts<'a> {
    level: Level,
    component: &'a str,
    id: i64,
    context: &'a str,
    message: &'a str,
    /// The attributes as a JSON object, or empty for none.
    attr: &'a str,
    startup_warning: bool,
}

fn format_line(parts: &LineParts<'_>) -> String {
    let severity = match parts.level {
        Level::ERROR => "E",
        Level::WARN => "W",
        Level::INFO => "I",
        Level::DEBUG => "D1",
        Level::TRACE => "D2",
    };
    let time = timestamp(time::OffsetDateTime::now_utc());
    // mongod pads the short fields with spaces between them (valid JSON) so columns line up.
    let component = Value::from(parts.component).to_string();
    let id = parts.id.to_string();
    let mut line = String::with_capacity(160);
    let _ = write!(
        line,
        r#"{{"t":{{"$date":{}}},"s":"{severity}",{:sp$}"c":{component},{:cp$}"id":{id},{:ip$}"ctx":{},"msg":{}"#,
        Value::from(time),
        "",
        "",
        "",
        Value::from(parts.context),
        Value::from(parts.message),
        sp = 3usize.saturating_sub(severity.len()),
        cp = 11usize.saturating_sub(component.len()).max(1),
        ip = 8usize.saturating_sub(id.len()),
    );
    if !parts.attr.is_empty() {
        let _ = write!(line, r#","attr":{}"#, parts.attr);
    }
    if parts.startup_warning {
        line.push_str(r#","tags":["startupWarnings"]"#);
    }
    line.push('}');
    line
}

/// Attributes as the JSON object of a line; empty when there are none.
fn render_attr(attr: Map<String, Value>) -> String {
    if attr.is_empty() { String::new() } else { Value::Object(attr).to_string() }
}

/// mongod's timestamp: UTC, milliseconds, explicit offset (`2026-11-25T18:27:03.410+00:00`).
fn timestamp(now: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00");
    now.format(FORMAT).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    id: Option<i64>,
    ctx: Option<String>,
    attr: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::String(s)) => self.message = Some(s),
            ("id", Value::Number(n)) if n.is_i64() => self.id = n.as_i64(),
            ("ctx", Value::String(s)) => self.ctx = Some(s),
            (name, value) => {
                self.attr.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_has_mongod_shape_and_reaches_ring() -> Result<(), serde_json::Error> {
        let sink = LogSink::new(Box::new(std::io::sink()));
        let subscriber = tracing_subscriber::registry().with(MongoLogLayer::new(sink.clone(), 0));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("conn", ctx = "conn7").in_scope(|| {
                tracing::info!(target: "NETWORK", id = 22943, remote = "127.0.0.1:5000", "Connection accepted");
                tracing::debug!(target: "NETWORK", id = 1, "hidden at verbosity 0");
            });
            tracing::warn!(id = 2, "a warning while starting");
        });
        sink.startup_complete();
        let global = sink.global();
        assert_eq!(global.total_lines_written, 2);
        let first: Value = serde_json::from_str(&global.lines[0])?;
        assert_eq!(first["s"], "I");
        assert_eq!(first["c"], "NETWORK");
        assert!(global.lines[0].contains(r#""c":"NETWORK",  "id":22943,   "ctx""#), "{}", global.lines[0]);
        assert_eq!(first["id"], 22943);
        assert_eq!(first["ctx"], "conn7");
        assert_eq!(first["msg"], "Connection accepted");
        assert_eq!(first["attr"]["remote"], "127.0.0.1:5000");
        assert!(first["t"]["$date"].is_string());
        let warnings = sink.startup_warnings();
        assert_eq!(warnings.lines.len(), 1);
        let warning: Value = serde_json::from_str(&warnings.lines[0])?;
        assert_eq!(warning["c"], "-");
        assert_eq!(warning["ctx"], "main");
        assert_eq!(warning["tags"][0], "startupWarnings");
        Ok(())
    }

    #[test]
    fn log_component_verbosity_applies_to_the_next_line() -> Result<(), String> {
        let sink = LogSink::new(Box::new(std::io::sink()));
        let subscriber = tracing_subscriber::registry().with(MongoLogLayer::new(sink.clone(), 0));
        tracing::subscriber::with_default(subscriber, || -> Result<(), String> {
            tracing::debug!(target: "QUERY", id = 1, "hidden");
            sink.set_component_verbosity(bson::rawdoc! { "query": { "verbosity": 1 } }.as_ref())?;
            tracing::debug!(target: "QUERY", id = 2, "shown: query is at 1");
            tracing::debug!(target: "NETWORK", id = 3, "hidden: network inherits 0");
            sink.set_component_verbosity(bson::rawdoc! { "query": -1 }.as_ref())?;
            tracing::debug!(target: "QUERY", id = 4, "hidden: query inherits 0 again");
            sink.set_verbosity(1);
            tracing::debug!(target: "NETWORK", id = 5, "shown: the default is 1");
            Ok(())
        })?;
        let ids: Vec<i64> =
            sink.global().lines.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()?["id"].as_i64()).collect();
        assert_eq!(ids, [2, 5]);
        Ok(())
    }

    #[test]
    fn log_timestamp_has_mongod_format() {
        let moment = time::macros::datetime!(2026-11-25 18:27:03.41 UTC);
        assert_eq!(timestamp(moment), "2026-11-25T18:27:03.410+00:00");
    }

    #[test]
    fn log_ring_keeps_the_newest_lines() {
        let mut ring = Ring::default();
        for i in 0..(RING_CAPACITY + 5) {
            ring.push(i.to_string());
        }
        assert_eq!(ring.lines.len(), RING_CAPACITY);
        assert_eq!(ring.total, (RING_CAPACITY + 5) as u64);
        assert_eq!(ring.lines.front().map(String::as_str), Some("5"));
    }

    #[test]
    fn log_warning_keeps_document_attributes_in_order() {
        let sink = LogSink::new(Box::new(std::io::sink()));
        let attr = bson::doc! { "namespace": "db.c", "document": { "_id": 7, "b": 1, "a": 2 }, "errInfo": { "z": 1 } };
        sink.write_warning("STORAGE", 20294, "conn3", "Document would fail validation", &attr);
        let line = sink.global().lines.pop().unwrap_or_default();
        assert!(line.contains(r#""s":"W""#), "{line}");
        assert!(
            line.ends_with(
                r#""ctx":"conn3","msg":"Document would fail validation","attr":{"namespace":"db.c","document":{"_id":7,"b":1,"a":2},"errInfo":{"z":1}}}"#
            ),
            "{line}"
        );
    }
}
