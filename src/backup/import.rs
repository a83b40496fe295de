//! `monarchd import` (issue 19, point 8): documents from Extended JSON (a stream of documents,
//! one per line or spread over lines, or one JSON array; canonical and relaxed both read) or
//! from CSV or TSV with a header line or a field list, written into a collection through a
//! server in batches, as `insert`, `upsert` (replace the document matching the upsert fields)
//! or `merge` (set the given fields on it), with mongoimport's option names.
//!
//! As mongoimport: a document the server refuses (a duplicate key) is counted and reported
//! and the import goes on, unless `--stopOnError`; input that does not parse stops it, naming
//! the file and the line.

use std::io::{BufRead, Read};

use bson::{Bson, Document, doc};

use super::client::Connection;
use super::error::BackupError;
use super::progress::Progress;
use super::tabular;
use super::writes::{BatchWriter, WriteTarget};
pub use super::writes::{ImportMode, ImportReport};

/// The input's shape (`--type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportType {
    /// Extended JSON.
    Json,
    /// Comma-separated values.
    Csv,
    /// Tab-separated values.
    Tsv,
}

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The database.
    pub db: String,
    /// The collection.
    pub collection: String,
    /// The input's shape.
    pub kind: ImportType,
    /// The input is one JSON array.
    pub json_array: bool,
    /// CSV/TSV: the first line names the fields.
    pub header_line: bool,
    /// CSV/TSV: the fields, when there is no header line.
    pub fields: Vec<String>,
    /// CSV/TSV: leave empty cells out instead of importing empty strings.
    pub ignore_blanks: bool,
    /// How each document is written.
    pub mode: ImportMode,
    /// The fields that find the document to replace or merge into (default `_id`).
    pub upsert_fields: Vec<String>,
    /// Drop the collection first.
    pub drop: bool,
    /// Stop at the first document the server refuses.
    pub stop_on_error: bool,
}

/// Reads documents from `input` (named `source` in messages) and writes them through
/// `connection`.
///
/// # Errors
/// [`BackupError::Corrupt`] naming `source` and the line for input that does not parse; bad
/// option combinations; the server's errors (with `--stopOnError`, its first refusal).
pub fn import(
    connection: &mut Connection,
    options: &ImportOptions,
    input: Box<dyn BufRead>,
    source: &std::path::Path,
) -> Result<ImportReport, BackupError> {
    check_options(options)?;
    if options.drop {
        match connection.command(&options.db, doc! { "drop": &options.collection }) {
            Ok(_) | Err(BackupError::Server { code: 26, .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let mut writer = BatchWriter::new(WriteTarget {
        db: options.db.clone(),
        collection: options.collection.clone(),
        mode: options.mode,
        upsert_fields: options.upsert_fields.clone(),
        ordered: options.stop_on_error,
    });
    let mut progress = Progress::new("imported");
    let mut each = |document: Document| {
        writer.push(connection, document)?;
        progress.advance(writer.report.imported + writer.report.failed);
        Ok(())
    };
    match options.kind {
        ImportType::Json if options.json_array => read_json_array(input, source, &mut each)?,
        ImportType::Json => read_json_stream(input, source, &mut each)?,
        ImportType::Csv | ImportType::Tsv => read_table(input, source, options, &mut each)?,
    }
    writer.flush(connection)?;
    progress.finish(writer.report.imported + writer.report.failed);
    Ok(writer.report)
}

fn check_options(options: &ImportOptions) -> Result<(), BackupError> {
    let bad = |message: &str| Err(BackupError::BadArgument(message.to_owned()));
    let tabular = matches!(options.kind, ImportType::Csv | ImportType::Tsv);
    if tabular && options.header_line != options.fields.is_empty() {
        return bad("CSV and TSV need either --headerline or --fields (and not both)");
    }
    if !tabular && (options.header_line || !options.fields.is_empty() || options.ignore_blanks) {
        return bad("--headerline, --fields and --ignoreBlanks apply to CSV and TSV only");
    }
    if options.json_array && options.kind != ImportType::Json {
        return bad("--jsonArray applies to JSON only");
    }
    if options.mode == ImportMode::Insert && options.upsert_fields != ["_id"] {
        return bad("--upsertFields applies to --mode upsert and merge only");
    }
    Ok(())
}

/// Extended JSON documents one after another (one per line, or pretty-printed over lines).
fn read_json_stream(
    input: Box<dyn BufRead>,
    source: &std::path::Path,
    each: &mut dyn FnMut(Document) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut stream = serde_json::Deserializer::from_reader(input).into_iter::<serde_json::Value>();
    loop {
        let line = stream.byte_offset();
        match stream.next() {
            None => return Ok(()),
            Some(Ok(value)) => each(document_of(value).map_err(|e| BackupError::corrupt(source, line as u64, e))?)?,
            Some(Err(error)) => return Err(json_error(source, &error)),
        }
    }
}

/// One JSON array of Extended JSON documents.
fn read_json_array(
    mut input: Box<dyn BufRead>,
    source: &std::path::Path,
    each: &mut dyn FnMut(Document) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut text = Vec::new();
    input.read_to_end(&mut text).map_err(|e| BackupError::io(source, e))?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| json_error(source, &e))?;
    let serde_json::Value::Array(values) = value else {
        return Err(BackupError::corrupt(source, 0, "--jsonArray: the input is not a JSON array"));
    };
    for (at, value) in values.into_iter().enumerate() {
        each(document_of(value).map_err(|e| BackupError::corrupt(source, 0, format!("array element {at}: {e}")))?)?;
    }
    Ok(())
}

/// A document from Extended JSON (canonical or relaxed).
fn document_of(value: serde_json::Value) -> Result<Document, String> {
    match Bson::try_from(value) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(other) => Err(format!("a {:?} where a document was expected", other.element_type())),
        Err(error) => Err(format!("not Extended JSON: {error}")),
    }
}

fn json_error(source: &std::path::Path, error: &serde_json::Error) -> BackupError {
    // serde_json's message ends with " at line L column C", said once at the front instead.
    let message = error.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(text, _)| text);
    BackupError::Corrupt {
        path: source.to_path_buf(),
        offset: 0,
        detail: format!("line {}, column {}: {message}", error.line(), error.column()),
    }
}

/// CSV or TSV rows, each a document.
fn read_table(
    input: Box<dyn BufRead>,
    source: &std::path::Path,
    options: &ImportOptions,
    each: &mut dyn FnMut(Document) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let tsv = options.kind == ImportType::Tsv;
    let quotes = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(options.header_line)
        .delimiter(if tsv { b'\t' } else { b',' })
        // mongoimport's TSV has no quoting: a quote is text.
        .quoting(!tsv)
        .flexible(true)
        .from_reader(QuoteCounter { inner: input, quotes: quotes.clone() });
    let fields: Vec<String> = if options.header_line {
        reader.headers().map_err(|e| table_error(source, &e))?.iter().map(str::to_owned).collect()
    } else {
        options.fields.clone()
    };
    // Each row is written once the next one is read: the csv crate reads a quoted field left
    // open at the end of the input as ending there, and only the count of quotes (even in
    // well-formed CSV, where a quote inside a field is doubled) shows that row is broken.
    let mut previous: Option<(Document, csv::Position)> = None;
    for record in reader.records() {
        let record = record.map_err(|e| table_error(source, &e))?;
        let position = record.position().cloned().unwrap_or_else(csv::Position::new);
        if record.len() > fields.len() {
            return Err(BackupError::corrupt(
                source,
                position.byte(),
                format!("line {}: {} values for {} fields", position.line(), record.len(), fields.len()),
            ));
        }
        let mut document = Document::new();
        for (field, cell) in fields.iter().zip(record.iter()) {
            if cell.is_empty() && options.ignore_blanks {
                continue;
            }
            tabular::set_path(&mut document, field, tabular::parse_cell(cell))
                .map_err(|e| BackupError::corrupt(source, position.byte(), format!("line {}: {e}", position.line())))?;
        }
        if let Some((row, _)) = previous.replace((document, position)) {
            each(row)?;
        }
    }
    if let Some((row, position)) = previous {
        if !tsv && quotes.get() % 2 == 1 {
            return Err(BackupError::corrupt(
                source,
                position.byte(),
                format!("line {}: a quoted field is not closed before the end of the input", position.line()),
            ));
        }
        each(row)?;
    }
    Ok(())
}

/// Counts the quote characters read through it.
struct QuoteCounter {
    inner: Box<dyn BufRead>,
    quotes: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Read for QuoteCounter {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        let quotes = buffer.get(..n).unwrap_or_default().iter().filter(|b| **b == b'"').count();
        self.quotes.set(self.quotes.get() + quotes as u64);
        Ok(n)
    }
}

fn table_error(source: &std::path::Path, error: &csv::Error) -> BackupError {
    let (line, byte) = error.position().map_or((0, 0), |p| (p.line(), p.byte()));
    BackupError::corrupt(source, byte, format!("line {line}: {error}"))
}
