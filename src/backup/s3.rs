//! S3-compatible object storage as a backup target (issue 19, point 5), through the
//! `object_store` crate: AWS S3, MinIO, Ceph RGW, Cloudflare R2 and the other compatibles.
//!
//! A location is `s3://<bucket>[/<prefix>][?endpoint=<url>&region=<region>]`; a backup's files
//! are the objects `<prefix>/<path in the backup>`, its manifest last (a prefix without
//! `manifest.json` is no backup). Settings come from the URL, then from the standard AWS
//! environment (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and the rest `object_store` reads), and,
//! without keys in the environment, from the AWS shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, profile `AWS_PROFILE` or
//! `default`).
//!
//! Uploads are resumable: a file goes up in 8 MiB parts of one multipart upload, each part
//! retried on its own (object_store retries each request with backoff, and a part that still
//! fails is sent again, up to [`PART_ATTEMPTS`] times), so an interrupted connection costs
//! the part in flight, not the file. A file that fails aborts its upload; a backup that fails
//! deletes what it wrote.
//!
//! Verify and restore read a backup in object storage by downloading it into a local
//! directory first ([`download`]).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, MultipartId, ObjectStore, PutPayload, RetryConfig};
use sha2::{Digest, Sha256};

use super::error::BackupError;
use super::manifest::{FileEntry, MANIFEST_FILE};
use super::target::{BackupTarget, BlockHasher, TargetFile};

/// How a location in object storage is written.
pub const SCHEME: &str = "s3://";
/// The size of each part of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;
/// How many times one part is sent before the upload fails.
pub const PART_ATTEMPTS: u32 = 4;

/// Whether `location` names object storage rather than a local path.
pub fn is_s3(location: &str) -> bool {
    location.starts_with(SCHEME)
}

/// A prefix in a bucket, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (empty: the bucket's root).
    pub prefix: String,
    /// The endpoint URL for a compatible service (MinIO, ...); AWS's own when absent.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix][?endpoint=URL&region=R]`.
    ///
    /// # Errors
    /// [`BackupError::BadArgument`] for anything else.
    pub fn parse(text: &str) -> Result<Self, BackupError> {
        let bad = |why: &str| BackupError::BadArgument(format!("{text}: {why}"));
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| bad("not an s3:// location"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(bad("`.` and `..` are not allowed in the prefix"));
        }
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", value)) if !value.is_empty() => endpoint = Some(value.to_owned()),
                Some(("region", value)) if !value.is_empty() => region = Some(value.to_owned()),
                _ => return Err(bad(&format!("unknown option `{pair}` (endpoint and region are known)"))),
            }
        }
        Ok(Self { bucket: bucket.to_owned(), prefix, endpoint, region })
    }

    /// The location `name` below this one.
    pub fn child(&self, name: &str) -> Self {
        let prefix = if self.prefix.is_empty() { name.to_owned() } else { format!("{}/{name}", self.prefix) };
        Self { prefix, ..self.clone() }
    }

    /// `s3://bucket/prefix`, for messages and replies (settings left out).
    pub fn url(&self) -> String {
        format!("{SCHEME}{}/{}", self.bucket, self.prefix)
    }

    /// `s3://bucket/prefix` with its `endpoint` and `region` settings: what [`Self::parse`]
    /// reads back as this location.
    pub fn url_with_settings(&self) -> String {
        let settings: Vec<String> = [("endpoint", &self.endpoint), ("region", &self.region)]
            .into_iter()
            .filter_map(|(name, value)| Some(format!("{name}={}", value.as_ref()?)))
            .collect();
        if settings.is_empty() { self.url() } else { format!("{}?{}", self.url(), settings.join("&")) }
    }

    /// The object holding `relative` (a backup's `/`-separated file path).
    fn object(&self, relative: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }

    /// A stand-in path naming this location in errors that carry one.
    fn display_path(&self, relative: &str) -> PathBuf {
        PathBuf::from(format!("{}/{relative}", self.url()))
    }
}

/// The runtime S3 requests run on: `object_store` is asynchronous and the backup writer is
/// not, and the writer may run on one of the server's own runtime threads, where blocking on
/// that runtime is not allowed.
fn runtime() -> Result<&'static tokio::runtime::Runtime, BackupError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("monarch-s3")
        .enable_all()
        .build()
        .map_err(|e| BackupError::Internal(format!("cannot start the object storage client: {e}")))?;
    Ok(RUNTIME.get_or_init(|| built))
}

/// Runs `future` on [`runtime`] and waits for it on this thread.
fn block<F>(future: F) -> Result<F::Output, BackupError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv().map_err(|_| BackupError::Internal("the object storage client stopped".to_owned()))
}

fn remote(location: &S3Location, relative: &str, error: &object_store::Error) -> BackupError {
    BackupError::io(&location.display_path(relative), std::io::Error::other(error.to_string()))
}

/// A client for `location`'s bucket.
///
/// # Errors
/// [`BackupError::BadArgument`] when the settings do not make a client (no region, a bad
/// endpoint, a credentials file that does not parse).
pub fn connect(location: &S3Location) -> Result<Arc<AmazonS3>, BackupError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket).with_retry(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: 6,
        retry_timeout: Duration::from_secs(60),
    });
    let endpoint = location
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT").ok());
    if let Some(endpoint) = &endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    let region = location.region.clone().or_else(|| std::env::var("AWS_REGION").ok());
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
        && let Some(credentials) = shared_credentials()?
    {
        builder = builder.with_access_key_id(credentials.key_id).with_secret_access_key(credentials.secret);
        if let Some(token) = credentials.token {
            builder = builder.with_token(token);
        }
    }
    builder.build().map(Arc::new).map_err(|e| BackupError::BadArgument(format!("{}: {e}", location.url())))
}

/// Keys from the AWS shared credentials file.
struct SharedCredentials {
    key_id: String,
    secret: String,
    token: Option<String>,
}

/// The profile `AWS_PROFILE` (or `default`) of the AWS shared credentials file, when the file
/// exists.
fn shared_credentials() -> Result<Option<SharedCredentials>, BackupError> {
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => PathBuf::from(path),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".aws/credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(BackupError::io(&path, error)),
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    parse_credentials(&text, &profile)
        .map(Some)
        .ok_or_else(|| BackupError::BadArgument(format!("{}: no keys for profile [{profile}]", path.display())))
}

/// The keys of `[profile]` in the INI text of a shared credentials file.
fn parse_credentials(text: &str, profile: &str) -> Option<SharedCredentials> {
    let (mut key_id, mut secret, mut token) = (None, None, None);
    let mut in_profile = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', ';'])) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_owned());
        match key.trim() {
            "aws_access_key_id" => key_id = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    Some(SharedCredentials { key_id: key_id?, secret: secret?, token })
}

/// The objects below `location`, with their paths relative to it.
fn list(store: &Arc<AmazonS3>, location: &S3Location) -> Result<Vec<(String, ObjectPath)>, BackupError> {
    let store = store.clone();
    let prefix = (!location.prefix.is_empty()).then(|| ObjectPath::from(location.prefix.as_str()));
    let listed = block(async move {
        let mut stream = store.list(prefix.as_ref());
        let mut found = Vec::new();
        while let Some(meta) = stream.next().await {
            found.push(meta?.location);
        }
        Ok::<_, object_store::Error>(found)
    })?
    .map_err(|e| remote(location, "", &e))?;
    let strip = if location.prefix.is_empty() { String::new() } else { format!("{}/", location.prefix) };
    Ok(listed
        .into_iter()
        .filter_map(|object| Some((object.as_ref().strip_prefix(&strip)?.to_owned(), object)))
        .collect())
}

/// A backup being written to object storage.
pub struct S3Target {
    store: Arc<AmazonS3>,
    location: S3Location,
    /// Every object this backup created (or began), deleted by [`BackupTarget::abandon`].
    written: Vec<ObjectPath>,
}

impl S3Target {
    /// Prepares a backup into `location`, which must hold no object yet.
    ///
    /// # Errors
    /// [`BackupError::TargetNotEmpty`] when it holds objects; the connection's errors.
    pub fn create(location: &S3Location) -> Result<Self, BackupError> {
        if location.prefix.is_empty() {
            return Err(BackupError::BadArgument(format!("{}: give a prefix for the backup", location.url())));
        }
        let store = connect(location)?;
        if !list(&store, location)?.is_empty() {
            return Err(BackupError::TargetNotEmpty { path: location.display_path(""), hint: "" });
        }
        Ok(Self { store, location: location.clone(), written: Vec::new() })
    }
}

impl BackupTarget for S3Target {
    fn create_file(&mut self, path: &str) -> Result<Box<dyn TargetFile>, BackupError> {
        let object = self.location.object(path);
        self.written.push(object.clone());
        Ok(Box::new(S3File {
            store: self.store.clone(),
            location: self.location.clone(),
            relative: path.to_owned(),
            object,
            buffer: Vec::with_capacity(PART_BYTES),
            upload: None,
            parts: Vec::new(),
            hasher: Sha256::new(),
            blocks: BlockHasher::default(),
            bytes: 0,
        }))
    }

    fn commit(&mut self, manifest: &[u8]) -> Result<(), BackupError> {
        let object = self.location.object(MANIFEST_FILE);
        self.written.push(object.clone());
        let (store, payload) = (self.store.clone(), PutPayload::from(manifest.to_vec()));
        block(async move { store.put(&object, payload).await })?
            .map_err(|e| remote(&self.location, MANIFEST_FILE, &e))?;
        Ok(())
    }

    fn abandon(&mut self) {
        for object in std::mem::take(&mut self.written) {
            let store = self.store.clone();
            let deleted = block(async move { store.delete(&object).await.map_err(|e| (object, e)) });
            if let Ok(Err((object, error))) = deleted
                && !matches!(error, object_store::Error::NotFound { .. })
            {
                tracing::warn!(target: "STORAGE", object = %object, %error, "Cannot remove a failed backup's object");
            }
        }
    }

    fn location(&self) -> String {
        self.location.url()
    }
}

/// One file of an [`S3Target`], hashed and sent in parts as it is written.
struct S3File {
    store: Arc<AmazonS3>,
    location: S3Location,
    relative: String,
    object: ObjectPath,
    buffer: Vec<u8>,
    /// The multipart upload, once the file is bigger than one part.
    upload: Option<MultipartId>,
    parts: Vec<PartId>,
    hasher: Sha256,
    blocks: BlockHasher,
    bytes: u64,
}

impl S3File {
    fn error(&self, error: &object_store::Error) -> BackupError {
        remote(&self.location, &self.relative, error)
    }

    /// Sends the first `len` bytes of the buffer as the next part.
    fn send_part(&mut self, len: usize) -> Result<(), BackupError> {
        let id = match &self.upload {
            Some(id) => id.clone(),
            None => {
                let (store, object) = (self.store.clone(), self.object.clone());
                let id = block(async move { store.create_multipart(&object).await })?.map_err(|e| self.error(&e))?;
                self.upload = Some(id.clone());
                id
            }
        };
        let rest = self.buffer.split_off(len.min(self.buffer.len()));
        let part = bytes::Bytes::from(std::mem::replace(&mut self.buffer, rest));
        let index = self.parts.len();
        let mut attempt = 1;
        loop {
            let (store, object, id, part) = (self.store.clone(), self.object.clone(), id.clone(), part.clone());
            match block(async move { store.put_part(&object, &id, index, PutPayload::from(part)).await })? {
                Ok(done) => {
                    self.parts.push(done);
                    return Ok(());
                }
                Err(error) if attempt < PART_ATTEMPTS => {
                    tracing::warn!(target: "STORAGE", object = %self.object, part = index, attempt, %error, "A backup part failed to upload; sending it again");
                    std::thread::sleep(Duration::from_secs(u64::from(attempt)));
                    attempt += 1;
                }
                Err(error) => return Err(self.error(&error)),
            }
        }
    }
}

impl TargetFile for S3File {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.hasher.update(bytes);
        self.blocks.update(bytes);
        self.bytes += bytes.len() as u64;
        self.buffer.extend_from_slice(bytes);
        while self.buffer.len() >= PART_BYTES {
            self.send_part(PART_BYTES)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<FileEntry, BackupError> {
        match self.upload.clone() {
            None => {
                let (store, object) = (self.store.clone(), self.object.clone());
                let payload = PutPayload::from(std::mem::take(&mut self.buffer));
                block(async move { store.put(&object, payload).await })?.map_err(|e| self.error(&e))?;
            }
            Some(id) => {
                if !self.buffer.is_empty() {
                    self.send_part(self.buffer.len())?;
                }
                let (store, object, parts) = (self.store.clone(), self.object.clone(), std::mem::take(&mut self.parts));
                block(async move { store.complete_multipart(&object, &id, parts).await })?
                    .map_err(|e| self.error(&e))?;
                self.upload = None;
            }
        }
        let hasher = std::mem::take(&mut self.hasher);
        let blocks = std::mem::take(&mut self.blocks);
        Ok(FileEntry {
            path: self.relative.clone(),
            bytes: self.bytes,
            sha256: hex::encode(hasher.finalize()),
            block_sha256: blocks.finish(),
        })
    }
}

impl Drop for S3File {
    /// A file that did not finish aborts its upload: its parts are not kept (nor billed).
    fn drop(&mut self) {
        if let Some(id) = self.upload.take() {
            let (store, object) = (self.store.clone(), self.object.clone());
            if let Ok(Err(error)) = block(async move { store.abort_multipart(&object, &id).await }) {
                tracing::warn!(target: "STORAGE", object = %self.object, %error, "Cannot abort a failed backup file's upload");
            }
        }
    }
}

/// The names directly below `location` (each object's first path segment below it), each
/// with whether a manifest is among its objects, sorted.
///
/// # Errors
/// The connection's errors.
pub fn children(location: &S3Location) -> Result<Vec<(String, bool)>, BackupError> {
    let store = connect(location)?;
    let mut found: std::collections::BTreeMap<String, bool> = std::collections::BTreeMap::new();
    for (relative, _) in list(&store, location)? {
        let Some((name, rest)) = relative.split_once('/') else { continue };
        *found.entry(name.to_owned()).or_default() |= rest == MANIFEST_FILE;
    }
    Ok(found.into_iter().collect())
}

/// The bytes of the object `relative` below `location` (a manifest).
///
/// # Errors
/// The connection's errors; an absent object.
pub fn read_object(location: &S3Location, relative: &str) -> Result<Vec<u8>, BackupError> {
    let store = connect(location)?;
    let object = location.object(relative);
    let fetched = block(async move {
        match store.get(&object).await {
            Ok(got) => got.bytes().await,
            Err(error) => Err(error),
        }
    })?;
    fetched.map(|bytes| bytes.to_vec()).map_err(|e| remote(location, relative, &e))
}

/// Deletes every object below `location`.
///
/// # Errors
/// The connection's errors.
pub fn remove_all(location: &S3Location) -> Result<(), BackupError> {
    let store = connect(location)?;
    for (relative, object) in list(&store, location)? {
        let store = store.clone();
        block(async move { store.delete(&object).await })?.map_err(|e| remote(location, &relative, &e))?;
    }
    Ok(())
}

/// Runs `work` on the backup at `location`: a local directory as it is; a backup in object
/// storage (an `s3://` location) downloaded first into `scratch`, which must not exist and is
/// removed afterwards.
///
/// # Errors
/// `work`'s errors; the download's.
pub fn with_local_copy<T>(
    location: &Path,
    scratch: &Path,
    work: impl FnOnce(&Path) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let Some(url) = location.to_str().filter(|l| is_s3(l)) else { return work(location) };
    if scratch.exists() {
        return Err(BackupError::TargetNotEmpty {
            path: scratch.to_path_buf(),
            hint: " (left by an earlier run: remove it)",
        });
    }
    let outcome = download(&S3Location::parse(url)?, scratch).and_then(|_| work(scratch));
    if scratch.exists()
        && let Err(error) = std::fs::remove_dir_all(scratch)
    {
        tracing::warn!(target: "STORAGE", path = %scratch.display(), %error, "Cannot remove a downloaded backup");
    }
    outcome
}

/// Downloads every object below `location` into `dir` (created), keeping their relative
/// paths; returns how many bytes.
///
/// # Errors
/// [`BackupError::MissingManifest`] when there is no backup there; the connection's and the
/// local file system's errors.
pub fn download(location: &S3Location, dir: &Path) -> Result<u64, BackupError> {
    let store = connect(location)?;
    let objects = list(&store, location)?;
    if !objects.iter().any(|(relative, _)| relative == MANIFEST_FILE) {
        return Err(BackupError::MissingManifest { dir: location.display_path("") });
    }
    let mut total = 0;
    for (relative, object) in objects {
        // The manifest check refuses such names in a backup; a stray object is not fetched.
        if relative.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            continue;
        }
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| BackupError::io(&path, e))?);
        let store = store.clone();
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<bytes::Bytes, object_store::Error>>(4);
        runtime()?.spawn(async move {
            match store.get(&object).await {
                Ok(got) => {
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        if sender.send(chunk).is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error));
                }
            }
        });
        for chunk in receiver {
            let chunk = chunk.map_err(|e| remote(location, &relative, &e))?;
            total += chunk.len() as u64;
            file.write_all(&chunk).map_err(|e| BackupError::io(&path, e))?;
        }
        file.flush().map_err(|e| BackupError::io(&path, e))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_parse_with_their_settings() -> Result<(), BackupError> {
        let parsed = S3Location::parse("s3://bucket/a/b/?endpoint=http://127.0.0.1:9000&region=eu-west-1")?;
        assert_eq!(
            parsed,
            S3Location {
                bucket: "bucket".to_owned(),
                prefix: "a/b".to_owned(),
                endpoint: Some("http://127.0.0.1:9000".to_owned()),
                region: Some("eu-west-1".to_owned()),
            }
        );
        assert_eq!(parsed.child("backup-1").url(), "s3://bucket/a/b/backup-1");
        assert_eq!(S3Location::parse(&parsed.url_with_settings())?, parsed);
        assert_eq!(parsed.object("db/c.bson").as_ref(), "a/b/db/c.bson");
        assert_eq!(S3Location::parse("s3://bucket")?.child("x").object("m").as_ref(), "x/m");
        for bad in ["s3://", "s3:///x", "s3://b/../x", "s3://b/x?secret=1", "/local/path"] {
            assert!(matches!(S3Location::parse(bad), Err(BackupError::BadArgument(_))), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn s3_shared_credentials_come_from_the_profile() {
        let text = "# keys\n[other]\naws_access_key_id = A\naws_secret_access_key = B\n\n[default]\naws_access_key_id=C\naws_secret_access_key = D\naws_session_token = T\n";
        let default = parse_credentials(text, "default");
        assert_eq!(default.as_ref().map(|c| (c.key_id.as_str(), c.secret.as_str())), Some(("C", "D")));
        assert_eq!(default.and_then(|c| c.token).as_deref(), Some("T"));
        assert_eq!(parse_credentials(text, "other").map(|c| c.key_id), Some("A".to_owned()));
        assert!(parse_credentials(text, "missing").is_none());
    }
}
