//! Encrypted backups (issue 19, point 6): every data and metadata file of a backup encrypted
//! with AES-256-GCM under a key from a key file, in the STREAM construction (RustCrypto's
//! `aead::stream`, big-endian 32-bit counter): the file is cut into [`CHUNK_BYTES`] chunks,
//! each sealed with a nonce made of the file's random prefix, the chunk's number and a flag on
//! the last one, and with the file's path as associated data. A chunk changed, moved, dropped,
//! cut off or copied from another file does not decrypt.
//!
//! An encrypted file is [`MAGIC`], the 7-byte nonce prefix, then the sealed chunks (each up
//! to [`CHUNK_BYTES`] plus a 16-byte tag). The key is never written into a backup: the
//! manifest carries a [`key_check`] (an HMAC of a fixed text under the key), so a wrong key
//! is refused by name before anything is decrypted. The manifest itself stays readable: it
//! shows namespaces, index specs, counts and sizes, not documents.

use std::io::Read;
use std::path::{Path, PathBuf};

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use hmac::{KeyInit as _, Mac};

use super::error::BackupError;
use super::manifest::{
    ENCRYPTION_ALGORITHM as ALGORITHM, ENCRYPTION_CHUNK_BYTES as CHUNK_BYTES, Encryption, FileEntry,
};
use super::target::{BackupTarget, TargetFile};

/// The start of every encrypted file.
pub const MAGIC: &[u8; 8] = b"MNRCAES1";
/// Bytes of the nonce prefix each file starts with (12-byte nonce less STREAM's 5).
const NONCE_PREFIX_BYTES: usize = 7;
/// Bytes of a chunk's authentication tag.
const TAG_BYTES: usize = 16;
/// The text the key check is an HMAC of.
const KEY_CHECK_TEXT: &[u8] = b"monarch backup key check, version 1";

/// A backup encryption key: 32 bytes.
#[derive(Clone)]
pub struct BackupKey {
    bytes: [u8; 32],
    /// Where it was read from, for messages.
    source: PathBuf,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupKey").field("source", &self.source).finish_non_exhaustive()
    }
}

impl PartialEq for BackupKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl BackupKey {
    /// Reads a key file: 32 bytes in base64 (what `openssl rand -base64 32` writes; spaces
    /// and line ends ignored), or exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`BackupError::BadArgument`] naming the file when it cannot be read or holds no key.
    pub fn read(path: &Path) -> Result<Self, BackupError> {
        let contents = std::fs::read(path)
            .map_err(|e| BackupError::BadArgument(format!("cannot read the key file {}: {e}", path.display())))?;
        let text: String = String::from_utf8_lossy(&contents).split_whitespace().collect();
        let decoded = base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).ok();
        let bytes = decoded
            .filter(|d| d.len() == 32)
            .or_else(|| (contents.len() == 32).then(|| contents.clone()))
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .ok_or_else(|| {
                BackupError::BadArgument(format!(
                    "the key file {} holds no 256-bit key (32 bytes in base64, as `openssl rand -base64 32` writes, or 32 raw bytes)",
                    path.display()
                ))
            })?;
        Ok(Self { bytes, source: path.to_path_buf() })
    }

    /// This key's check value, as the manifest records it.
    pub fn check(&self) -> String {
        key_check(&self.bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.bytes))
    }
}

/// HMAC-SHA-256 of a fixed text under `key`, hex: tells a wrong key without decrypting and
/// without revealing the key.
fn key_check(key: &[u8; 32]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(KEY_CHECK_TEXT);
    hex::encode(mac.finalize().into_bytes())
}

// The manifest's `encryption` field is declared with the manifest; what needs the key is here.
impl Encryption {
    /// The field for a backup written with `key`.
    pub fn for_key(key: &BackupKey) -> Self {
        Self { algorithm: ALGORITHM.to_owned(), chunk_bytes: CHUNK_BYTES as u64, key_check: key.check() }
    }

    /// Checks that `key` is the one the backup was written with.
    ///
    /// # Errors
    /// [`BackupError::WrongKey`] when it is not.
    pub fn check_key(&self, key: &BackupKey, backup: &Path) -> Result<(), BackupError> {
        use subtle::ConstantTimeEq as _;
        if bool::from(key.check().as_bytes().ct_eq(self.key_check.as_bytes())) {
            return Ok(());
        }
        Err(BackupError::WrongKey { backup: backup.to_path_buf(), key_file: Some(key.source.clone()) })
    }
}

/// A [`BackupTarget`] that encrypts every file before `inner` stores it.
pub struct EncryptingTarget<'a> {
    inner: &'a mut dyn BackupTarget,
    key: BackupKey,
}

impl<'a> EncryptingTarget<'a> {
    /// Encrypts with `key` into `inner`.
    pub fn new(inner: &'a mut dyn BackupTarget, key: BackupKey) -> Self {
        Self { inner, key }
    }
}

impl BackupTarget for EncryptingTarget<'_> {
    fn create_file(&mut self, path: &str) -> Result<Box<dyn TargetFile>, BackupError> {
        let mut inner = self.inner.create_file(path)?;
        let mut prefix = [0u8; NONCE_PREFIX_BYTES];
        getrandom::fill(&mut prefix).map_err(|e| BackupError::Internal(format!("no random numbers: {e}")))?;
        inner.write_all(MAGIC)?;
        inner.write_all(&prefix)?;
        Ok(Box::new(EncryptingFile {
            inner,
            encryptor: EncryptorBE32::from_aead(self.key.cipher(), GenericArray::from_slice(&prefix)),
            path: path.to_owned(),
            pending: Vec::with_capacity(CHUNK_BYTES),
        }))
    }

    fn commit(&mut self, manifest: &[u8]) -> Result<(), BackupError> {
        self.inner.commit(manifest)
    }

    fn abandon(&mut self) {
        self.inner.abandon();
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

/// One file being encrypted: plaintext gathers into chunks, sealed chunks go to `inner`.
struct EncryptingFile {
    inner: Box<dyn TargetFile>,
    encryptor: EncryptorBE32<Aes256Gcm>,
    path: String,
    pending: Vec<u8>,
}

impl TargetFile for EncryptingFile {
    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), BackupError> {
        while !bytes.is_empty() {
            // A full chunk is sealed only once more bytes follow: the last chunk, even a full
            // one, must be sealed as the last.
            if self.pending.len() == CHUNK_BYTES {
                let sealed = self
                    .encryptor
                    .encrypt_next(Payload { msg: &self.pending, aad: self.path.as_bytes() })
                    .map_err(|_| BackupError::Internal(format!("cannot encrypt {}", self.path)))?;
                self.inner.write_all(&sealed)?;
                self.pending.clear();
            }
            let take = (CHUNK_BYTES - self.pending.len()).min(bytes.len());
            let (now, rest) = bytes.split_at(take);
            self.pending.extend_from_slice(now);
            bytes = rest;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<FileEntry, BackupError> {
        let Self { mut inner, encryptor, path, pending } = *self;
        let sealed = encryptor
            .encrypt_last(Payload { msg: &pending, aad: path.as_bytes() })
            .map_err(|_| BackupError::Internal(format!("cannot encrypt {path}")))?;
        inner.write_all(&sealed)?;
        inner.finish()
    }
}

/// Opens a backup file for reading its plaintext: as it is, or decrypted with `key` when the
/// backup is encrypted (`relative` is its path in the backup, the chunks' associated data).
///
/// # Errors
/// I/O errors; [`BackupError::Corrupt`] when an encrypted file does not start as one.
pub fn open_plaintext(path: &Path, relative: &str, key: Option<&BackupKey>) -> Result<Box<dyn Read>, BackupError> {
    let mut file = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let Some(key) = key else { return Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, file))) };
    let length = file.metadata().map_err(|e| BackupError::io(path, e))?.len();
    let mut header = [0u8; MAGIC.len() + NONCE_PREFIX_BYTES];
    file.read_exact(&mut header)
        .map_err(|_| BackupError::corrupt(path, 0, "not an encrypted backup file (too short)"))?;
    let (magic, prefix) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(BackupError::corrupt(path, 0, "not an encrypted backup file (its first bytes are not Monarch's)"));
    }
    Ok(Box::new(DecryptingReader {
        file: std::io::BufReader::with_capacity(CHUNK_BYTES + TAG_BYTES, file),
        decryptor: Some(DecryptorBE32::from_aead(key.cipher(), GenericArray::from_slice(prefix))),
        path: path.to_path_buf(),
        aad: relative.to_owned(),
        remaining: length.saturating_sub(header.len() as u64),
        offset: header.len() as u64,
        plain: Vec::new(),
        at: 0,
    }))
}

/// Reads an encrypted file's plaintext chunk by chunk.
struct DecryptingReader {
    file: std::io::BufReader<std::fs::File>,
    /// `None` once the last chunk is read.
    decryptor: Option<DecryptorBE32<Aes256Gcm>>,
    path: PathBuf,
    aad: String,
    /// Sealed bytes not read yet.
    remaining: u64,
    /// The file offset of the next sealed chunk.
    offset: u64,
    plain: Vec<u8>,
    at: usize,
}

impl DecryptingReader {
    /// Decrypts the next chunk into `plain`; false at the end.
    fn next_chunk(&mut self) -> std::io::Result<bool> {
        let Some(decryptor) = self.decryptor.as_mut() else { return Ok(false) };
        let sealed_size = (CHUNK_BYTES + TAG_BYTES) as u64;
        let is_last = self.remaining <= sealed_size;
        let size = usize::try_from(self.remaining.min(sealed_size)).unwrap_or(usize::MAX);
        let mut sealed = vec![0u8; size];
        self.file.read_exact(&mut sealed)?;
        let payload = Payload { msg: &sealed, aad: self.aad.as_bytes() };
        let opened = if is_last {
            self.decryptor.take().map(|d| d.decrypt_last(payload))
        } else {
            Some(decryptor.decrypt_next(payload))
        };
        let offset = self.offset;
        self.plain = match opened {
            Some(Ok(plain)) => plain,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    BackupError::corrupt(
                        &self.path,
                        offset,
                        format!(
                            "the encrypted chunk at bytes {offset}..{} does not decrypt: it was changed, cut short or moved",
                            offset + size as u64
                        ),
                    ),
                ));
            }
        };
        self.at = 0;
        self.remaining -= size as u64;
        self.offset += size as u64;
        Ok(true)
    }
}

impl Read for DecryptingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.plain.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let available = self.plain.get(self.at..).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), available.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

/// The [`BackupError`] a decrypting read failed with, or the I/O error as one.
pub fn read_error(path: &Path, error: std::io::Error) -> BackupError {
    if error.get_ref().is_some_and(|inner| inner.is::<BackupError>()) {
        if let Some(Ok(inner)) = error.into_inner().map(|inner| inner.downcast::<BackupError>()) {
            return *inner;
        }
        return BackupError::corrupt(path, 0, "does not decrypt");
    }
    BackupError::io(path, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::LocalDirectory;

    fn key(dir: &Path, name: &str, byte: u8) -> Result<BackupKey, BackupError> {
        let path = dir.join(name);
        std::fs::write(&path, format!("{}\n", base64::engine::general_purpose::STANDARD.encode([byte; 32])))
            .map_err(|e| BackupError::io(&path, e))?;
        BackupKey::read(&path)
    }

    fn read_all(path: &Path, relative: &str, key: &BackupKey) -> Result<Vec<u8>, BackupError> {
        let mut out = Vec::new();
        open_plaintext(path, relative, Some(key))?.read_to_end(&mut out).map_err(|e| read_error(path, e))?;
        Ok(out)
    }

    #[test]
    fn crypto_round_trips_and_refuses_changes() -> Result<(), BackupError> {
        let scratch = tempfile::tempdir().map_err(|e| BackupError::io(Path::new("temp"), e))?;
        let right = key(scratch.path(), "k1", 7)?;
        let wrong = key(scratch.path(), "k2", 8)?;
        // Exactly two chunks, and a bit more: the full last chunk is the edge case.
        for size in [0, 5, 2 * CHUNK_BYTES, 2 * CHUNK_BYTES + 3] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let dir = scratch.path().join(format!("b{size}"));
            let mut local = LocalDirectory::create(&dir)?;
            let mut target = EncryptingTarget::new(&mut local, right.clone());
            let mut file = target.create_file("db/c.bson")?;
            for piece in plain.chunks(100_003) {
                file.write_all(piece)?;
            }
            file.finish()?;
            target.commit(b"{}")?;
            let path = dir.join("db/c.bson");
            let sealed = std::fs::read(&path).map_err(|e| BackupError::io(&path, e))?;
            let chunks = size.div_ceil(CHUNK_BYTES).max(1);
            assert_eq!(sealed.len(), MAGIC.len() + NONCE_PREFIX_BYTES + size + chunks * TAG_BYTES);
            assert_eq!(read_all(&path, "db/c.bson", &right)?, plain, "size {size}");
            assert!(read_all(&path, "db/c.bson", &wrong).is_err());
            // Another file's associated data: a file moved within the backup does not open.
            assert!(read_all(&path, "db/d.bson", &right).is_err());
            if size == 2 * CHUNK_BYTES {
                // Dropping the last chunk leaves a non-last chunk at the end.
                let cut = path.with_extension("cut");
                let keep = sealed.len() - (CHUNK_BYTES + TAG_BYTES);
                std::fs::write(&cut, sealed.get(..keep).unwrap_or_default()).map_err(|e| BackupError::io(&cut, e))?;
                let error = read_all(&cut, "db/c.bson", &right).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(error.contains("does not decrypt"), "{error}");
            }
        }
        Ok(())
    }

    #[test]
    fn crypto_key_files_are_base64_or_raw_and_checked() -> Result<(), BackupError> {
        let scratch = tempfile::tempdir().map_err(|e| BackupError::io(Path::new("temp"), e))?;
        let from_base64 = key(scratch.path(), "b64", 1)?;
        let raw = scratch.path().join("raw");
        std::fs::write(&raw, [1u8; 32]).map_err(|e| BackupError::io(&raw, e))?;
        assert_eq!(BackupKey::read(&raw)?, from_base64);
        let short = scratch.path().join("short");
        std::fs::write(&short, "c2hvcnQ=\n").map_err(|e| BackupError::io(&short, e))?;
        assert!(matches!(BackupKey::read(&short), Err(BackupError::BadArgument(m)) if m.contains("no 256-bit key")));
        let encryption = Encryption::for_key(&from_base64);
        assert!(encryption.is_supported());
        assert!(encryption.check_key(&from_base64, Path::new("/b")).is_ok());
        let other = key(scratch.path(), "other", 2)?;
        assert!(matches!(encryption.check_key(&other, Path::new("/b")), Err(BackupError::WrongKey { .. })));
        // The check value does not show the key.
        assert!(!encryption.key_check.contains(&hex::encode([1u8; 32])));
        Ok(())
    }
}
