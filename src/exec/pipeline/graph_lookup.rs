//! `$graphLookup`: a recursive search of another collection, following `connectFromField` to
//! `connectToField` breadth first from `startWith`, each document reached once.

use std::sync::Arc;

use bson::{Bson, RawArrayBuf, RawBson, RawBsonRef, RawDocumentBuf, rawdoc};

use super::lookup::Foreign;
use super::{PipelineEnv, StageArgs, raw, set_path};
use crate::error::{Error, ErrorCode, Result};
use crate::query::agg::GroupKeys;
use crate::query::expr::Expression;
use crate::query::number::Number;
use crate::query::path::{FieldPath, walk_sort_keys};
use crate::query::{Filter, limits};
use crate::state::cursors::DocumentStream;

/// A parsed `$graphLookup`.
struct GraphLookup {
    from: String,
    start_with: Expression,
    connect_from: FieldPath,
    connect_to: String,
    into: Vec<String>,
    max_depth: Option<u64>,
    depth_field: Option<Vec<String>>,
    restrict: Option<RawDocumentBuf>,
}

fn parse_error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::new(code, message)
}

impl GraphLookup {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(parse_error(
                ErrorCode::FailedToParse,
                "the $graphLookup stage specification must be an object",
            ));
        };
        let (mut from, mut start_with, mut connect_from, mut connect_to, mut into) = (None, None, None, None, None);
        let (mut max_depth, mut depth_field, mut restrict) = (None, None, None);
        for element in spec {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let string = || match value {
                RawBsonRef::String(s) => Ok(s.to_owned()),
                _ => Err(parse_error(
                    ErrorCode::Location40103,
                    format!("expected string as argument for {}", key.as_str()),
                )),
            };
            match key.as_str() {
                "from" => from = Some(string()?),
                "startWith" => start_with = Some(Expression::parse(value)?),
                "connectFromField" => connect_from = Some(FieldPath::new(&string()?)),
                "connectToField" => connect_to = Some(string()?),
                "as" => into = Some(path(&string()?)?),
                "depthField" => depth_field = Some(path(&string()?)?),
                "maxDepth" => {
                    let n = Number::from_raw(value)
                        .ok_or_else(|| parse_error(ErrorCode::Location40100, "maxDepth must be numeric"))?;
                    let d = n.to_f64();
                    if d < 0.0 || d.fract() != 0.0 {
                        return Err(parse_error(ErrorCode::Location40101, "maxDepth requires a nonnegative argument"));
                    }
                    max_depth = Some(d as u64);
                }
                "restrictSearchWithMatch" => match value {
                    RawBsonRef::Document(d) => {
                        Filter::parse(d)?;
                        restrict = Some(d.to_owned());
                    }
                    _ => {
                        return Err(parse_error(ErrorCode::Location40185, "restrictSearchWithMatch must be an object"));
                    }
                },
                other => {
                    return Err(parse_error(
                        ErrorCode::Location40104,
                        format!("Unknown argument to $graphLookup: {other}"),
                    ));
                }
            }
        }
        match (from, start_with, connect_from, connect_to, into) {
            (Some(from), Some(start_with), Some(connect_from), Some(connect_to), Some(into)) => {
                Ok(Self { from, start_with, connect_from, connect_to, into, max_depth, depth_field, restrict })
            }
            _ => Err(parse_error(
                ErrorCode::Location40105,
                "$graphLookup requires 'from', 'as', 'startWith', 'connectFromField', and 'connectToField' to be specified.",
            )),
        }
    }

    /// The documents `document` reaches, each once, with its depth when `depthField` is set.
    fn search(
        &self,
        document: &RawDocumentBuf,
        foreign: Option<&Foreign>,
        env: &Arc<PipelineEnv>,
    ) -> Result<Vec<Bson>> {
        let Some(foreign) = foreign else { return Ok(Vec::new()) };
        let mut frontier = Vec::new();
        match self.start_with.evaluate(document, &env.vars)? {
            Some(Bson::Array(items)) => frontier.extend(items),
            Some(value) => frontier.push(value),
            None => {}
        }
        let mut visited = GroupKeys::new(None);
        let mut found = Vec::new();
        let mut bytes = 0usize;
        let mut depth = 0u64;
        while !frontier.is_empty() && self.max_depth.is_none_or(|max| depth <= max) {
            let mut values = RawArrayBuf::new();
            for value in frontier.drain(..) {
                values.push(RawBson::try_from(value).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?);
            }
            let mut filter = RawDocumentBuf::new();
            let field = <&bson::raw::CStr>::try_from(self.connect_to.as_str())
                .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            filter.append(field, rawdoc! { "$in": values });
            let filter = match &self.restrict {
                Some(restrict) => rawdoc! { "$and": [filter, restrict.clone()] },
                None => filter,
            };
            for reached in foreign.read(&filter, env)? {
                let reached = reached?;
                let id = reached.get("_id").ok().flatten().map_or(RawBson::Null, RawBson::from);
                if !visited.group_of(id).1 {
                    continue;
                }
                walk_sort_keys(&reached, &self.connect_from, &mut |v| {
                    if !matches!(v, RawBsonRef::Undefined) {
                        frontier.push(Bson::try_from(v).unwrap_or(Bson::Null));
                    }
                });
                bytes += reached.as_bytes().len();
                env.check_memory(bytes, |limit| {
                    format!("$graphLookup reached the memory limit of {limit} bytes, but did not opt in to external sorting.")
                })?;
                let mut shown = limits::to_document(&reached)?;
                if let Some(depth_field) = &self.depth_field {
                    set_path(&mut shown, depth_field, Bson::Int64(i64::try_from(depth).unwrap_or(i64::MAX)));
                }
                found.push(Bson::Document(shown));
            }
            depth += 1;
        }
        Ok(found)
    }
}

fn path(dotted: &str) -> Result<Vec<String>> {
    Ok(crate::query::path::checked_parts(dotted)?.into_iter().map(str::to_owned).collect())
}

/// `$graphLookup`.
pub(super) fn graph_lookup(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let lookup = GraphLookup::parse(args.spec)?;
    let env: Arc<PipelineEnv> = args.env.clone();
    let foreign = Foreign::open(&env, &lookup.from)?;
    Ok(Box::new(stream.map(move |document| {
        let document = document?;
        let found = lookup.search(&document, foreign.as_ref(), &env)?;
        let mut out = limits::to_document(&document)?;
        set_path(&mut out, &lookup.into, Bson::Array(found));
        raw(&out)
    })))
}
