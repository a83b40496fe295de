//! Views: read-only collections defined by a pipeline over another collection (or view),
//! stored as mongod stores them, one document per view in `<db>.system.views`:
//! `{_id: "<db>.<view>", viewOn: "<coll>", pipeline: [...], collation?: {...}}`.
//!
//! A read of a view runs its resolved pipeline (every view's stages down to the backing
//! collection, innermost first) followed by the read's own stages.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};

use crate::error::{Error, ErrorCode, Result};
use crate::storage::{Collection, Namespace, Storage};

/// The collection holding a database's view definitions.
pub const VIEWS_COLLECTION: &str = "system.views";

/// mongod's limit on views defined on views.
pub const MAX_VIEW_DEPTH: usize = 20;

/// One view's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDefinition {
    /// The view's namespace.
    pub ns: Namespace,
    /// The collection or view it reads, in the same database.
    pub view_on: String,
    /// Its stages.
    pub pipeline: Vec<RawDocumentBuf>,
    /// Its default collation, as stored (`None`: simple).
    pub collation: Option<Document>,
}

impl ViewDefinition {
    fn from_document(db: &str, stored: &Document) -> Option<Self> {
        let ns = Namespace::parse(stored.get_str("_id").ok()?).ok()?;
        if ns.db != db {
            return None;
        }
        let view_on = stored.get_str("viewOn").ok()?.to_owned();
        let pipeline = stored
            .get_array("pipeline")
            .ok()?
            .iter()
            .filter_map(|stage| stage.as_document().and_then(|d| RawDocumentBuf::try_from(d).ok()))
            .collect();
        let collation = stored.get_document("collation").ok().cloned();
        Some(Self { ns, view_on, pipeline, collation })
    }

    fn to_document(&self) -> Result<Document> {
        let mut pipeline = Vec::with_capacity(self.pipeline.len());
        for stage in &self.pipeline {
            pipeline.push(Bson::Document(Document::try_from(stage.as_ref()).map_err(invalid)?));
        }
        let mut stored = doc! { "_id": self.ns.full(), "viewOn": &self.view_on, "pipeline": pipeline };
        if let Some(collation) = &self.collation {
            stored.insert("collation", collation.clone());
        }
        Ok(stored)
    }

    /// The options `listCollections` shows.
    pub fn options(&self) -> Result<Document> {
        let mut options = self.to_document()?;
        options.remove("_id");
        Ok(options)
    }
}

/// A view resolved down to the collection it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedView {
    /// The collection the chain ends at.
    pub backing: Namespace,
    /// Every view's stages, innermost first.
    pub pipeline: Vec<RawDocumentBuf>,
    /// The view's default collation (all views of a chain share it).
    pub collation: Option<Document>,
}

fn invalid(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidBSON, error.to_string())
}

fn views_ns(db: &str) -> Namespace {
    Namespace { db: db.to_owned(), coll: VIEWS_COLLECTION.to_owned() }
}

/// The definition of the view at `ns`, if there is one.
///
/// # Errors
/// Storage errors.
pub fn definition(storage: &Storage, ns: &Namespace) -> Result<Option<ViewDefinition>> {
    // Cheap for the common case: a database without views has no system.views.
    let Some(views) = storage.collection(&views_ns(&ns.db)) else { return Ok(None) };
    let full = ns.full();
    let stored = storage.snapshot().get(&views, RawBsonRef::String(&full))?;
    Ok(stored
        .and_then(|raw| Document::try_from(raw.as_ref()).ok())
        .and_then(|d| ViewDefinition::from_document(&ns.db, &d)))
}

/// Every view of `db`, by name.
///
/// # Errors
/// Storage errors.
pub fn list(storage: &Storage, db: &str) -> Result<Vec<ViewDefinition>> {
    let Some(views) = storage.collection(&views_ns(db)) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for stored in storage.snapshot().scan(&views, crate::storage::Direction::Forward) {
        if let Some(view) =
            Document::try_from(stored?.as_ref()).ok().and_then(|d| ViewDefinition::from_document(db, &d))
        {
            out.push(view);
        }
    }
    out.sort_by(|a, b| a.ns.coll.cmp(&b.ns.coll));
    Ok(out)
}

/// The view at `ns` resolved to its backing collection, `None` when `ns` is not a view.
///
/// # Errors
/// 165 ViewDepthLimitExceeded for a chain deeper than [`MAX_VIEW_DEPTH`] (or a cycle, which
/// creation refuses but a hand-edited `system.views` could hold); storage errors.
pub fn resolve(storage: &Storage, ns: &Namespace) -> Result<Option<ResolvedView>> {
    let Some(view) = definition(storage, ns)? else { return Ok(None) };
    let collation = view.collation.clone();
    let mut chain = vec![view];
    while let Some(last) = chain.last() {
        let next = Namespace { db: ns.db.clone(), coll: last.view_on.clone() };
        match definition(storage, &next)? {
            Some(inner) => {
                if chain.len() >= MAX_VIEW_DEPTH {
                    return Err(Error::new(
                        ErrorCode::ViewDepthLimitExceeded,
                        format!("View depth too deep or view cycle detected; maximum depth is {MAX_VIEW_DEPTH}"),
                    ));
                }
                chain.push(inner);
            }
            None => {
                let pipeline = chain.iter().rev().flat_map(|v| v.pipeline.iter().cloned()).collect();
                return Ok(Some(ResolvedView { backing: next, pipeline, collation }));
            }
        }
    }
    Ok(None)
}

/// Checks a view definition as mongod does before storing it: no writing or collectionless
/// stage, no cycle, no chain deeper than [`MAX_VIEW_DEPTH`], one collation along the chain.
fn check(storage: &Storage, view: &ViewDefinition) -> Result<()> {
    for (i, stage) in view.pipeline.iter().enumerate() {
        let name = stage
            .iter()
            .next()
            .and_then(std::result::Result::ok)
            .map(|(k, _)| k.as_str().to_owned())
            .unwrap_or_default();
        match name.as_str() {
            "$out" | "$merge" => {
                return Err(Error::new(
                    ErrorCode::OptionNotSupportedOnView,
                    format!(
                        "The aggregation stage {name} in location {i} of the pipeline cannot be used in the view \
                         definition of {} because it writes to disk",
                        view.ns
                    ),
                ));
            }
            "$changeStream" => {
                return Err(Error::new(
                    ErrorCode::OptionNotSupportedOnView,
                    "$changeStream cannot be used in a view definition",
                ));
            }
            "$documents" | "$currentOp" | "$listLocalSessions" => {
                return Err(Error::new(
                    ErrorCode::InvalidNamespace,
                    format!("'{name}' cannot be used in a view definition"),
                ));
            }
            _ => {}
        }
    }
    let mut seen = vec![view.ns.coll.clone()];
    let mut next = view.view_on.clone();
    loop {
        let ns = Namespace { db: view.ns.db.clone(), coll: next.clone() };
        if seen.contains(&next) {
            seen.push(next);
            let path: Vec<String> = seen.iter().map(|c| format!("{}.{c}", view.ns.db)).collect();
            return Err(Error::new(
                ErrorCode::GraphContainsCycle,
                format!("View cycle detected: {}", path.join(" => ")),
            ));
        }
        seen.push(next.clone());
        let Some(inner) = definition(storage, &ns)? else { break };
        if inner.collation != view.collation {
            return Err(Error::new(
                ErrorCode::OptionNotSupportedOnView,
                format!("View {} has a collation that does not match the collation of view {}", view.ns, ns),
            ));
        }
        if seen.len() > MAX_VIEW_DEPTH {
            return Err(Error::new(
                ErrorCode::ViewDepthLimitExceeded,
                format!("View depth limit exceeded; maximum depth is {MAX_VIEW_DEPTH}"),
            ));
        }
        next = inner.view_on;
    }
    Ok(())
}

/// The `system.views` collection of `db`, created if missing.
fn views_collection(storage: &Storage, db: &str) -> Result<Arc<Collection>> {
    storage.collection_or_create(&views_ns(db))
}

/// Stores `view`, replacing the definition of the same name when `replace`.
///
/// # Errors
/// 48 NamespaceExists when a collection or (unless `replace`) a view has the name; the
/// errors of [`check`]; storage errors.
pub fn store(storage: &Storage, view: &ViewDefinition, replace: bool) -> Result<()> {
    if storage.collection(&view.ns).is_some() || (!replace && definition(storage, &view.ns)?.is_some()) {
        return Err(Error::new(ErrorCode::NamespaceExists, format!("Namespace {} already exists", view.ns)));
    }
    check(storage, view)?;
    let collection = views_collection(storage, &view.ns.db)?;
    let definition = view.to_document()?;
    let stored = RawDocumentBuf::try_from(&definition).map_err(invalid)?;
    let mut writer = storage.writer(&collection)?;
    writer.replace(stored)?;
    // The oplog records the command, as mongod's does: `create` (or `collMod`) with the view's
    // definition.
    let mut command = doc! { if replace { "collMod" } else { "create" }: &view.ns.coll };
    command.extend(definition.into_iter().filter(|(key, _)| key != "_id"));
    writer.record_command(&command)?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    Ok(())
}

/// Removes the view at `ns`; returns whether there was one.
///
/// # Errors
/// Storage errors.
pub fn remove(storage: &Storage, ns: &Namespace) -> Result<bool> {
    if definition(storage, ns)?.is_none() {
        return Ok(false);
    }
    let collection = views_collection(storage, &ns.db)?;
    let full = ns.full();
    let mut writer = storage.writer(&collection)?;
    writer.delete(RawBsonRef::String(&full))?;
    writer.record_command(&doc! { "drop": &ns.coll })?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    Ok(true)
}

/// 166 CommandNotSupportedOnView for a command that needs a collection where `ns` is a view.
///
/// # Errors
/// That error when `ns` is a view; storage errors.
pub fn refuse_view(storage: &Storage, ns: &Namespace) -> Result<()> {
    if storage.collection(ns).is_none() && definition(storage, ns)?.is_some() {
        return Err(Error::new(
            ErrorCode::CommandNotSupportedOnView,
            format!("Namespace {ns} is a view, not a collection"),
        ));
    }
    Ok(())
}
