//! Change streams (`$changeStream`): the oplog read from a resume point, each entry turned
//! into the events its scope sees ([`event`]), completed with what needs storage (the
//! document now, for `fullDocument: "updateLookup"`; pre- and post-images kept with the
//! entry), then run through the stream's own stages. The stream is a tailing cursor on the
//! oplog: at its end it waits (awaitData) for the next entry, and each batch tells where it
//! stands (`postBatchResumeToken`).

pub mod event;
mod split;
pub mod token;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, Timestamp};

use super::pipeline::{self, PipelineEnv};
use crate::error::{Error, ErrorCode, Result};
use crate::state::cursors::{DocumentStream, Tailing};
use crate::storage::{Namespace, Storage, TailIter};
pub use event::Scope;
use event::{Event, Kind};
pub use token::ResumeToken;

/// `fullDocument`: what an `update` event carries of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullDocument {
    /// Nothing (`default`).
    Default,
    /// The document as it is when the event is read (`updateLookup`).
    UpdateLookup,
    /// The post-image, or `null` without one (`whenAvailable`).
    WhenAvailable,
    /// The post-image, or error 47 (`required`).
    Required,
}

/// `fullDocumentBeforeChange`: what `update`, `replace` and `delete` events carry of the
/// document before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeChange {
    /// Nothing (`off`).
    Off,
    /// The pre-image, or `null` without one.
    WhenAvailable,
    /// The pre-image, or error 47.
    Required,
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the latest change (a new stream).
    Now,
    /// After a resume token (`resumeAfter`, or `startAfter`, which may follow an invalidate).
    After(ResumeToken),
    /// At a time, its changes included (`startAtOperationTime`).
    At(Timestamp),
}

/// A `$changeStream` stage's options.
#[derive(Debug, Clone)]
pub struct ChangeStreamSpec {
    /// `fullDocument`.
    pub full_document: FullDocument,
    /// `fullDocumentBeforeChange`.
    pub before_change: BeforeChange,
    /// `resumeAfter`, `startAfter` or `startAtOperationTime`.
    pub start: Start,
    /// `allChangesForCluster`.
    pub all_changes_for_cluster: bool,
    /// `showExpandedEvents`.
    pub show_expanded_events: bool,
}

/// The stage that splits events too large for a reply (see `split.rs`).
const SPLIT_STAGE: &str = "$changeStreamSplitLargeEvent";

/// The stages a change stream may run after `$changeStream`, as mongod allows them.
const ALLOWED_STAGES: &[&str] =
    &["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact"];

fn wrong_type(field: &str, value: RawBsonRef<'_>, expected: &str) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "BSON field '$changeStream.{field}' is the wrong type '{}', expected type '{expected}'",
            crate::query::type_name(value.element_type())
        ),
    )
}

fn enumeration<T: Copy>(field: &str, value: RawBsonRef<'_>, choices: &[(&str, T)]) -> Result<T> {
    let RawBsonRef::String(given) = value else { return Err(wrong_type(field, value, "string")) };
    choices.iter().find(|(name, _)| *name == given).map(|(_, choice)| *choice).ok_or_else(|| {
        Error::new(
            ErrorCode::BadValue,
            format!("Enumeration value '{given}' for field '$changeStream.{field}' is not a valid value."),
        )
    })
}

impl ChangeStreamSpec {
    /// Parses the `$changeStream` stage's argument as mongod's IDL does.
    ///
    /// # Errors
    /// 50808 when it is not a document; 40415 for an unknown field; 14 TypeMismatch; 2
    /// BadValue for an unknown `fullDocument`/`fullDocumentBeforeChange`; 50865 with both
    /// `resumeAfter` and `startAfter`; 40674 with a token and `startAtOperationTime`; 260
    /// for `resumeAfter` an invalidate event; token errors (40647, 260).
    pub fn parse(argument: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = argument else {
            return Err(Error::new(ErrorCode::Location50808, "$changeStream stage expects a document as argument"));
        };
        let mut parsed = Self {
            full_document: FullDocument::Default,
            before_change: BeforeChange::Off,
            start: Start::Now,
            all_changes_for_cluster: false,
            show_expanded_events: false,
        };
        let (mut resume_after, mut start_after, mut start_at) = (None, None, None);
        for field in spec {
            let (name, value) = field.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let token = |value: RawBsonRef<'_>| match value {
                RawBsonRef::Document(token) => ResumeToken::parse(token),
                other => Err(wrong_type(name.as_str(), other, "object")),
            };
            let flag = |value: RawBsonRef<'_>| value.as_bool().ok_or_else(|| wrong_type(name.as_str(), value, "bool"));
            match name.as_str() {
                "fullDocument" => {
                    parsed.full_document = enumeration(
                        "fullDocument",
                        value,
                        &[
                            ("default", FullDocument::Default),
                            ("updateLookup", FullDocument::UpdateLookup),
                            ("whenAvailable", FullDocument::WhenAvailable),
                            ("required", FullDocument::Required),
                        ],
                    )?;
                }
                "fullDocumentBeforeChange" => {
                    parsed.before_change = enumeration(
                        "fullDocumentBeforeChange",
                        value,
                        &[
                            ("off", BeforeChange::Off),
                            ("whenAvailable", BeforeChange::WhenAvailable),
                            ("required", BeforeChange::Required),
                        ],
                    )?;
                }
                "resumeAfter" => resume_after = Some(token(value)?),
                "startAfter" => start_after = Some(token(value)?),
                "startAtOperationTime" => {
                    start_at = Some(
                        value.as_timestamp().ok_or_else(|| wrong_type("startAtOperationTime", value, "timestamp"))?,
                    );
                }
                "allChangesForCluster" => parsed.all_changes_for_cluster = flag(value)?,
                "showExpandedEvents" => parsed.show_expanded_events = flag(value)?,
                other => return Err(pipeline::unknown_field(&format!("$changeStream.{other}"))),
            }
        }
        if resume_after.is_some() && start_after.is_some() {
            return Err(Error::new(
                ErrorCode::Location50865,
                "Do not specify both 'resumeAfter' and 'startAfter' in a $changeStream stage",
            ));
        }
        let token = resume_after.or(start_after);
        if start_at.is_some() && token.is_some() {
            return Err(Error::new(
                ErrorCode::Location40674,
                "Only one type of resume option is allowed, but multiple were found",
            ));
        }
        if resume_after.is_some_and(|token| token.from_invalidate) {
            return Err(Error::new(
                ErrorCode::InvalidResumeToken,
                "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification",
            ));
        }
        parsed.start = match (token, start_at) {
            (Some(token), _) => Start::After(token),
            (None, Some(at)) => Start::At(at),
            (None, None) => Start::Now,
        };
        Ok(parsed)
    }
}

/// The stages after `$changeStream`, checked: only those mongod allows there.
///
/// # Errors
/// 40324 for an unknown stage; for `$changeStreamSplitLargeEvent`, 7182800 unless its
/// argument is `{}` and 7182802 unless it is the last stage; 20 IllegalOperation naming the
/// first stage that is not allowed.
pub fn check_stages(stages: &[RawBsonRef<'_>]) -> Result<()> {
    for (position, stage) in stages.iter().enumerate() {
        let Some((name, argument)) = stage
            .as_document()
            .and_then(|s| s.into_iter().next()?.ok())
            .map(|(name, argument)| (name.as_str(), argument))
        else {
            continue;
        };
        if !crate::query::agg::stages::STAGE_NAMES.contains(&name) {
            return Err(Error::new(ErrorCode::Location40324, format!("Unrecognized pipeline stage name: '{name}'")));
        }
        if name == SPLIT_STAGE {
            if !matches!(argument, RawBsonRef::Document(spec) if spec.is_empty()) {
                return Err(Error::new(
                    ErrorCode::Location7182800,
                    "$changeStreamSplitLargeEvent spec should be an empty object",
                ));
            }
            if position + 1 != stages.len() {
                return Err(Error::new(
                    ErrorCode::Location7182802,
                    "$changeStreamSplitLargeEvent must be the last stage in the pipeline",
                ));
            }
            continue;
        }
        if !ALLOWED_STAGES.contains(&name) {
            return Err(Error::new(
                ErrorCode::IllegalOperation,
                format!("{name} is not permitted in a $changeStream pipeline"),
            ));
        }
    }
    Ok(())
}

/// Where a stream stands for its next batch's `postBatchResumeToken`: shared by the stream,
/// which moves it as it reads, and the cursor's replies.
pub type HighWaterMark = Arc<Mutex<ResumeToken>>;

/// An open change stream: its events, its cursor's tailing state and its high-water mark.
pub struct ChangeStream {
    /// The events, after the stream's own stages.
    pub events: DocumentStream,
    /// The cursor's tailing state (awaitData).
    pub tailing: Tailing,
    /// Where the stream stands when a batch has no event.
    pub high_water_mark: HighWaterMark,
}

/// The time just before `ts`.
fn before(ts: Timestamp) -> Timestamp {
    match ts.increment {
        0 => Timestamp { time: ts.time.saturating_sub(1), increment: u32::MAX },
        n => Timestamp { time: ts.time, increment: n - 1 },
    }
}

/// Opens a change stream over `scope` with `spec`, running `stages` on each event in `env`.
///
/// # Errors
/// 286 ChangeStreamHistoryLost when the start is older than the oldest oplog entry; storage
/// errors.
pub fn open(
    storage: &Arc<Storage>,
    scope: Scope,
    spec: ChangeStreamSpec,
    mut stages: Vec<RawDocumentBuf>,
    env: Arc<PipelineEnv>,
) -> Result<ChangeStream> {
    // `$changeStreamSplitLargeEvent` (last, as checked) splits what the other stages return.
    let split = stages.last().is_some_and(|stage| stage.get(SPLIT_STAGE).ok().flatten().is_some());
    if split {
        stages.pop();
    }
    if !split && matches!(spec.start, Start::After(token) if token.fragment.is_some()) {
        return Err(Error::new(
            ErrorCode::ChangeStreamFatalError,
            "Attempted to resume from a split event fragment, but the resumed stream does not contain a $changeStreamSplitLargeEvent stage",
        ));
    }
    let oplog = storage.collection(&Namespace::oplog()).ok_or_else(|| {
        Error::new(ErrorCode::Location40573, "The $changeStream stage is only supported on replica sets")
    })?;
    // The position to resume after, and where to start reading the oplog.
    let (position, from) = match spec.start {
        Start::Now => {
            storage.catch_up_with_other_nodes()?;
            let now = storage.clock.now();
            (ResumeToken::high_water_mark(now), (now, false))
        }
        Start::After(token) => (token, (token.ts, true)),
        Start::At(ts) => (ResumeToken::high_water_mark(before(ts)), (ts, true)),
    };
    if spec.start != Start::Now
        && let Some(oldest) = storage.first_oplog_time()?
        && (oldest.time, oldest.increment) > (from.0.time, from.0.increment)
    {
        return Err(history_lost());
    }
    let tailing = Tailing { await_data: true, remaining: None, batches: Arc::default(), ended: Arc::default() };
    let tail = storage.tail(oplog, Box::new(|_| Ok(true)), tailing.batches.clone(), Some(from));
    let high_water_mark = Arc::new(Mutex::new(position));
    let events = ChangeEvents {
        storage: storage.clone(),
        tail,
        scope,
        spec,
        stages,
        split,
        env,
        position,
        high_water_mark: high_water_mark.clone(),
        pending: VecDeque::new(),
        ended: tailing.ended.clone(),
    };
    Ok(ChangeStream { events: Box::new(events), tailing, high_water_mark })
}

/// mongod's resumable change-stream errors: after one of them, a driver opens the stream again
/// from its last resume token.
const RESUMABLE: &[ErrorCode] = &[
    ErrorCode::HostUnreachable,
    ErrorCode::HostNotFound,
    ErrorCode::StaleShardVersion,
    ErrorCode::NetworkTimeout,
    ErrorCode::ShutdownInProgress,
    ErrorCode::FailedToSatisfyReadPreference,
    ErrorCode::StaleEpoch,
    ErrorCode::PrimarySteppedDown,
    ErrorCode::RetryChangeStream,
    ErrorCode::ExceededTimeLimit,
    ErrorCode::SocketException,
    ErrorCode::NotWritablePrimary,
    ErrorCode::InterruptedAtShutdown,
    ErrorCode::InterruptedDueToReplStateChange,
    ErrorCode::StaleConfig,
    ErrorCode::NotPrimaryNoSecondaryOk,
    ErrorCode::NotPrimaryOrSecondary,
];

/// An error of a change stream's `aggregate` or `getMore` with mongod's label:
/// `ResumableChangeStreamError` for an error the stream survives by resuming,
/// `NonResumableChangeStreamError` for one it cannot (its history is gone, or its pipeline
/// broke its resume tokens).
pub fn labelled(error: Error) -> Error {
    let label = match error.code() {
        code if RESUMABLE.contains(&code) => "ResumableChangeStreamError",
        ErrorCode::ChangeStreamFatalError | ErrorCode::ChangeStreamHistoryLost => "NonResumableChangeStreamError",
        _ => return error,
    };
    let mut info = error.info().cloned().unwrap_or_default();
    info.insert("errorLabels", vec![Bson::String(label.to_owned())]);
    error.with_info(info)
}

fn history_lost() -> Error {
    Error::new(
        ErrorCode::ChangeStreamHistoryLost,
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
    )
}

/// The events of an open stream, one oplog entry at a time.
struct ChangeEvents {
    storage: Arc<Storage>,
    tail: TailIter,
    scope: Scope,
    spec: ChangeStreamSpec,
    stages: Vec<RawDocumentBuf>,
    /// Whether events too large for a reply are split (`$changeStreamSplitLargeEvent`).
    split: bool,
    env: Arc<PipelineEnv>,
    /// Events at or before this were delivered (or precede the start).
    position: ResumeToken,
    high_water_mark: HighWaterMark,
    /// Events made from the last entry read, not yet returned.
    pending: VecDeque<RawDocumentBuf>,
    /// Set after an `invalidate`: the cursor closes.
    ended: Arc<AtomicBool>,
}

impl Iterator for ChangeEvents {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.ended.load(Ordering::Acquire) {
                return None;
            }
            let entry = match self.tail.next() {
                None => {
                    *self.high_water_mark.lock().unwrap_or_else(PoisonError::into_inner) = self.position;
                    return None;
                }
                // The reader fell behind the oplog's trimming.
                Some(Err(error)) if error.code() == ErrorCode::CappedPositionLost => return Some(Err(history_lost())),
                Some(Err(error)) => return Some(Err(error)),
                Some(Ok(entry)) => entry,
            };
            if let Err(error) = self.read_entry(&entry) {
                return Some(Err(error));
            }
        }
    }
}

impl ChangeEvents {
    /// Turns one oplog entry into the events to return.
    fn read_entry(&mut self, entry: &RawDocument) -> Result<()> {
        let Ok(ts) = entry.get_timestamp("ts") else { return Ok(()) };
        for event in event::events(entry, &self.scope, self.spec.show_expanded_events) {
            // Resumed from a fragment of this event: the fragments after it.
            let resumed_fragment = self.position.fragment_of(&event.token).filter(|_| self.split);
            if !self.position.precedes(&event.token) && resumed_fragment.is_none() {
                continue;
            }
            let ends_stream = event.ends_stream;
            let token = event.token;
            let document = self.complete(event)?;
            let mut last = token;
            for output in self.run_stages(document, &token)? {
                if !self.split {
                    self.pending.push_back(output);
                    continue;
                }
                let skip = resumed_fragment.map_or(0, |seen| seen + 1);
                for (fragment, piece) in split::fragments(output, token, skip)? {
                    last = fragment;
                    self.pending.push_back(piece);
                }
            }
            self.position = last;
            if ends_stream {
                self.ended.store(true, Ordering::Release);
                return Ok(());
            }
        }
        // Everything of this entry is seen: a later batch resumes after it.
        self.position = ResumeToken::high_water_mark(ts);
        Ok(())
    }

    /// Adds the looked-up document and the images the spec asks for.
    fn complete(&self, event: Event) -> Result<Document> {
        let Event { mut document, kind, ns, id, token, .. } = event;
        let wants_post = kind == Kind::Update && self.spec.full_document != FullDocument::Default;
        let wants_pre =
            matches!(kind, Kind::Update | Kind::Replace | Kind::Delete) && self.spec.before_change != BeforeChange::Off;
        if !wants_post && !wants_pre {
            return Ok(document);
        }
        // The images are read only when a field comes from them (not for updateLookup alone).
        let needs_images = wants_pre || (wants_post && self.spec.full_document != FullDocument::UpdateLookup);
        let images = if needs_images {
            self.storage.change_images(token.ts, token.op_index)?.unwrap_or_default()
        } else {
            Default::default()
        };
        let missing = |image: &str, events: &str, document: &Document| {
            let key = document.get_document("documentKey").map(ToString::to_string).unwrap_or_default();
            let (db, coll) = ns.clone().unwrap_or_default();
            Error::new(
                ErrorCode::NoMatchingDocument,
                format!(
                    "Change stream was configured to require a {image} for all {events} events, but the {image} was not found for event: {{ns: {db}.{coll}, documentKey: {key}}}"
                ),
            )
        };
        if wants_post {
            let full = match self.spec.full_document {
                FullDocument::UpdateLookup => self.lookup(ns.as_ref(), id.as_ref())?,
                _ => images.post.as_ref().and_then(|post| Document::try_from(post.as_ref()).ok()),
            };
            if full.is_none() && self.spec.full_document == FullDocument::Required {
                return Err(missing("post-image", "update", &document));
            }
            document.insert("fullDocument", full.map_or(Bson::Null, Bson::Document));
        }
        if wants_pre {
            let pre = images.pre.as_ref().and_then(|pre| Document::try_from(pre.as_ref()).ok());
            if pre.is_none() && self.spec.before_change == BeforeChange::Required {
                return Err(missing("pre-image", "update, delete and replace", &document));
            }
            document.insert("fullDocumentBeforeChange", pre.map_or(Bson::Null, Bson::Document));
        }
        Ok(document)
    }

    /// The document with `_id` `id` in `ns` now (`updateLookup`).
    fn lookup(&self, ns: Option<&(String, String)>, id: Option<&Bson>) -> Result<Option<Document>> {
        let (Some((db, coll)), Some(id)) = (ns, id) else { return Ok(None) };
        let Some(collection) = self.storage.collection(&Namespace { db: db.clone(), coll: coll.clone() }) else {
            return Ok(None);
        };
        let key = bson::RawBson::try_from(id.clone()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let found = self.storage.snapshot().get(&collection, key.as_raw_bson_ref())?;
        Ok(found.and_then(|raw| Document::try_from(raw.as_ref()).ok()))
    }

    /// Runs the stream's own stages on one event.
    ///
    /// # Errors
    /// The stages' errors; 280 when they changed the event's `_id` (its resume token).
    fn run_stages(&self, event: Document, token: &ResumeToken) -> Result<Vec<RawDocumentBuf>> {
        let raw = RawDocumentBuf::try_from(&event).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        if self.stages.is_empty() {
            return Ok(vec![raw]);
        }
        let stages: Vec<RawBsonRef<'_>> = self.stages.iter().map(|stage| RawBsonRef::Document(stage)).collect();
        let source: DocumentStream = Box::new(std::iter::once(Ok(raw)));
        let expected = token.to_document();
        let mut outputs = Vec::new();
        for output in pipeline::run(source, &stages, &self.env)? {
            let output = output?;
            let id = output.get_document("_id").ok().and_then(|id| Document::try_from(id).ok());
            if id.as_ref() != Some(&expected) {
                return Err(Error::new(
                    ErrorCode::ChangeStreamFatalError,
                    "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
                ));
            }
            outputs.push(output);
        }
        Ok(outputs)
    }
}
