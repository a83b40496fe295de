//! `monarchd export` (issue 19, point 8): one collection, read through a server with `find`
//! and `getMore`, written as MongoDB Extended JSON v2 (one document per line, relaxed or
//! canonical, or one JSON array) or as CSV with a field list, with mongoexport's option names.

use std::io::Write;

use bson::{Bson, Document, doc};

use super::client::Connection;
use super::error::BackupError;
use super::progress::Progress;
use super::tabular;

/// Documents asked for per batch.
const BATCH_SIZE: i32 = 1000;

/// The output's shape (`--type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportType {
    /// Extended JSON.
    Json,
    /// Comma-separated values, with `--fields`.
    Csv,
}

/// Extended JSON's two modes (`--jsonFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonFormat {
    /// Numbers and dates as plain JSON where that loses nothing a reader needs (mongoexport's
    /// default).
    Relaxed,
    /// Every type spelled out (`{"$numberInt": "1"}`): reads back exactly.
    Canonical,
}

/// What to export, and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The database.
    pub db: String,
    /// The collection.
    pub collection: String,
    /// The output's shape.
    pub kind: ExportType,
    /// Extended JSON's mode.
    pub json_format: JsonFormat,
    /// One JSON array instead of one document per line.
    pub json_array: bool,
    /// The fields to export (required for CSV; a projection for JSON).
    pub fields: Vec<String>,
    /// The filter.
    pub query: Document,
    /// The sort.
    pub sort: Option<Document>,
    /// Documents to skip.
    pub skip: Option<i64>,
    /// At most this many documents.
    pub limit: Option<i64>,
    /// Leave out CSV's header line.
    pub no_header_line: bool,
}

/// Writes the documents `options` selects from the server on `connection` to `out`; returns
/// how many.
///
/// # Errors
/// [`BackupError::BadArgument`] for CSV without fields; the server's and the output's errors.
pub fn export(connection: &mut Connection, options: &ExportOptions, out: &mut dyn Write) -> Result<u64, BackupError> {
    let output_error = |e: std::io::Error| BackupError::io(std::path::Path::new("the output"), e);
    let csv_error = |e: csv::Error| BackupError::Internal(format!("the output: {e}"));
    let mut progress = Progress::new("exported");
    let count = match options.kind {
        ExportType::Csv => {
            if options.fields.is_empty() {
                return Err(BackupError::BadArgument("CSV mode requires a field list (--fields)".to_owned()));
            }
            let mut writer = csv::Writer::from_writer(&mut *out);
            if !options.no_header_line {
                writer.write_record(&options.fields).map_err(csv_error)?;
            }
            let count = each_document(connection, options, &mut progress, &mut |document, _| {
                let row = options.fields.iter().map(|f| tabular::format_field(document, f));
                writer.write_record(row).map_err(csv_error)
            })?;
            writer.flush().map_err(output_error)?;
            count
        }
        ExportType::Json => {
            if options.json_array {
                out.write_all(b"[").map_err(output_error)?;
            }
            let count = each_document(connection, options, &mut progress, &mut |document, index| {
                let json = match options.json_format {
                    JsonFormat::Relaxed => Bson::Document(document.clone()).into_relaxed_extjson(),
                    JsonFormat::Canonical => Bson::Document(document.clone()).into_canonical_extjson(),
                };
                if options.json_array && index > 0 {
                    out.write_all(b",").map_err(output_error)?;
                }
                serde_json::to_writer(&mut *out, &json).map_err(|e| BackupError::Internal(e.to_string()))?;
                if options.json_array { Ok(()) } else { out.write_all(b"\n").map_err(output_error) }
            })?;
            if options.json_array {
                out.write_all(b"]\n").map_err(output_error)?;
            }
            count
        }
    };
    out.flush().map_err(output_error)?;
    progress.finish(count);
    Ok(count)
}

/// Runs the `find` `options` describe and hands each document, with its index, to `each`
/// as the batches arrive; returns how many there were.
fn each_document(
    connection: &mut Connection,
    options: &ExportOptions,
    progress: &mut Progress,
    each: &mut dyn FnMut(&Document, u64) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let mut find = doc! { "find": &options.collection, "filter": options.query.clone(), "batchSize": BATCH_SIZE };
    if !options.fields.is_empty() {
        let projection: Document = options.fields.iter().map(|f| (f.clone(), Bson::Int32(1))).collect();
        find.insert("projection", projection);
    }
    if let Some(sort) = &options.sort {
        find.insert("sort", sort.clone());
    }
    if let Some(skip) = options.skip {
        find.insert("skip", skip);
    }
    if let Some(limit) = options.limit.filter(|l| *l != 0) {
        find.insert("limit", limit);
    }
    let reply = connection.command(&options.db, find)?;
    let mut count = 0u64;
    connection.drain_cursor(&options.db, reply, Some(BATCH_SIZE), &mut |document| {
        each(&document, count)?;
        count += 1;
        progress.advance(count);
        Ok(())
    })
}
