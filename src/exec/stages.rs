//! The executor's stages above the access path: filter, blocking sort under its memory limit,
//! skip and limit, and the shaping of what is returned (projection, `returnKey`,
//! `showRecordId`). Each takes a document stream and gives one back.

use std::path::Path;

use bson::{RawDocument, RawDocumentBuf};

use super::planner::{Access, Plan};
use crate::error::{Error, ErrorCode, Result};
use crate::query::{Filter, Projection, SortSpec};
use crate::state::cursors::DocumentStream;
use crate::storage::Direction;

/// One step of filtering a document stream: a non-matching document is dropped, and a
/// failing `$expr` yields its error, which fails the query as in mongod.
pub fn keep(filter: &Filter, doc: Result<RawDocumentBuf>) -> Option<Result<RawDocumentBuf>> {
    match doc {
        Ok(doc) => match filter.try_matches(&doc) {
            Ok(true) => Some(Ok(doc)),
            Ok(false) => None,
            Err(err) => Some(Err(err.into())),
        },
        Err(err) => Some(Err(err)),
    }
}

/// Sorts `stream` stably (ties keep the order they came in, as mongod). Past `memory_limit`
/// bytes of documents the sort fails, or with `allow_disk_use` spills sorted runs under
/// `spill_dir` and merges them.
///
/// # Errors
/// 292 QueryExceededMemoryLimitNoDiskUseAllowed, and the stream's errors.
pub fn sort(
    stream: DocumentStream,
    sort: &SortSpec,
    memory_limit: u64,
    allow_disk_use: bool,
    context: SortContext,
    spill_dir: &Path,
) -> Result<DocumentStream> {
    let memory_limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    if allow_disk_use {
        return super::spill::sort(stream, sort.clone(), memory_limit, spill_dir);
    }
    let mut all = Vec::new();
    let mut bytes = 0usize;
    for doc in stream {
        let doc = doc?;
        bytes += doc.as_bytes().len();
        if bytes > memory_limit && !allow_disk_use {
            return Err(Error::new(
                ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                format!(
                    "{}Sort exceeded memory limit of {memory_limit} bytes, but did not opt in to external sorting.",
                    context.prefix()
                ),
            ));
        }
        all.push(doc);
    }
    all.sort_by(|a, b| sort.compare(a, b));
    Ok(Box::new(all.into_iter().map(Ok)))
}

/// A blocking stage's output, computed from its input when the first document is asked for.
struct Deferred {
    build: Option<Box<dyn FnOnce() -> Result<DocumentStream> + Send>>,
    output: Option<DocumentStream>,
}

impl Iterator for Deferred {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(build) = self.build.take() {
            match build() {
                Ok(output) => self.output = Some(output),
                Err(error) => return Some(Err(error)),
            }
        }
        self.output.as_mut()?.next()
    }
}

/// A stream whose documents `build` produces, run on the first `next()`: a blocking stage
/// does its work in the cursor's batches, under the operation's interrupt checks.
pub fn deferred(build: impl FnOnce() -> Result<DocumentStream> + Send + 'static) -> DocumentStream {
    Box::new(Deferred { build: Some(Box::new(build)), output: None })
}

/// The command a blocking sort runs for, which names it in its errors as mongod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortContext {
    /// `find`.
    Find,
    /// `aggregate`.
    Aggregate,
}

impl SortContext {
    /// The prefix of the sort's errors; an aggregate adds its own to every runtime error.
    fn prefix(self) -> &'static str {
        match self {
            Self::Find => "Executor error during find command :: caused by :: ",
            Self::Aggregate => "",
        }
    }
}

/// Applies `projection` to every document, if there is one.
pub fn project(stream: DocumentStream, projection: Option<Projection>) -> DocumentStream {
    match projection {
        Some(projection) => Box::new(stream.map(move |doc| doc.and_then(|d| Ok(projection.apply(&d)?)))),
        None => stream,
    }
}

/// `showRecordId`: projects each document and adds its `$recordId`, taken from the stored
/// document before the projection replaces it.
pub fn with_record_id(stream: DocumentStream, projection: Option<Projection>) -> DocumentStream {
    Box::new(stream.map(move |doc| {
        let doc = doc?;
        let record_id = doc.get("_id").ok().flatten().map(crate::storage::record_id);
        let mut out = match &projection {
            Some(projection) => projection.apply(&doc)?,
            None => doc,
        };
        if let Some(bytes) = record_id {
            out.append(
                bson::raw::cstr!("$recordId"),
                bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes },
            );
        }
        Ok(out)
    }))
}

/// `returnKey`: each document replaced by the index key `plan` read it through.
pub fn return_key(stream: DocumentStream, plan: Plan) -> DocumentStream {
    Box::new(stream.map(move |doc| doc.and_then(|d| returned_key(&plan, &d))))
}

/// The index key `plan` read `doc` through, as `find`'s `returnKey` shows it: `{}` for a
/// collection scan, `{_id: <value>}` through the `_id` index, and the index entry's values
/// otherwise (hashed fields as their hash).
fn returned_key(plan: &Plan, doc: &RawDocument) -> Result<RawDocumentBuf> {
    match &plan.access {
        Access::CollScan { .. } | Access::Text(_) | Access::Near(_) => Ok(RawDocumentBuf::new()),
        Access::IndexScan { index, bounds, reverse, limits } if !index.is_id_index() => {
            index.scanned_key(doc, bounds, limits.as_ref(), Direction::backward_if(*reverse))
        }
        Access::IdPoint(_) | Access::IndexScan { .. } => {
            let mut key = RawDocumentBuf::new();
            if let Some(id) = doc.get("_id").ok().flatten() {
                key.append(bson::raw::cstr!("_id"), id);
            }
            Ok(key)
        }
    }
}
