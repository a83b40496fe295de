//! `$facet`: several sub-pipelines over the same input, their outputs as arrays of one
//! document.

use bson::{Bson, Document, RawArrayBuf, RawBsonRef, RawDocumentBuf};

use super::{Context, StageArgs, deferred, raw, run_in};
use crate::error::{Error, ErrorCode, Result};
use crate::query::{limits, render};
use crate::state::cursors::DocumentStream;

/// mongod's `internalQueryFacetMaxOutputDocSizeBytes`: the most the output document may take.
const MAX_OUTPUT_BYTES: usize = 100 * 1024 * 1024;

/// `$facet`: blocking; reads its whole input once, then runs each sub-pipeline over it.
pub(super) fn facet(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let facets = parse(args.spec)?;
    // Every sub-pipeline is checked before anything runs, as mongod parses them all first.
    for (_, stages) in &facets {
        let stages = stage_list(stages)?;
        super::check_positions(&stages)?;
        for stage in &stages {
            let RawBsonRef::Document(stage) = stage else { continue };
            let (name, _) = super::single_field(stage)?;
            super::context::check(name, Context::Facet)?;
        }
    }
    let env = args.env.clone();
    Ok(deferred(move || {
        let input: Vec<RawDocumentBuf> = stream.collect::<Result<_>>()?;
        let mut out = Document::new();
        let mut bytes = 0usize;
        for (name, stages) in &facets {
            let copy: DocumentStream = Box::new(input.clone().into_iter().map(Ok));
            let results = run_in(copy, &stage_list(stages)?, &env, Context::Facet)?;
            let mut items = Vec::new();
            for document in results {
                let document = document?;
                bytes += document.as_bytes().len();
                if bytes > MAX_OUTPUT_BYTES {
                    return Err(Error::new(
                        ErrorCode::Location4031700,
                        format!(
                            "document constructed by $facet is {bytes} bytes, which exceeds the limit of {MAX_OUTPUT_BYTES} bytes"
                        ),
                    ));
                }
                items.push(Bson::Document(limits::to_document(&document)?));
            }
            out.insert(name.clone(), Bson::Array(items));
        }
        Ok(Box::new(std::iter::once(raw(&out))))
    }))
}

fn stage_list(stages: &RawArrayBuf) -> Result<Vec<RawBsonRef<'_>>> {
    stages
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
}

/// The facets: each output field with its sub-pipeline.
fn parse(spec: RawBsonRef<'_>) -> Result<Vec<(String, RawArrayBuf)>> {
    let not_object = || {
        Error::new(
            ErrorCode::Location40169,
            format!(
                "the $facet specification must be a non-empty object, but found: {}",
                render::element("", spec).trim_start_matches(": ")
            ),
        )
    };
    let RawBsonRef::Document(spec) = spec else { return Err(not_object()) };
    let mut facets = Vec::new();
    for element in spec {
        let (name, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        crate::query::path::check_field_name(name.as_str())?;
        let RawBsonRef::Array(stages) = value else {
            return Err(Error::new(
                ErrorCode::Location40170,
                format!(
                    "arguments to $facet must be arrays, {} is type {}",
                    name.as_str(),
                    render::type_name(value.element_type())
                ),
            ));
        };
        for stage in stages {
            let stage = stage.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            if !matches!(stage, RawBsonRef::Document(d) if !d.is_empty()) {
                return Err(Error::new(
                    ErrorCode::Location40171,
                    format!(
                        "elements of arrays in $facet spec must be non-empty objects, {} argument contained an element of \
                         type {}: {}",
                        name.as_str(),
                        render::type_name(stage.element_type()),
                        render::element("", stage).trim_start_matches(": ")
                    ),
                ));
            }
        }
        if stages.into_iter().next().is_none() {
            return Err(Error::new(ErrorCode::BadValue, "sub-pipeline in $facet stage cannot be empty"));
        }
        facets.push((name.as_str().to_owned(), stages.to_owned()));
    }
    if facets.is_empty() {
        return Err(not_object());
    }
    Ok(facets)
}
