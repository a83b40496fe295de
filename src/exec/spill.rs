//! Spilling: a blocking sort whose input passes its memory limit (with `allowDiskUse`) writes
//! sorted runs to files under `<dbpath>/_tmp` and merges them; [`Runs`] gives the same to
//! stages that write their own runs (`$group`). Each file is deleted when the
//! sort no longer needs it (finished, failed or abandoned with its cursor); the storage layer
//! empties the folder at every start, for files a crash left behind.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bson::RawDocumentBuf;

use crate::error::{Error, ErrorCode, Result};
use crate::query::SortSpec;
use crate::state::cursors::DocumentStream;

/// Spill files written since start (`serverStatus`-style counters could read it).
static FILES: AtomicU64 = AtomicU64::new(0);

fn io_error(error: std::io::Error) -> Error {
    Error::new(ErrorCode::InternalError, format!("spilling to disk failed: {error}"))
}

/// A spill file, deleted when dropped.
struct SpillFile {
    path: PathBuf,
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(target: "QUERY", id = 20317, path = %self.path.display(), %error, "Cannot delete a spill file");
        }
    }
}

/// One sorted run on disk, read back in order.
struct Run {
    reader: BufReader<File>,
    _file: SpillFile,
}

impl Run {
    /// Writes `documents` (already sorted) to a new file under `dir`.
    fn write(dir: &Path, documents: &[RawDocumentBuf]) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("sort-{}-{n}.bson", std::process::id()));
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(io_error)?;
        let guard = SpillFile { path };
        let mut writer = BufWriter::new(file);
        for document in documents {
            // A BSON document starts with its own length: the run needs no framing.
            writer.write_all(document.as_bytes()).map_err(io_error)?;
        }
        let mut file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        Ok(Self { reader: BufReader::new(file), _file: guard })
    }

    fn next(&mut self) -> Result<Option<RawDocumentBuf>> {
        let mut length = [0u8; 4];
        match self.reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(io_error(error)),
        }
        let total = usize::try_from(i32::from_le_bytes(length)).unwrap_or(0);
        if total < 5 {
            return Err(Error::new(ErrorCode::InternalError, "a spill file is corrupt"));
        }
        let mut bytes = length.to_vec();
        bytes.resize(total, 0);
        self.reader.read_exact(bytes.get_mut(4..).unwrap_or_default()).map_err(io_error)?;
        RawDocumentBuf::from_bytes(bytes).map(Some).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
    }
}

/// Sorts `stream` stably, holding at most about `memory_limit` bytes of documents in memory
/// and spilling sorted runs under `dir` beyond that.
///
/// # Errors
/// The stream's errors; I/O errors writing or reading the runs.
pub fn sort(stream: DocumentStream, sort: SortSpec, memory_limit: usize, dir: &Path) -> Result<DocumentStream> {
    let mut runs = Runs::new(dir, sort);
    let mut buffer: Vec<RawDocumentBuf> = Vec::new();
    let mut bytes = 0usize;
    for document in stream {
        let document = document?;
        bytes += document.as_bytes().len();
        buffer.push(document);
        if bytes > memory_limit {
            runs.write(std::mem::take(&mut buffer))?;
            bytes = 0;
        }
    }
    if runs.is_empty() {
        buffer.sort_by(|a, b| runs.sort.compare(a, b));
        return Ok(Box::new(buffer.into_iter().map(Ok)));
    }
    runs.merge(buffer)
}

/// Sorted runs a stage writes itself (a `$group` flushing its groups when it passes its
/// memory limit), merged in sort order at the end; documents that compare equal come back in
/// the order they were written.
pub struct Runs {
    dir: PathBuf,
    sort: SortSpec,
    runs: Vec<Run>,
}

impl Runs {
    /// No runs yet; they go under `dir`, sorted by `sort`.
    pub fn new(dir: &Path, sort: SortSpec) -> Self {
        Self { dir: dir.to_owned(), sort, runs: Vec::new() }
    }

    /// Sorts `documents` and writes them as one run.
    ///
    /// # Errors
    /// I/O errors writing the run.
    pub fn write(&mut self, mut documents: Vec<RawDocumentBuf>) -> Result<()> {
        documents.sort_by(|a, b| self.sort.compare(a, b));
        self.runs.push(Run::write(&self.dir, &documents)?);
        Ok(())
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Every run and `last` (the documents still in memory, written after the runs) merged.
    ///
    /// # Errors
    /// I/O errors reading the runs.
    pub fn merge(self, mut last: Vec<RawDocumentBuf>) -> Result<DocumentStream> {
        last.sort_by(|a, b| self.sort.compare(a, b));
        Merge::new(self.runs, last, self.sort).map(|m| Box::new(m) as DocumentStream)
    }
}

/// The k-way merge of the runs and the last in-memory batch. Ties go to the earlier source,
/// which holds the earlier documents, so the sort stays stable.
struct Merge {
    runs: Vec<Run>,
    memory: std::vec::IntoIter<RawDocumentBuf>,
    /// The next document of each run, then of the in-memory batch (last).
    heads: Vec<Option<RawDocumentBuf>>,
    sort: SortSpec,
}

impl Merge {
    fn new(mut runs: Vec<Run>, memory: Vec<RawDocumentBuf>, sort: SortSpec) -> Result<Self> {
        let mut heads = Vec::with_capacity(runs.len() + 1);
        for run in &mut runs {
            heads.push(run.next()?);
        }
        let mut memory = memory.into_iter();
        heads.push(memory.next());
        Ok(Self { runs, memory, heads, sort })
    }

    fn refill(&mut self, source: usize) -> Result<()> {
        let next = match self.runs.get_mut(source) {
            Some(run) => run.next()?,
            None => self.memory.next(),
        };
        if let Some(head) = self.heads.get_mut(source) {
            *head = next;
        }
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, &RawDocumentBuf)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some(head) = head else { continue };
            if best.is_none_or(|(_, b)| self.sort.compare(head, b).is_lt()) {
                best = Some((i, head));
            }
        }
        let (source, _) = best?;
        let document = self.heads.get_mut(source).and_then(Option::take)?;
        if let Err(error) = self.refill(source) {
            return Some(Err(error));
        }
        Some(Ok(document))
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn a_spilled_sort_is_the_in_memory_sort_and_leaves_no_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io_error)?;
        let spill = dir.path().join("_tmp");
        let documents: Vec<RawDocumentBuf> = (0..500).map(|i| rawdoc! { "k": (i * 7919) % 101, "i": i }).collect();
        let spec = SortSpec::parse(&rawdoc! { "k": 1 }).map_err(Error::from)?;
        let stream: DocumentStream = Box::new(documents.clone().into_iter().map(Ok));
        // About 20 documents per run: many runs.
        let sorted: Vec<RawDocumentBuf> = sort(stream, spec.clone(), 400, &spill)?.collect::<Result<_>>()?;
        let mut expected = documents;
        expected.sort_by(|a, b| spec.compare(a, b));
        assert_eq!(sorted, expected, "stable and complete");
        let left = std::fs::read_dir(&spill).map_err(io_error)?.count();
        assert_eq!(left, 0, "every run file is deleted");
        Ok(())
    }

    #[test]
    fn an_abandoned_merge_deletes_its_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io_error)?;
        let spill = dir.path().join("_tmp");
        let stream: DocumentStream = Box::new((0..100).map(|i| Ok(rawdoc! { "k": -i })));
        let spec = SortSpec::parse(&rawdoc! { "k": 1 }).map_err(Error::from)?;
        let mut merged = sort(stream, spec, 200, &spill)?;
        assert!(merged.next().is_some());
        assert!(std::fs::read_dir(&spill).map_err(io_error)?.count() > 0, "runs exist while the merge runs");
        drop(merged);
        assert_eq!(std::fs::read_dir(&spill).map_err(io_error)?.count(), 0);
        Ok(())
    }
}
