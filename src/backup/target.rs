//! Where a backup is written. [`BackupTarget`] is what the writer needs from a destination:
//! files written one after another, then the manifest written last, atomically, which is the
//! moment the backup becomes complete. [`LocalDirectory`] implements it for a directory on
//! this host; an object store (S3, issue 19 point 5) implements the same trait later.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::BackupError;
use super::manifest::{BLOCK_BYTES, FileEntry, MANIFEST_FILE};

/// A destination for one backup.
pub trait BackupTarget {
    /// Starts a file at `path` (relative, `/`-separated); its bytes go through
    /// [`TargetFile::write_all`] and it is done at [`TargetFile::finish`].
    ///
    /// # Errors
    /// The destination's I/O errors.
    fn create_file(&mut self, path: &str) -> Result<Box<dyn TargetFile>, BackupError>;

    /// Writes the manifest and makes the backup complete and visible, atomically: before
    /// this returns, nothing at the destination looks like a complete backup.
    ///
    /// # Errors
    /// The destination's I/O errors; the backup is then not complete.
    fn commit(&mut self, manifest: &[u8]) -> Result<(), BackupError>;

    /// Removes whatever a failed backup wrote. Best effort: it runs after another error.
    fn abandon(&mut self);

    /// Where the complete backup is (for messages and the command's reply).
    fn location(&self) -> String;
}

/// One file being written to a [`BackupTarget`].
pub trait TargetFile {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// The destination's I/O errors.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), BackupError>;

    /// Makes the file durable and returns its manifest entry (size and SHA-256).
    ///
    /// # Errors
    /// The destination's I/O errors.
    fn finish(self: Box<Self>) -> Result<FileEntry, BackupError>;
}

/// A backup directory on this host, written as `<dir>.partial` and renamed to `<dir>` once
/// the manifest is in it, so a failed or interrupted backup never looks complete.
#[derive(Debug)]
pub struct LocalDirectory {
    /// The final directory.
    dir: PathBuf,
    /// Where the files go until the backup is complete.
    partial: PathBuf,
}

impl LocalDirectory {
    /// Prepares a backup into `dir`, which must be absent or empty.
    ///
    /// # Errors
    /// [`BackupError::TargetNotEmpty`] when `dir` holds anything, or when `<dir>.partial`
    /// exists (another backup into `dir` is running, or one was interrupted and left it);
    /// I/O errors.
    pub fn create(dir: &Path) -> Result<Self, BackupError> {
        if dir.as_os_str().is_empty() {
            return Err(BackupError::BadArgument("the backup directory must not be empty".to_owned()));
        }
        if !is_absent_or_empty(dir)? {
            return Err(BackupError::TargetNotEmpty { path: dir.to_path_buf(), hint: "" });
        }
        let partial = sibling(dir, ".partial");
        if partial.exists() {
            return Err(BackupError::TargetNotEmpty {
                path: partial,
                hint: " (another backup into the same directory is running, or an interrupted one left it: remove it)",
            });
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
        }
        // IMPORTANT: `create_dir` (not `create_dir_all`) fails if a concurrent backup made it
        // first: two backups never write into one partial directory.
        std::fs::create_dir(&partial).map_err(|e| BackupError::io(&partial, e))?;
        Ok(Self { dir: dir.to_path_buf(), partial })
    }
}

impl BackupTarget for LocalDirectory {
    fn create_file(&mut self, path: &str) -> Result<Box<dyn TargetFile>, BackupError> {
        let full = self.partial.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
        }
        let file = File::create_new(&full).map_err(|e| BackupError::io(&full, e))?;
        Ok(Box::new(LocalFile {
            writer: std::io::BufWriter::with_capacity(1 << 20, file),
            path: full,
            relative: path.to_owned(),
            hasher: Sha256::new(),
            blocks: BlockHasher::default(),
            bytes: 0,
        }))
    }

    fn commit(&mut self, manifest: &[u8]) -> Result<(), BackupError> {
        write_atomically(&self.partial.join(MANIFEST_FILE), manifest)?;
        sync_tree_dirs(&self.partial)?;
        // An empty `dir` is replaced by the rename (POSIX allows renaming over an empty
        // directory); a non-empty one (filled since `create`) makes it fail.
        std::fs::rename(&self.partial, &self.dir).map_err(|e| BackupError::io(&self.dir, e))?;
        sync_parent(&self.dir)
    }

    fn abandon(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.partial) {
            tracing::warn!(target: "STORAGE", path = %self.partial.display(), %error, "Cannot remove a failed backup's files");
        }
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

/// A file of a [`LocalDirectory`], hashed as it is written.
struct LocalFile {
    writer: std::io::BufWriter<File>,
    path: PathBuf,
    relative: String,
    hasher: Sha256,
    blocks: BlockHasher,
    bytes: u64,
}

impl TargetFile for LocalFile {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.hasher.update(bytes);
        self.blocks.update(bytes);
        self.bytes += bytes.len() as u64;
        self.writer.write_all(bytes).map_err(|e| BackupError::io(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<FileEntry, BackupError> {
        let Self { writer, path, relative, hasher, blocks, bytes } = *self;
        let file = writer.into_inner().map_err(|e| BackupError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| BackupError::io(&path, e))?;
        Ok(FileEntry { path: relative, bytes, sha256: hex::encode(hasher.finalize()), block_sha256: blocks.finish() })
    }
}

/// The SHA-256 of each [`BLOCK_BYTES`] block of a stream, in order.
#[derive(Default)]
pub struct BlockHasher {
    current: Sha256,
    in_current: u64,
    done: Vec<String>,
}

impl BlockHasher {
    /// Feeds the next bytes of the stream.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = usize::try_from(BLOCK_BYTES - self.in_current).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.update(now);
            self.in_current += now.len() as u64;
            if self.in_current == BLOCK_BYTES {
                self.done.push(hex::encode(std::mem::take(&mut self.current).finalize()));
                self.in_current = 0;
            }
            bytes = rest;
        }
    }

    /// The hashes so far, as complete blocks (for comparing while reading).
    pub fn completed(&self) -> &[String] {
        &self.done
    }

    /// Every block's hash, the last partial block's included.
    pub fn finish(mut self) -> Vec<String> {
        if self.in_current > 0 {
            self.done.push(hex::encode(self.current.finalize()));
        }
        self.done
    }
}

/// `<path><suffix>`: a sibling of `path` in the same directory (so a rename between them
/// stays on one file system and is atomic).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `dir` does not exist or is an empty directory.
///
/// # Errors
/// I/O errors other than "not found"; a file at `dir` counts as not empty.
pub fn is_absent_or_empty(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(error) => Err(BackupError::io(dir, error)),
    }
}

/// Whether `path` is `dir` or lies below it, once symbolic links and `..` are resolved: the
/// longest leading part of `path` that exists is resolved by the file system, the rest (which
/// cannot hold links) by its `.` and `..`. A `dir` that does not exist holds nothing.
pub fn is_within(path: &Path, dir: &Path) -> bool {
    use std::path::Component;
    let Ok(dir) = dir.canonicalize() else { return false };
    let components: Vec<Component<'_>> = path.components().collect();
    // The longest prefix that resolves; an absolute path always has `/`, a relative one `.`.
    let resolved = (0..=components.len()).rev().find_map(|end| {
        let prefix: PathBuf = components.get(..end)?.iter().collect();
        let prefix = if prefix.as_os_str().is_empty() { PathBuf::from(".") } else { prefix };
        Some((prefix.canonicalize().ok()?, end))
    });
    let Some((mut full, end)) = resolved else { return false };
    for component in components.get(end..).unwrap_or_default() {
        match component {
            Component::ParentDir => {
                full.pop();
            }
            Component::Normal(name) => full.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    full.starts_with(&dir)
}

/// Writes `bytes` to `path` as a whole or not at all: a temporary sibling, fsynced, renamed.
///
/// # Errors
/// I/O errors.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let temp = sibling(path, ".tmp");
    let mut file = File::create(&temp).map_err(|e| BackupError::io(&temp, e))?;
    file.write_all(bytes).map_err(|e| BackupError::io(&temp, e))?;
    file.sync_all().map_err(|e| BackupError::io(&temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| BackupError::io(path, e))?;
    sync_parent(path)
}

/// Fsyncs `dir` and every directory below it: their entries (new files, renames) are then
/// durable too, not only the files' contents.
///
/// # Errors
/// I/O errors.
pub fn sync_tree_dirs(dir: &Path) -> Result<(), BackupError> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| BackupError::io(&dir, e))? {
            let entry = entry.map_err(|e| BackupError::io(&dir, e))?;
            if entry.file_type().map_err(|e| BackupError::io(&entry.path(), e))?.is_dir() {
                pending.push(entry.path());
            }
        }
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| BackupError::io(&dir, e))?;
    }
    Ok(())
}

/// Fsyncs the directory holding `path`, so a rename or creation in it is durable.
///
/// # Errors
/// I/O errors.
pub fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|d| d.sync_all()).map_err(|e| BackupError::io(parent, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_block_hashes_do_not_depend_on_how_the_bytes_arrive() {
        let size = usize::try_from(BLOCK_BYTES).unwrap_or(usize::MAX);
        let bytes: Vec<u8> = (0..size * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut whole = BlockHasher::default();
        whole.update(&bytes);
        let mut pieces = BlockHasher::default();
        for chunk in bytes.chunks(65_521) {
            pieces.update(chunk);
        }
        let expected: Vec<String> = bytes.chunks(size).map(|block| hex::encode(Sha256::digest(block))).collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(whole.finish(), expected);
        assert_eq!(pieces.finish(), expected);
    }

    #[test]
    fn target_local_directory_appears_only_when_committed() -> Result<(), BackupError> {
        let scratch = tempfile::tempdir().map_err(|e| BackupError::io(Path::new("temp"), e))?;
        let dir = scratch.path().join("b");
        let mut target = LocalDirectory::create(&dir)?;
        let partial = sibling(&dir, ".partial");
        let mut file = target.create_file("db/c.bson")?;
        file.write_all(b"abc")?;
        let entry = file.finish()?;
        assert_eq!((entry.path.as_str(), entry.bytes), ("db/c.bson", 3));
        assert_eq!(entry.sha256, hex::encode(Sha256::digest(b"abc")));
        assert!(!dir.exists() && partial.join("db/c.bson").exists());
        // A second backup into the same directory is refused while the first runs.
        assert!(matches!(LocalDirectory::create(&dir), Err(BackupError::TargetNotEmpty { .. })));
        target.commit(b"{}")?;
        assert!(dir.join(MANIFEST_FILE).exists() && dir.join("db/c.bson").exists() && !partial.exists());
        assert!(matches!(LocalDirectory::create(&dir), Err(BackupError::TargetNotEmpty { .. })));

        let failed = scratch.path().join("failed");
        let mut target = LocalDirectory::create(&failed)?;
        target.create_file("db/c.bson")?.write_all(b"x")?;
        target.abandon();
        assert!(!failed.exists() && !sibling(&failed, ".partial").exists());
        Ok(())
    }

    #[test]
    fn target_is_within_resolves_dots_and_links() -> Result<(), std::io::Error> {
        let scratch = tempfile::tempdir()?;
        let data = scratch.path().join("data");
        std::fs::create_dir(&data)?;
        std::os::unix::fs::symlink(&data, scratch.path().join("link"))?;
        assert!(is_within(&data.join("backups/new"), &data));
        assert!(is_within(&scratch.path().join("link/new"), &data));
        assert!(is_within(&scratch.path().join("other/../data/x"), &data));
        assert!(!is_within(&scratch.path().join("database"), &data));
        assert!(!is_within(&scratch.path().join("elsewhere/x"), &data));
        assert!(!is_within(&data, &scratch.path().join("missing")));
        Ok(())
    }
}
