//! The stages that read other collections: `$lookup` (a join: each input document gets the
//! matching documents of another collection, optionally through a sub-pipeline) and
//! `$unionWith` (another collection's documents after the input's). Each reads the other
//! collection through the planner, so an index on the joined field serves the join.

use std::sync::Arc;

use bson::{Bson, RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf, rawdoc};

use super::{Context, PipelineEnv, StageArgs, raw, run_in, set_path};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::Query;
use crate::query::expr::LetBindings;
use crate::query::path::{FieldPath, walk_sort_keys};
use crate::query::{limits, render};
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, IndexSet, Namespace, ReadView};

/// Another collection (or view) as a join reads it: its indexes, listed before the snapshot,
/// and for a view, the view's stages over its backing collection.
pub(super) struct Foreign {
    /// `None`: a view on a collection that does not exist.
    collection: Option<Arc<Collection>>,
    indexes: IndexSet,
    view: ReadView,
    /// The resolved stages of a view (empty for a collection).
    view_stages: Vec<RawDocumentBuf>,
}

impl Foreign {
    /// `coll` in the pipeline's database, `None` when neither a collection nor a view has
    /// that name.
    ///
    /// # Errors
    /// View resolution errors (165).
    pub(super) fn open(env: &PipelineEnv, coll: &str) -> Result<Option<Self>> {
        let ns = Namespace { db: env.db.clone(), coll: coll.to_owned() };
        let (collection, view_stages) = match env.collection(&ns) {
            Some(collection) => (Some(collection), Vec::new()),
            None => match crate::exec::views::resolve(&env.storage, &ns)? {
                Some(resolved) => (env.storage.collection(&resolved.backing), resolved.pipeline),
                None => return Ok(None),
            },
        };
        // IMPORTANT: indexes before the snapshot, so every listed index is complete in it.
        let indexes = collection.as_ref().map(|c| c.indexes()).unwrap_or_default();
        let view = env.view.clone().unwrap_or_else(|| env.storage.snapshot());
        Ok(Some(Self { collection, indexes, view, view_stages }))
    }

    /// The documents matching `filter`: through the planner on a collection; after the view's
    /// stages on a view.
    pub(super) fn read(&self, filter: &RawDocument, env: &Arc<PipelineEnv>) -> Result<DocumentStream> {
        let Some(collection) = &self.collection else { return Ok(Box::new(std::iter::empty())) };
        let direct = if self.view_stages.is_empty() { filter } else { &RawDocumentBuf::new() };
        let mut query = Query::filtered(Some(direct), env.collation.clone())?;
        query.sort_context = crate::exec::stages::SortContext::Aggregate;
        let (_, stream) = query.run_in(
            &env.plans,
            collection,
            &self.indexes,
            self.view.clone(),
            env.stats.clone(),
            (env.max_memory_bytes, env.storage.temp_dir()),
        )?;
        if self.view_stages.is_empty() {
            return Ok(stream);
        }
        let matched = rawdoc! { "$match": filter.to_owned() };
        let stages: Vec<RawBsonRef<'_>> =
            self.view_stages.iter().chain(std::iter::once(&matched)).map(|s| RawBsonRef::Document(s)).collect();
        run_in(stream, &stages, env, Context::Top)
    }
}

/// A parsed `$lookup`.
struct Lookup {
    from: Option<String>,
    /// `localField` and `foreignField`.
    equality: Option<(FieldPath, String)>,
    lets: LetBindings,
    pipeline: Option<RawArrayBuf>,
    into: Vec<String>,
}

fn arg_error(message: String) -> Error {
    Error::new(ErrorCode::FailedToParse, message)
}

fn type_name(value: RawBsonRef<'_>) -> &'static str {
    render::type_name(value.element_type())
}

impl Lookup {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(arg_error(format!(
                "the $lookup stage specification must be an object, but found {}",
                type_name(spec)
            )));
        };
        let (mut from, mut local, mut foreign, mut into, mut lets, mut pipeline) = (None, None, None, None, None, None);
        for element in spec {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let string = || match value {
                RawBsonRef::String(s) => Ok(s.to_owned()),
                other => Err(arg_error(format!(
                    "$lookup argument '{}' must be a string, found {}: {}",
                    render::element(key.as_str(), other),
                    render::element("", other).trim_start_matches(": "),
                    type_name(other)
                ))),
            };
            match key.as_str() {
                "from" => match value {
                    RawBsonRef::String(s) => from = Some(s.to_owned()),
                    RawBsonRef::Document(d) => {
                        let (db, coll) = (d.get_str("db").unwrap_or_default(), d.get_str("coll").unwrap_or_default());
                        return Err(arg_error(format!(
                            "$lookup with syntax {{from: {{db:<>, coll:<>}},..}} is not supported for db: {db} and coll: {coll}"
                        )));
                    }
                    other => {
                        return Err(arg_error(format!(
                            "$lookup 'from' field must be a string, but found {}",
                            type_name(other)
                        )));
                    }
                },
                "localField" => local = Some(string()?),
                "foreignField" => foreign = Some(string()?),
                "as" => into = Some(string()?),
                "let" => match value {
                    RawBsonRef::Document(d) => lets = Some(LetBindings::parse(d)?),
                    other => {
                        return Err(arg_error(format!(
                            "$lookup argument '{}' must be an object, is type {}",
                            render::element("let", other),
                            type_name(other)
                        )));
                    }
                },
                "pipeline" => match value {
                    RawBsonRef::Array(a) => pipeline = Some(a.to_owned()),
                    other => {
                        return Err(arg_error(format!(
                            "$lookup argument '{}' must be an array, is type {}",
                            render::element("pipeline", other),
                            type_name(other)
                        )));
                    }
                },
                other => return Err(arg_error(format!("unknown argument to $lookup: {other}"))),
            }
        }
        let into = into.ok_or_else(|| arg_error("must specify 'as' field for a $lookup".to_owned()))?;
        let equality = match (local, foreign) {
            (Some(local), Some(foreign)) => {
                crate::query::path::checked_parts(&local)?;
                crate::query::path::checked_parts(&foreign)?;
                Some((FieldPath::new(&local), foreign))
            }
            (None, None) if pipeline.is_some() => None,
            (None, None) => {
                return Err(arg_error(
                    "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified"
                        .to_owned(),
                ));
            }
            _ => {
                return Err(arg_error(
                    "$lookup requires both or neither of 'localField' and 'foreignField' to be specified".to_owned(),
                ));
            }
        };
        if lets.is_some() && pipeline.is_none() {
            return Err(arg_error("$lookup with a 'let' argument must also specify 'pipeline'".to_owned()));
        }
        if from.is_none() && !starts_with_documents(pipeline.as_deref()) {
            return Err(arg_error(
                "$lookup stage without explicit collection must have a pipeline with $documents as first stage"
                    .to_owned(),
            ));
        }
        let into = crate::query::path::checked_parts(&into)?.into_iter().map(str::to_owned).collect();
        Ok(Self { from, equality, lets: lets.unwrap_or_default(), pipeline, into })
    }

    /// The documents `local` joins with.
    fn matches(
        &self,
        local: &RawDocument,
        foreign: Option<&Foreign>,
        env: &Arc<PipelineEnv>,
    ) -> Result<Vec<RawDocumentBuf>> {
        let source: DocumentStream = match (foreign, &self.equality) {
            (None, _) => Box::new(std::iter::empty()),
            (Some(foreign), Some((local_field, foreign_field))) => {
                foreign.read(&equality_filter(local, local_field, foreign_field)?, env)?
            }
            (Some(foreign), None) => foreign.read(&RawDocumentBuf::new(), env)?,
        };
        let Some(pipeline) = &self.pipeline else { return source.collect() };
        let sub_env = Arc::new(env.with_vars(self.lets.bind(local, &env.vars)?));
        let stages: Vec<RawBsonRef<'_>> = pipeline
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        run_in(source, &stages, &sub_env, Context::Lookup)?.collect()
    }
}

fn starts_with_documents(pipeline: Option<&bson::RawArray>) -> bool {
    let first = pipeline.and_then(|p| p.into_iter().next()).and_then(std::result::Result::ok);
    matches!(first, Some(RawBsonRef::Document(d)) if d.get("$documents").ok().flatten().is_some())
}

/// `{foreignField: {$in: [...]}}` with every value `local_field` has in `local` (each element
/// of an array; null when it is missing, which matches null and missing foreign fields).
fn equality_filter(local: &RawDocument, local_field: &FieldPath, foreign_field: &str) -> Result<RawDocumentBuf> {
    let mut values = RawArrayBuf::new();
    walk_sort_keys(local, local_field, &mut |v| {
        // An empty array (seen as undefined) joins nothing.
        if !matches!(v, RawBsonRef::Undefined) {
            values.push(bson::RawBson::from(v));
        }
    });
    let mut filter = RawDocumentBuf::new();
    let field =
        <&bson::raw::CStr>::try_from(foreign_field).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    filter.append(field, rawdoc! { "$in": values });
    Ok(filter)
}

/// `$lookup`.
pub(super) fn lookup(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let lookup = Lookup::parse(args.spec)?;
    if let Some(pipeline) = &lookup.pipeline {
        // The sub-pipeline's positions are checked once, before anything runs.
        let stages: Vec<RawBsonRef<'_>> = pipeline.into_iter().filter_map(std::result::Result::ok).collect();
        super::check_positions(&stages)?;
    }
    let env = args.env.clone();
    let foreign = match lookup.from.as_deref() {
        Some(coll) => Foreign::open(&env, coll)?,
        None => None,
    };
    Ok(Box::new(stream.map(move |document| {
        let document = document?;
        let joined = lookup.matches(&document, foreign.as_ref(), &env)?;
        let mut out = limits::to_document(&document)?;
        let joined = joined
            .iter()
            .map(|d| limits::to_document(d).map(Bson::Document))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        set_path(&mut out, &lookup.into, Bson::Array(joined));
        raw(&out)
    })))
}

/// `$unionWith: coll` or `{coll, pipeline}`: the input, then the other collection's documents
/// through its pipeline.
pub(super) fn union_with(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (coll, pipeline) = match args.spec {
        RawBsonRef::String(coll) => (Some(coll.to_owned()), None),
        RawBsonRef::Document(spec) => {
            let (mut coll, mut pipeline) = (None, None);
            for element in spec {
                let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
                match (key.as_str(), value) {
                    ("coll", RawBsonRef::String(c)) => coll = Some(c.to_owned()),
                    ("pipeline", RawBsonRef::Array(p)) => pipeline = Some(p.to_owned()),
                    ("coll" | "pipeline", other) => {
                        return Err(Error::new(
                            ErrorCode::TypeMismatch,
                            format!(
                                "BSON field '$unionWith.{}' is the wrong type '{}'",
                                key.as_str(),
                                type_name(other)
                            ),
                        ));
                    }
                    (other, _) => {
                        return Err(super::unknown_field(&format!("$unionWith.{other}")));
                    }
                }
            }
            if coll.is_none() && !starts_with_documents(pipeline.as_deref()) {
                return Err(Error::new(
                    ErrorCode::FailedToParse,
                    "$unionWith stage without explicit collection must have a pipeline with $documents as first stage",
                ));
            }
            (coll, pipeline)
        }
        other => {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                format!(
                    "the $unionWith stage specification must be an object or string, but found {}",
                    type_name(other)
                ),
            ));
        }
    };
    let env = args.env.clone();
    let foreign = match coll.as_deref() {
        Some(coll) => Foreign::open(&env, coll)?,
        None => None,
    };
    let source = match foreign {
        Some(foreign) => foreign.read(&RawDocumentBuf::new(), &env)?,
        None => Box::new(std::iter::empty()),
    };
    let other = match &pipeline {
        Some(pipeline) => {
            let stages: Vec<RawBsonRef<'_>> = pipeline
                .into_iter()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            super::check_positions(&stages)?;
            run_in(source, &stages, &env, Context::Top)?
        }
        None => source,
    };
    Ok(Box::new(stream.chain(other)))
}
