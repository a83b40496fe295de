//! Verifying a backup: every file the manifest names is read again and checked against its
//! size, its SHA-256 and its blocks' hashes; every document of every data file is parsed,
//! every element at every depth; every collection's document count is compared. The first
//! problem is reported with the file and the byte offset where it is.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use bson::RawDocument;
use sha2::{Digest, Sha256};

use super::bson_stream::BsonStream;
use super::crypto::{BackupKey, open_plaintext, read_error};
use super::error::BackupError;
use super::layout::{self, MetadataJson};
use super::manifest::{BLOCK_BYTES, CollectionEntry, FileEntry, MANIFEST_FILE, Manifest};
use super::target::BlockHasher;

/// What a verified backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Collections.
    pub collections: usize,
    /// Documents in all of them.
    pub documents: u64,
    /// Bytes of all files.
    pub bytes: u64,
}

/// Verifies the backup in `dir`, decrypting with `key` when it is encrypted; returns its
/// manifest and what it holds.
///
/// # Errors
/// The first problem: [`BackupError::MissingManifest`], [`BackupError::BadManifest`],
/// [`BackupError::Corrupt`] (file and offset), [`BackupError::WrongKey`] (an encrypted
/// backup without its key), [`BackupError::BadArgument`] (a key for a backup that is not
/// encrypted), or an I/O error naming the file.
pub fn verify_backup(dir: &Path, key: Option<&BackupKey>) -> Result<(Manifest, VerifyReport), BackupError> {
    let manifest = Manifest::read(dir)?;
    match (&manifest.encryption, key) {
        (Some(encryption), Some(key)) => encryption.check_key(key, dir)?,
        (Some(_), None) => return Err(BackupError::WrongKey { backup: dir.to_path_buf(), key_file: None }),
        (None, Some(_)) => {
            return Err(BackupError::BadArgument(format!(
                "{} is not encrypted: --encryptionKeyFile applies to encrypted backups only",
                dir.display()
            )));
        }
        (None, None) => {}
    }
    for collection in &manifest.collections {
        verify_collection(dir, collection, key)?;
    }
    let report = VerifyReport {
        collections: manifest.collections.len(),
        documents: manifest.documents(),
        bytes: manifest.bytes(),
    };
    Ok((manifest, report))
}

fn verify_collection(dir: &Path, collection: &CollectionEntry, key: Option<&BackupKey>) -> Result<(), BackupError> {
    let data = layout::data_path(&collection.db, &collection.collection);
    let metadata = layout::metadata_path(&collection.db, &collection.collection);
    let find = |wanted: &str| {
        collection.files.iter().find(|f| f.path == wanted).ok_or_else(|| BackupError::BadManifest {
            path: dir.join(MANIFEST_FILE),
            detail: format!("collection {} lists no file {wanted}", collection.namespace()),
        })
    };
    let (data, metadata) = (find(&data)?, find(&metadata)?);
    let data_path = dir.join(&data.path);
    // Documents first: a damaged length or type byte is then named at its own offset.
    let documents = read_documents(dir, &data.path, key, |_, _| Ok(()))?;
    if documents != collection.documents {
        return Err(BackupError::corrupt(
            &data_path,
            data.bytes,
            format!("holds {documents} documents, the manifest says {}", collection.documents),
        ));
    }
    check_file(dir, data)?;
    check_file(dir, metadata)?;
    let metadata_path = dir.join(&metadata.path);
    let bytes = read_plaintext(dir, &metadata.path, key)?;
    layout::parse_metadata(&bytes).map_err(|detail| BackupError::corrupt(&metadata_path, 0, detail))?;
    // The file is as written (its hash matched); the manifest must describe it alike.
    let described = MetadataJson {
        uuid: collection.uuid.clone(),
        options: collection.options.clone(),
        indexes: collection.indexes.clone(),
    };
    if let Some(difference) = described.difference(&collection.collection, &bytes) {
        return Err(BackupError::BadManifest {
            path: dir.join(MANIFEST_FILE),
            detail: format!("collection {} does not match {}: {difference}", collection.namespace(), metadata.path),
        });
    }
    Ok(())
}

/// Checks `file`'s size, block hashes and SHA-256 against the manifest.
fn check_file(dir: &Path, entry: &FileEntry) -> Result<(), BackupError> {
    let path = dir.join(&entry.path);
    let mut reader = File::open(&path).map_err(|e| BackupError::io(&path, e))?;
    let mut whole = Sha256::new();
    let mut blocks = BlockHasher::default();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buffer).map_err(|e| BackupError::io(&path, e))?;
        let Some(chunk) = buffer.get(..read).filter(|c| !c.is_empty()) else { break };
        whole.update(chunk);
        blocks.update(chunk);
        size += read as u64;
        if size > entry.bytes {
            return Err(BackupError::corrupt(
                &path,
                entry.bytes,
                format!("the file is longer than the {} bytes the manifest says", entry.bytes),
            ));
        }
        let done = blocks.completed();
        if let Some(at) = done.iter().zip(&entry.block_sha256).position(|(found, expected)| found != expected) {
            return Err(block_mismatch(&path, at));
        }
    }
    if size < entry.bytes {
        return Err(BackupError::corrupt(
            &path,
            size,
            format!("the file is truncated: it ends at byte {size}, the manifest says {} bytes", entry.bytes),
        ));
    }
    let found = blocks.finish();
    if let Some(at) = found.iter().zip(&entry.block_sha256).position(|(found, expected)| found != expected) {
        return Err(block_mismatch(&path, at));
    }
    if found.len() != entry.block_sha256.len() || hex::encode(whole.finalize()) != entry.sha256 {
        return Err(BackupError::corrupt(&path, 0, "the file's SHA-256 does not match the manifest"));
    }
    Ok(())
}

fn block_mismatch(path: &Path, block: usize) -> BackupError {
    let start = block as u64 * BLOCK_BYTES;
    BackupError::corrupt(
        path,
        start,
        format!("bytes {start}..{} differ from the backup as written (block SHA-256 mismatch)", start + BLOCK_BYTES),
    )
}

/// The whole plaintext of the backup file `relative` in `dir` (decrypted with `key`).
///
/// # Errors
/// I/O errors; [`BackupError::Corrupt`] when an encrypted file does not decrypt.
pub fn read_plaintext(dir: &Path, relative: &str, key: Option<&BackupKey>) -> Result<Vec<u8>, BackupError> {
    let path = dir.join(relative);
    let mut bytes = Vec::new();
    open_plaintext(&path, relative, key)?.read_to_end(&mut bytes).map_err(|e| read_error(&path, e))?;
    Ok(bytes)
}

/// Reads the data file `relative` of the backup in `dir` (decrypted with `key`) document by
/// document, parses each fully and hands it to `each` with its offset (in the plaintext);
/// returns how many there were.
///
/// # Errors
/// [`BackupError::Corrupt`] at the offset of the first document that is cut short, has an
/// impossible length, or does not parse, or at the encrypted chunk that does not decrypt;
/// `each`'s errors.
pub fn read_documents(
    dir: &Path,
    relative: &str,
    key: Option<&BackupKey>,
    mut each: impl FnMut(u64, &RawDocument) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let path = &dir.join(relative);
    let mut stream = BsonStream::new(open_plaintext(path, relative, key)?, path);
    let mut count = 0u64;
    while let Some((offset, document)) = stream.next_document()? {
        each(offset, document)?;
        count += 1;
    }
    Ok(count)
}
