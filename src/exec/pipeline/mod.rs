//! The aggregation pipeline runner: applies a pipeline's stages, one after the other, to a
//! document stream. What a stage does to one document is the query language's
//! ([`DocumentStage`](crate::query::DocumentStage), [`Filter`], projections, accumulators);
//! running it over a stream is here, one stage family per file, every stage registered in
//! [`registry`]. Stages that read from a source of their own (`$collStats`, `$currentOp`) are
//! built by their commands, which hand the rest here.
//!
//! Stages are lazy iterator adaptors. A blocking stage (`$sort`, `$group`, `$facet`, ...)
//! reads its whole input only when its first document is asked for, so the work happens in the
//! cursor's batches, under the operation's interrupt checks, and not while the pipeline is
//! built.

mod context;
mod densify;
mod facet;
mod graph_lookup;
mod group;
mod lookup;
mod optimize;
mod output;
mod redact;
pub mod registry;
mod sample;
#[cfg(test)]
mod stage_tests;
mod transform;
mod unpack;
mod unwind;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};

pub use group::CountOnlyGroup;
pub use optimize::optimize;

pub use context::Context;

use super::Query;
use super::stages::deferred;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::validate::Validation;
use crate::log::LogSink;
use crate::op::ExecStats;
use crate::query::expr::Variables;
use crate::query::{Collation, Filter, SortSpec};
use crate::state::cursors::DocumentStream;
use crate::state::plan_cache::PlanCache;
use crate::storage::{Collection, Storage};

/// What the stages of one pipeline share: the command's variables and collation, its memory
/// settings, and the storage that joining stages read.
pub struct PipelineEnv {
    /// The storage (`$lookup` and `$unionWith` read other collections of it).
    pub storage: Arc<Storage>,
    /// The view the joins read: a transaction's or a snapshot read's, as the pipeline's own
    /// source (`None`: each join takes a snapshot of now).
    pub view: Option<crate::storage::ReadView>,
    /// The collections the pipeline's transaction created, which only it sees.
    pub own_collections: Vec<Arc<Collection>>,
    /// The database the pipeline runs in.
    pub db: String,
    /// The command's `let` variables.
    pub vars: Variables,
    /// The collation of `$match`, `$sort`, grouping and comparisons (`None`: simple).
    pub collation: Option<Arc<Collation>>,
    /// `allowDiskUse` (or `allowDiskUseByDefault`): lifts the in-memory limits of blocking
    /// stages. `$sort`, `$group`, `$bucketAuto` and `$setWindowFields` spill to disk; the
    /// others go on in memory.
    pub allow_disk_use: bool,
    /// The memory a blocking stage (`$sort`, `$group`) may use without `allowDiskUse`.
    pub max_memory_bytes: u64,
    /// The execution's counters and interrupt: joins count the documents they read into it.
    pub stats: Arc<ExecStats>,
    /// The plans of the queries joins run, cached for the pipeline's lifetime.
    pub plans: Arc<PlanCache>,
    /// Where `$out`'s and `$merge`'s validation warnings go.
    pub log: Arc<LogSink>,
    /// `redactClientLogData`.
    pub redact_log: bool,
    /// The connection the pipeline runs for (named in validation warnings).
    pub connection_id: u64,
    /// `bypassDocumentValidation`.
    pub bypass_validation: bool,
}

impl PipelineEnv {
    /// An environment outside any request (unit tests, fuzzing): database `db`, no view,
    /// variables or collation, validation warnings discarded.
    pub fn detached(storage: Arc<Storage>, db: &str, allow_disk_use: bool, max_memory_bytes: u64) -> Self {
        Self {
            storage,
            view: None,
            own_collections: Vec::new(),
            db: db.to_owned(),
            vars: Variables::new(),
            collation: None,
            allow_disk_use,
            max_memory_bytes,
            stats: Arc::new(ExecStats::default()),
            plans: Arc::new(PlanCache::default()),
            log: LogSink::new(Box::new(std::io::sink())),
            redact_log: false,
            connection_id: 0,
            bypass_validation: false,
        }
    }

    /// The same environment with `vars` as its variables (a `$lookup` sub-pipeline's).
    fn with_vars(&self, vars: Variables) -> Self {
        Self {
            storage: self.storage.clone(),
            view: self.view.clone(),
            own_collections: self.own_collections.clone(),
            db: self.db.clone(),
            vars,
            collation: self.collation.clone(),
            allow_disk_use: self.allow_disk_use,
            max_memory_bytes: self.max_memory_bytes,
            stats: self.stats.clone(),
            plans: self.plans.clone(),
            log: self.log.clone(),
            redact_log: self.redact_log,
            connection_id: self.connection_id,
            bypass_validation: self.bypass_validation,
        }
    }

    /// The collection at `ns` as the pipeline sees it: its transaction's own, else the
    /// catalog's.
    fn collection(&self, ns: &crate::storage::Namespace) -> Option<Arc<Collection>> {
        self.own_collections.iter().find(|c| c.ns == *ns).cloned().or_else(|| self.storage.collection(ns))
    }

    /// How `$out` and `$merge` check the documents they write into `collection`.
    fn validation<'a>(&'a self, collection: &'a Collection) -> Validation<'a> {
        Validation::new(&self.log, self.redact_log, self.connection_id, collection, self.bypass_validation)
    }

    /// 292 for a blocking stage named `stage` past its memory limit, when disk use is not
    /// allowed; `bytes` is what it holds.
    fn check_memory(&self, bytes: usize, message: impl FnOnce(u64) -> String) -> Result<()> {
        let limit = self.max_memory_bytes;
        if !self.allow_disk_use && u64::try_from(bytes).unwrap_or(u64::MAX) > limit {
            return Err(Error::new(ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed, message(limit)));
        }
        Ok(())
    }
}

/// What a stage is built from: its name and argument, the pipeline's environment, and where
/// the pipeline runs.
pub(super) struct StageArgs<'a> {
    name: &'a str,
    spec: RawBsonRef<'a>,
    env: &'a Arc<PipelineEnv>,
    context: Context,
    /// The stage after this one, which a stage may fold in as mongod's optimizer does
    /// (`$sort` keeps only the top N documents before a `$limit` of N).
    next: Option<RawBsonRef<'a>>,
}

impl StageArgs<'_> {
    /// The count of a `$limit` right after this stage.
    fn following_limit(&self) -> Option<usize> {
        let Some(RawBsonRef::Document(next)) = self.next else { return None };
        let (name, spec) = single_field(next).ok()?;
        if name != "$limit" {
            return None;
        }
        crate::query::number::Number::from_raw(spec)
            .map(crate::query::number::Number::to_f64)
            .filter(|n| *n >= 1.0 && n.fract() == 0.0)
            .map(|n| if n >= usize::MAX as f64 { usize::MAX } else { n as usize })
    }
}

/// Checks stage positions before anything runs, as mongod: a stage that reads from a source
/// of its own may only come first, and one that writes only last.
///
/// # Errors
/// 40602 for such a stage after the first; 40601 for `$out`/`$merge` before the last.
pub fn check_positions(stages: &[RawBsonRef<'_>]) -> Result<()> {
    let last = stages.len().saturating_sub(1);
    for (i, stage) in stages.iter().enumerate() {
        let RawBsonRef::Document(stage) = stage else { continue };
        let Some((name, _)) = crate::query::path::fields(stage).next() else { continue };
        if i > 0 && context::FIRST_STAGE_ONLY.contains(&name) {
            return Err(Error::new(
                ErrorCode::Location40602,
                format!("{name} is only valid as the first stage in a pipeline."),
            ));
        }
        if i < last && context::LAST_STAGE_ONLY.contains(&name) {
            return Err(Error::new(
                ErrorCode::Location40601,
                format!("{name} can only be the final stage in the pipeline"),
            ));
        }
    }
    Ok(())
}

/// Runs `stages` over `stream` in `env`.
///
/// # Errors
/// 14 TypeMismatch for a stage that is not a document, and each stage's parse errors.
pub fn run(stream: DocumentStream, stages: &[RawBsonRef<'_>], env: &Arc<PipelineEnv>) -> Result<DocumentStream> {
    check_nesting(stages, 0)?;
    run_in(stream, stages, env, Context::Top)
}

/// mongod's `internalPipelineLengthLimit` for nesting: sub-pipelines (`$lookup`, `$facet`,
/// `$unionWith`) at most 20 deep.
const MAX_SUB_PIPELINE_DEPTH: usize = 20;

/// Checks that no sub-pipeline of `stages` nests deeper than [`MAX_SUB_PIPELINE_DEPTH`],
/// before anything runs, as mongod's parser does.
///
/// # Errors
/// 232 MaxSubPipelineDepthExceeded.
fn check_nesting(stages: &[RawBsonRef<'_>], depth: usize) -> Result<()> {
    let nested = |value: Option<RawBsonRef<'_>>| -> Result<()> {
        if let Some(RawBsonRef::Array(inner)) = value {
            if depth + 1 > MAX_SUB_PIPELINE_DEPTH {
                return Err(Error::new(
                    ErrorCode::MaxSubPipelineDepthExceeded,
                    format!("Maximum number of nested sub-pipelines exceeded. Limit is {MAX_SUB_PIPELINE_DEPTH}"),
                ));
            }
            let inner: Vec<RawBsonRef<'_>> = inner.into_iter().filter_map(std::result::Result::ok).collect();
            check_nesting(&inner, depth + 1)?;
        }
        Ok(())
    };
    for stage in stages {
        let RawBsonRef::Document(stage) = stage else { continue };
        let Ok((name, RawBsonRef::Document(spec))) = single_field(stage) else { continue };
        match name {
            "$lookup" | "$unionWith" => nested(spec.get("pipeline").ok().flatten())?,
            "$facet" => {
                for facet in spec.iter().filter_map(std::result::Result::ok) {
                    nested(Some(facet.1))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn run_in(
    mut stream: DocumentStream,
    stages: &[RawBsonRef<'_>],
    env: &Arc<PipelineEnv>,
    context: Context,
) -> Result<DocumentStream> {
    for (i, &stage) in stages.iter().enumerate() {
        let RawBsonRef::Document(stage) = stage else {
            return Err(Error::new(ErrorCode::TypeMismatch, "Each element of the 'pipeline' array must be an object"));
        };
        let (name, spec) = single_field(stage)?;
        let next = stages.get(i + 1).copied();
        stream = registry::apply(stream, &StageArgs { name, spec, env, context, next })?;
    }
    Ok(stream)
}

/// What one stage did, for `explain`: the documents it returned and the time spent producing
/// them, its input's included (mongod's `executionTimeMillisEstimate` is cumulative too).
#[derive(Debug, Default)]
pub struct StageCounter {
    /// Documents returned.
    pub returned: AtomicU64,
    /// Nanoseconds spent in `next()`, upstream included.
    pub nanos: AtomicU64,
}

impl StageCounter {
    /// `executionTimeMillisEstimate`.
    pub fn millis(&self) -> i64 {
        i64::try_from(self.nanos.load(Ordering::Relaxed) / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A stream that counts into `counter` what it returns and how long it took.
struct Counted {
    inner: DocumentStream,
    counter: Arc<StageCounter>,
}

impl Iterator for Counted {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        let started = Instant::now();
        let next = self.inner.next();
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counter.nanos.fetch_add(spent, Ordering::Relaxed);
        if matches!(next, Some(Ok(_))) {
            self.counter.returned.fetch_add(1, Ordering::Relaxed);
        }
        next
    }
}

/// `stream`, counted into `counter`.
pub fn counted(stream: DocumentStream, counter: &Arc<StageCounter>) -> DocumentStream {
    Box::new(Counted { inner: stream, counter: counter.clone() })
}

/// [`run`], with each stage's output counted, for `explain`.
///
/// # Errors
/// As [`run`].
pub fn run_counted(
    mut stream: DocumentStream,
    stages: &[RawBsonRef<'_>],
    env: &Arc<PipelineEnv>,
) -> Result<(DocumentStream, Vec<Arc<StageCounter>>)> {
    let mut counters = Vec::with_capacity(stages.len());
    for &stage in stages {
        stream = run_in(stream, &[stage], env, Context::Top)?;
        let counter = Arc::new(StageCounter::default());
        stream = counted(stream, &counter);
        counters.push(counter);
    }
    Ok((stream, counters))
}

/// The one field of a stage document.
///
/// # Errors
/// 40323 for a document without exactly one field.
fn single_field(stage: &RawDocument) -> Result<(&str, RawBsonRef<'_>)> {
    let mut fields = stage.iter();
    match (fields.next(), fields.next()) {
        (Some(Ok((name, spec))), None) => Ok((name.as_str(), spec)),
        _ => Err(Error::new(
            ErrorCode::Location40323,
            "A pipeline stage specification object must contain exactly one field.",
        )),
    }
}

/// 40415 for a field a stage's specification does not have, as mongod's IDL parser says it;
/// `path` is the field with its stage (`$merge.foo`).
pub(crate) fn unknown_field(path: &str) -> Error {
    Error::new(ErrorCode::Location40415, format!("BSON field '{path}' is an unknown field."))
}

/// 40414 for a required field missing from a stage's specification (`$merge.into`).
fn missing_field(path: &str) -> Error {
    Error::new(ErrorCode::Location40414, format!("BSON field '{path}' is missing but a required field"))
}

/// A count as mongod appends it (`appendNumber`): an int when it fits, else a long. Drivers
/// and shells compare these with plain numbers, so the type matters.
pub fn count_value(n: i64) -> Bson {
    i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32)
}

/// The query that a pipeline's leading `$match` and `$sort` stages describe, so the planner
/// can serve them from an index; returns it and how many stages it took.
///
/// # Errors
/// The stages' parse errors.
pub fn leading_query(
    stages: &[RawBsonRef<'_>],
    vars: Option<&Variables>,
    collation: Option<Arc<Collation>>,
) -> Result<(Query, usize)> {
    let single = |stage: Option<&RawBsonRef<'_>>, name: &str| -> Option<RawDocumentBuf> {
        let Some(RawBsonRef::Document(stage)) = stage else { return None };
        let mut fields = stage.iter();
        match (fields.next(), fields.next()) {
            (Some(Ok((key, RawBsonRef::Document(spec)))), None) if key.as_str() == name => Some(spec.to_owned()),
            _ => None,
        }
    };
    let mut query = Query::filtered(None, collation.clone())?;
    query.sort_context = super::stages::SortContext::Aggregate;
    let mut consumed = 0;
    if let Some(filter_doc) = single(stages.first(), "$match") {
        let mut filter = Filter::parse_match_stage(&filter_doc)?;
        if let Some(vars) = vars {
            filter = filter.with_variables(vars);
        }
        query.text_scores = filter.has_text().then(crate::query::text::TextScores::shared);
        query.filter = filter.with_collation(collation.as_ref());
        query.filter_doc = filter_doc;
        consumed = 1;
    }
    if let Some(sort) = single(stages.get(consumed), "$sort") {
        let sort = SortSpec::parse(&sort)?.with_collation(collation.as_ref());
        query.sort = Some(sort.with_text_scores(query.text_scores.as_ref())?);
        consumed += 1;
    }
    Ok((query, consumed))
}

/// Counts the documents of `stream`.
///
/// # Errors
/// The stream's errors.
pub fn count(stream: DocumentStream) -> Result<i64> {
    let mut n = 0i64;
    for document in stream {
        document?;
        n += 1;
    }
    Ok(n)
}

/// `document` as raw BSON, for a stream.
///
/// # Errors
/// 1 InternalError if it does not encode.
pub fn raw(document: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(document).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
}

/// Sets `path` to `value`, creating documents on the way, keeping an existing field's place.
pub(super) fn set_path(document: &mut Document, path: &[String], value: Bson) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        document.insert(first.clone(), value);
        return;
    }
    match document.get_mut(first) {
        Some(Bson::Document(inner)) => set_path(inner, rest, value),
        _ => {
            let mut inner = Document::new();
            set_path(&mut inner, rest, value);
            document.insert(first.clone(), Bson::Document(inner));
        }
    }
}
