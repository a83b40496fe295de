//! `$sample`: a uniformly random selection of `size` input documents, in random order.

use bson::RawBsonRef;

use super::{StageArgs, deferred};
use crate::error::{Error, ErrorCode, Result};
use crate::query::number::Number;
use crate::query::random::random_below;
use crate::query::render;
use crate::state::cursors::DocumentStream;

fn parse(spec: RawBsonRef<'_>) -> Result<usize> {
    let RawBsonRef::Document(spec) = spec else {
        return Err(Error::new(ErrorCode::Location28745, "the $sample stage specification must be an object"));
    };
    let mut size = None;
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "size" => {
                let n = Number::from_raw(value)
                    .ok_or_else(|| Error::new(ErrorCode::Location28746, "size argument to $sample must be a number"))?;
                let n = n.to_f64();
                if n < 0.0 {
                    return Err(Error::new(ErrorCode::Location28747, "size argument to $sample must not be negative"));
                }
                // Fractions truncate, as mongod's `coerceToLong`.
                size = Some(if n >= usize::MAX as f64 { usize::MAX } else { n as usize });
            }
            other => {
                return Err(Error::new(ErrorCode::Location28748, format!("unrecognized option to $sample: {other}")));
            }
        }
    }
    size.ok_or_else(|| {
        Error::new(
            ErrorCode::Location28749,
            format!(
                "$sample stage must specify a size: {}",
                render::element("", RawBsonRef::Document(spec)).trim_start_matches(": ")
            ),
        )
    })
}

/// `$sample`: blocking (reservoir sampling, one pass, `size` documents held).
pub(super) fn sample(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let size = parse(args.spec)?;
    let env = args.env.clone();
    Ok(deferred(move || {
        let mut reservoir = Vec::new();
        let mut bytes = 0usize;
        for (seen, document) in stream.enumerate() {
            let document = document?;
            if reservoir.len() < size {
                bytes += document.as_bytes().len();
                env.check_memory(bytes, |limit| {
                    format!(
                        "$sample exceeded its memory limit of {limit} bytes, but did not opt in to external sorting."
                    )
                })?;
                reservoir.push(document);
            } else {
                let slot = random_below(seen + 1);
                if let Some(kept) = reservoir.get_mut(slot) {
                    *kept = document;
                }
            }
        }
        // Fisher-Yates: the kept documents in random order.
        for i in (1..reservoir.len()).rev() {
            reservoir.swap(i, random_below(i + 1));
        }
        Ok(Box::new(reservoir.into_iter().map(Ok)))
    }))
}
