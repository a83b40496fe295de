//! `$_internalUnpackBucket`: the stage of a time-series collection's view, which turns the
//! buckets of its `system.buckets` collection back into measurements.

use bson::RawBsonRef;

use super::StageArgs;
use crate::error::{Error, ErrorCode, Result};
use crate::query::timeseries::{TimeseriesSpec, unpack};
use crate::state::cursors::DocumentStream;

/// `$_internalUnpackBucket: {timeField, metaField?, bucketMaxSpanSeconds}`.
pub(super) fn unpack_bucket(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let RawBsonRef::Document(spec) = args.spec else {
        return Err(Error::new(ErrorCode::FailedToParse, "$_internalUnpackBucket specification must be an object"));
    };
    let spec = TimeseriesSpec::from_unpack_stage(spec)?;
    Ok(Box::new(stream.flat_map(move |bucket| {
        let measurements: Vec<Result<bson::RawDocumentBuf>> = match bucket.and_then(|b| unpack(&spec, &b)) {
            Ok(measurements) => measurements.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        measurements
    })))
}
