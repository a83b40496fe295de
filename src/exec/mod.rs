//! Planning and execution: the layer between the command handlers (which parse arguments and
//! build replies) and the query language and storage (which match documents and hold them).
//!
//! - [`planner`]: how a query reads its collection (collection scan, `_id` lookup, index scan
//!   with bounds), chosen by a short trial and cached per query shape;
//! - [`access`]: the access paths, reading through a storage snapshot;
//! - [`stages`]: filter, blocking sort with its memory limit, skip and limit, projection,
//!   `returnKey`, `showRecordId`;
//! - [`cursor`]: first batches and `getMore` batches, parking what remains;
//! - [`pipeline`]: the aggregation pipeline runner, applying the query language's stages to a
//!   document stream;
//! - [`explain`]: the description of a plan as `explain` shows it.
//!
//! A [`Query`] is what a handler hands over: the typed query, parsed once. [`Query::run`]
//! plans it and returns the document stream; writes find their documents through
//! [`select_for_write`].

pub mod access;
pub mod capped;
pub mod change_stream;
pub mod cursor;
pub mod explain;
pub mod insert;
pub mod near;
pub mod pipeline;
pub mod planner;
pub mod principals;
pub mod retryable;
pub mod session_records;
pub mod spill;
pub mod stages;
pub mod validate;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bson::{RawBson, RawDocument, RawDocumentBuf};

use crate::error::Result;
use crate::op::ExecStats;
use crate::query::text::TextScores;
use crate::query::{Collation, Filter, Projection, SortSpec};
use crate::state::State;
use crate::state::cursors::DocumentStream;
use crate::state::plan_cache::PlanCache;
use crate::storage::{Collection, IndexSet, ReadView, Writer};
use planner::{Plan, QueryShape};

/// What a query reads and how: the parts of a `find` (and of `count`, `distinct`, a
/// pipeline's leading `$match` and `$sort`) that shape the document stream.
pub struct Query {
    /// The compiled filter.
    pub filter: Filter,
    /// The filter as given (for the plan's bounds, the shape and `explain`).
    pub filter_doc: RawDocumentBuf,
    /// The sort, if any.
    pub sort: Option<SortSpec>,
    /// The projection as given.
    pub projection_doc: Option<RawDocumentBuf>,
    /// The compiled projection.
    pub projection: Option<Projection>,
    /// `hint`: an index name or key pattern.
    pub hint: Option<RawBson>,
    /// Documents to skip.
    pub skip: usize,
    /// The most documents to return (`None`: all).
    pub limit: Option<usize>,
    /// `allowDiskUse` (or `allowDiskUseByDefault`): a blocking sort past its memory limit
    /// spills sorted runs to disk instead of failing.
    pub allow_disk_use: bool,
    /// The collation the filter and sort use (`None`: simple).
    pub collation: Option<Arc<Collation>>,
    /// `min` and `max` key values of a hinted index scan.
    pub min_max: (Option<RawDocumentBuf>, Option<RawDocumentBuf>),
    /// `returnKey`: return the index key of each document (`{}` without an index) instead of
    /// the document.
    pub return_key: bool,
    /// `showRecordId`: add each document's `$recordId`.
    pub show_record_id: bool,
    /// The command a blocking sort runs for (its errors name it as mongod's do).
    pub sort_context: stages::SortContext,
    /// Where a `$text` search puts its scores, shared with the projection, sort and later
    /// stages that read `{$meta: "textScore"}` (`None` without `$text`).
    pub text_scores: Option<Arc<TextScores>>,
}

impl Query {
    /// A query that only filters, by `filter_doc` (or everything when `None`) under
    /// `collation`.
    ///
    /// # Errors
    /// The filter's parse errors.
    pub fn filtered(filter_doc: Option<&RawDocument>, collation: Option<Arc<Collation>>) -> Result<Self> {
        let filter_doc = filter_doc.map_or_else(RawDocumentBuf::new, ToOwned::to_owned);
        let filter = Filter::parse_query(&filter_doc)?.with_collation(collation.as_ref());
        Ok(Self {
            text_scores: filter.has_text().then(TextScores::shared),
            filter,
            filter_doc,
            sort: None,
            projection_doc: None,
            projection: None,
            hint: None,
            skip: 0,
            limit: None,
            allow_disk_use: false,
            collation,
            min_max: (None, None),
            return_key: false,
            show_record_id: false,
            sort_context: stages::SortContext::Find,
        })
    }

    /// Plans and starts the query on `collection` (`None`: it does not exist, and nothing is
    /// read), from one storage snapshot (`view`, a transaction's, or one of now), counting
    /// work into `stats`. Returns the plan (`None` without a collection) and the stream.
    ///
    /// # Errors
    /// Planning errors (a bad hint, `min`/`max`), and a blocking sort over its memory limit.
    pub fn run(
        self,
        state: &State,
        collection: Option<&Arc<Collection>>,
        stats: Arc<ExecStats>,
        view: Option<crate::storage::ReadView>,
    ) -> Result<(Option<Plan>, DocumentStream)> {
        let Some(collection) = collection else {
            return Ok((None, Box::new(std::iter::empty())));
        };
        // IMPORTANT: indexes before the snapshot, so every listed index is complete in it.
        let indexes = collection.indexes();
        let view = view.unwrap_or_else(|| state.storage.snapshot());
        let max_sort_bytes = state.params.max_blocking_sort_bytes();
        let sorting = (max_sort_bytes, state.storage.temp_dir());
        let (plan, stream) = self.run_in(&state.plans, collection, &indexes, view, stats, sorting)?;
        Ok((Some(plan), stream))
    }

    /// Plans and starts the query on `collection` over `view`, a snapshot taken after
    /// `indexes` was listed, with the plan cache `plans`, counting work into `stats`; a
    /// blocking sort keeps to `max_sort_bytes` and spills under `spill_dir`.
    ///
    /// # Errors
    /// As [`Query::run`].
    pub fn run_in(
        self,
        plans: &PlanCache,
        collection: &Arc<Collection>,
        indexes: &IndexSet,
        view: ReadView,
        stats: Arc<ExecStats>,
        (max_sort_bytes, spill_dir): (u64, &std::path::Path),
    ) -> Result<(Plan, DocumentStream)> {
        let Query {
            filter,
            filter_doc,
            sort,
            projection_doc,
            projection,
            hint,
            skip,
            limit,
            allow_disk_use,
            collation,
            min_max: (min, max),
            return_key,
            show_record_id,
            sort_context,
            text_scores,
        } = self;
        let shape = QueryShape {
            filter: &filter_doc,
            sort: sort.as_ref(),
            projection: projection_doc.as_deref(),
            hint: hint.as_ref().map(RawBson::as_raw_bson_ref),
            collation: collation.as_deref(),
            min: min.as_deref(),
            max: max.as_deref(),
            search: planner::Search::of(&filter),
        };
        // A view older than an index's build (a transaction's, a snapshot read's) plans
        // without it, and without the plan cache, whose plans may use it.
        let (visible, uncached);
        let (indexes, plans) = if indexes.iter().all(|index| index.visible_at(view.instant())) {
            (indexes, plans)
        } else {
            visible = indexes.iter().filter(|index| index.visible_at(view.instant())).cloned().collect::<IndexSet>();
            uncached = PlanCache::default();
            (&visible, &uncached)
        };
        let planning = Instant::now();
        let mut plan = planner::choose(plans, collection, indexes, &shape, &view)?;
        if let (planner::Access::Text(text), Some(scores)) = (&mut plan.access, text_scores) {
            text.scores = scores;
        }
        stats.add_plan_time(planning.elapsed());
        stats.set_plan(plan.note(&collection.ns, &shape));
        let counted = stats.clone();
        let matched: DocumentStream = Box::new(
            access::scan(&plan, view, collection, filter, stats)?
                .inspect(move |_| _ = counted.matched.fetch_add(1, Ordering::Relaxed)),
        );
        let ordered = match sort {
            Some(sort) if !plan.sort_provided => {
                let spill_dir = spill_dir.to_owned();
                stages::deferred(move || {
                    stages::sort(matched, &sort, max_sort_bytes, allow_disk_use, sort_context, &spill_dir)
                })
            }
            _ => matched,
        };
        let windowed: DocumentStream = Box::new(ordered.skip(skip).take(limit.unwrap_or(usize::MAX)));
        // With `returnKey`, mongod returns the key alone, `showRecordId` or not.
        let shaped = if return_key {
            stages::return_key(windowed, plan.clone())
        } else if show_record_id {
            stages::with_record_id(windowed, projection)
        } else {
            stages::project(windowed, projection)
        };
        Ok((plan, shaped))
    }
}

impl Query {
    /// The documents of a tailable cursor on `collection` (capped): its insertion order from
    /// the oldest document, through the filter, `skip` and the projection, then whatever is
    /// inserted later (the stream ends for now at the collection's end; the cursor applies
    /// `limit`). Counts documents examined into `stats`; `batches` is the cursor's batch
    /// count ([`crate::state::cursors::Tailing::batches`]).
    pub fn tail(
        self,
        state: &State,
        collection: &Arc<Collection>,
        stats: Arc<ExecStats>,
        batches: Arc<std::sync::atomic::AtomicU64>,
    ) -> DocumentStream {
        let from = oplog_start(&self.filter_doc);
        let Query { filter, skip, projection, .. } = self;
        let mut skipped = 0;
        let keep = move |doc: &RawDocument| {
            stats.doc()?;
            if !filter.try_matches(doc)? {
                return Ok(false);
            }
            if skipped < skip {
                skipped += 1;
                return Ok(false);
            }
            Ok(true)
        };
        stages::project(Box::new(state.storage.tail(collection.clone(), Box::new(keep), batches, from)), projection)
    }
}

/// The time an oplog reader's filter starts from: a top-level (or top-level `$and`) `ts`
/// condition `$gt` (the bool is false) or `$gte` (true) a timestamp, as oplog tailers
/// (Meteor's among them) ask for.
fn oplog_start(filter: &RawDocument) -> Option<(bson::Timestamp, bool)> {
    let mut start = None;
    for (field, value) in filter.iter().flatten() {
        let found = match (field.as_str(), value) {
            ("ts", bson::RawBsonRef::Document(condition)) => condition.iter().flatten().find_map(|(op, bound)| {
                let ts = bound.as_timestamp()?;
                match op.as_str() {
                    "$gt" => Some((ts, false)),
                    "$gte" => Some((ts, true)),
                    _ => None,
                }
            }),
            ("$and", bson::RawBsonRef::Array(clauses)) => {
                clauses.into_iter().flatten().filter_map(|clause| oplog_start(clause.as_document()?)).next()
            }
            _ => None,
        };
        start = start.or(found);
    }
    start
}

/// What a write statement selects and how: its filter as given and compiled, its hint and
/// collation, and how many documents it takes.
pub struct WriteSelection<'a> {
    /// The statement's query.
    pub query: &'a RawDocument,
    /// The compiled query.
    pub filter: &'a Filter,
    /// The statement's `hint`.
    pub hint: Option<bson::RawBsonRef<'a>>,
    /// The statement's collation.
    pub collation: Option<&'a Collation>,
    /// Every match (`true`), or the first only.
    pub multi: bool,
}

/// The documents a write statement selects, read under `writer`'s lock through the planner
/// (an `_id` lookup, an index scan or a collection scan), counting into `stats`.
///
/// # Errors
/// Planning and storage errors; a failing `$expr` fails the statement, as in mongod.
pub fn select_for_write(
    plans: &PlanCache,
    writer: &Writer<'_>,
    selection: &WriteSelection<'_>,
    stats: &Arc<ExecStats>,
) -> Result<Vec<RawDocumentBuf>> {
    let view = writer.snapshot();
    let shape = QueryShape {
        filter: selection.query,
        sort: None,
        projection: None,
        hint: selection.hint,
        min: None,
        max: None,
        collation: selection.collation,
        search: planner::Search::of(selection.filter),
    };
    let planning = Instant::now();
    let plan = planner::choose(plans, writer.collection(), writer.indexes(), &shape, &view)?;
    stats.add_plan_time(planning.elapsed());
    stats.set_plan(plan.note(&writer.collection().ns, &shape));
    let stream = access::scan(&plan, view, writer.collection(), selection.filter.clone(), stats.clone())?;
    stream.take(if selection.multi { usize::MAX } else { 1 }).collect()
}
