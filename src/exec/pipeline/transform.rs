//! The stages that take documents one at a time (`$match`, `$project`, `$addFields` and its
//! kin, `$skip`, `$limit`), the blocking `$sort` and `$count`, and the `$documents` source.

use bson::{RawBsonRef, RawDocumentBuf, doc};

use super::{PipelineEnv, StageArgs, count, count_value, deferred, raw};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::stages::{self, keep};
use crate::query::expr::Expression;
use crate::query::{DocumentStage, Filter, Projection, SortSpec, limits, render};
use crate::state::cursors::DocumentStream;

/// `$match`.
pub(super) fn match_stage(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (spec, env) = (args.spec, args.env);
    let RawBsonRef::Document(spec) = spec else {
        return Err(Error::new(ErrorCode::Location15959, "the match filter must be an expression in an object"));
    };
    let filter = Filter::parse_match_stage(spec)?.with_variables(&env.vars).with_collation(env.collation.as_ref());
    if filter.has_text() {
        return Err(Error::new(
            ErrorCode::Location17313,
            "$match with $text is only allowed as the first pipeline stage",
        ));
    }
    Ok(Box::new(stream.filter_map(move |doc| keep(&filter, doc))))
}

/// A `$skip` or `$limit` count: mongod's `parseIntegerElementToNonNegativeLong`, an integral
/// number of any type that is not negative; else 15956 for `$skip`, 15957 for `$limit`.
fn stage_count(name: &str, spec: RawBsonRef<'_>) -> Result<usize> {
    let code = if name == "$skip" { ErrorCode::Location15956 } else { ErrorCode::Location15957 };
    let shown = crate::query::render::element(name, spec);
    let fail = |reason: &str| Error::new(code, format!("invalid argument to {name} stage: {reason}: {shown}"));
    let Some(n) = crate::query::number::Number::from_raw(spec) else { return Err(fail("Expected a number in")) };
    let x = n.to_f64();
    if x.fract() != 0.0 || !x.is_finite() {
        return Err(fail("Expected an integer"));
    }
    if x < 0.0 {
        return Err(fail("Expected a non-negative number in"));
    }
    Ok(match n {
        crate::query::number::Number::Int32(i) => usize::try_from(i).unwrap_or(0),
        crate::query::number::Number::Int64(i) => usize::try_from(i).unwrap_or(usize::MAX),
        _ => {
            if x >= usize::MAX as f64 {
                usize::MAX
            } else {
                x as usize
            }
        }
    })
}

/// `$skip`.
pub(super) fn skip(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = args.spec;
    Ok(Box::new(stream.skip(stage_count("$skip", spec)?)))
}

/// `$limit`.
pub(super) fn limit(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = args.spec;
    match stage_count("$limit", spec)? {
        0 => Err(Error::new(ErrorCode::Location15958, "the limit must be positive")),
        n => Ok(Box::new(stream.take(n))),
    }
}

/// `$sort`: blocking, with the memory limit of blocking sorts.
pub(super) fn sort(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (spec, env) = (args.spec, args.env);
    let RawBsonRef::Document(spec) = spec else {
        return Err(Error::new(ErrorCode::Location15973, "the $sort key specification must be an object"));
    };
    let sort =
        SortSpec::parse(spec)?.with_collation(env.collation.as_ref()).with_text_scores(env.vars.text_scores())?;
    if let Some(n) = args.following_limit() {
        let env = env.clone();
        return Ok(deferred(move || top(stream, &sort, n, &env)));
    }
    let (limit, allow_disk_use, storage) = (env.max_memory_bytes, env.allow_disk_use, env.storage.clone());
    Ok(deferred(move || {
        stages::sort(stream, &sort, limit, allow_disk_use, stages::SortContext::Aggregate, storage.temp_dir())
    }))
}

/// The first `n` documents of `stream` in `sort` order, holding only `n` at a time: a `$sort`
/// followed by `$limit: n`.
fn top(stream: DocumentStream, sort: &SortSpec, n: usize, env: &PipelineEnv) -> Result<DocumentStream> {
    let mut kept: Vec<RawDocumentBuf> = Vec::new();
    let mut bytes = 0usize;
    for document in stream {
        let document = document?;
        // After every equal document: the sort stays stable.
        let at = kept.partition_point(|k| sort.compare(k, &document).is_le());
        if at >= n {
            continue;
        }
        bytes += document.as_bytes().len();
        kept.insert(at, document);
        if kept.len() > n
            && let Some(dropped) = kept.pop()
        {
            bytes -= dropped.as_bytes().len();
        }
        env.check_memory(bytes, |limit| {
            format!("Sort exceeded memory limit of {limit} bytes, but did not opt in to external sorting.")
        })?;
    }
    Ok(Box::new(kept.into_iter().map(Ok)))
}

/// `$project`.
pub(super) fn project(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (spec, env) = (args.spec, args.env);
    let RawBsonRef::Document(spec) = spec else {
        return Err(Error::new(ErrorCode::Location15969, "$project specification must be an object"));
    };
    let projection = Projection::parse_aggregate(spec)?.with_variables(&env.vars);
    Ok(Box::new(stream.map(move |doc| doc.and_then(|d| Ok(projection.apply(&d)?)))))
}

/// `$addFields`, `$set`, `$unset`, `$replaceRoot` and `$replaceWith`: the stages that update
/// pipelines share.
pub(super) fn document_stage(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (spec, env) = (args.spec, args.env);
    // The table calls this for these names only; the stage's own parser names it again.
    let name = args.name;
    let vars = env.vars.clone();
    let stage = DocumentStage::parse(name, spec, &vars)?;
    Ok(Box::new(stream.map(move |doc| {
        let doc = limits::to_document(&doc?)?;
        raw(&stage.apply(doc, &vars)?)
    })))
}

/// `$count`: blocking; one document with the number of input documents, or none for none.
pub(super) fn count_stage(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = args.spec;
    let field = match spec {
        RawBsonRef::String("") => {
            return Err(Error::new(ErrorCode::Location40156, "the count field must be a non-empty string"));
        }
        RawBsonRef::String(s) if s.starts_with('$') => {
            return Err(Error::new(ErrorCode::Location40158, "the count field cannot be a $-prefixed path"));
        }
        RawBsonRef::String(s) if s.contains('.') => {
            return Err(Error::new(ErrorCode::Location40160, "the count field cannot contain '.'"));
        }
        RawBsonRef::String(s) => s.to_owned(),
        _ => return Err(Error::new(ErrorCode::Location40156, "the count field must be a non-empty string")),
    };
    Ok(deferred(move || {
        let n = count(stream)?;
        Ok(if n == 0 {
            Box::new(std::iter::empty())
        } else {
            Box::new(std::iter::once(raw(&doc! { field: count_value(n) })))
        })
    }))
}

/// `$documents`: the documents an expression gives, evaluated once, in place of any input.
pub(super) fn documents(_: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let (spec, env) = (args.spec, args.env);
    let value = Expression::parse(spec)?.evaluate(&bson::RawDocumentBuf::new(), &env.vars)?;
    let Some(bson::Bson::Array(items)) = value else {
        return Err(Error::new(ErrorCode::Location5858203, "an array is expected"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let bson::Bson::Document(d) = item else {
            return Err(Error::new(
                ErrorCode::Location40228,
                format!(
                    "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting \
                     value: '{}'.",
                    render::owned_value(&item),
                    render::type_name(item.element_type())
                ),
            ));
        };
        out.push(raw(&d));
    }
    Ok(Box::new(out.into_iter()))
}
