//! Where the server's own backups and archived oplog chunks go (`--backupPath`): a directory
//! on this host or a prefix in S3-compatible object storage, and what the scheduler and the
//! oplog archive do there by name: write, list the complete ones, read a manifest, verify,
//! fetch, remove.

use std::path::{Path, PathBuf};

use super::crypto::BackupKey;
use super::error::BackupError;
use super::manifest::{MANIFEST_FILE, Manifest};
use super::s3::{self, S3Location, S3Target, is_s3};
use super::target::{BackupTarget, LocalDirectory};
use super::verify::verify_backup;

/// Where scheduled backups go (`--backupPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupPath {
    /// A directory on this host.
    Local(PathBuf),
    /// A prefix in S3-compatible object storage.
    S3(S3Location),
}

impl BackupPath {
    /// `text` as a path: an `s3://` location or a directory.
    ///
    /// # Errors
    /// An `s3://` location that does not parse, as a message.
    pub fn parse(text: &Path) -> Result<Self, String> {
        match text.to_str().filter(|t| is_s3(t)) {
            Some(url) => S3Location::parse(url).map(Self::S3).map_err(|e| e.to_string()),
            None => Ok(Self::Local(text.to_path_buf())),
        }
    }

    /// Where the backup named `name` goes, for messages.
    pub fn display(&self, name: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(name).display().to_string(),
            Self::S3(location) => location.child(name).url(),
        }
    }

    /// The location `name` below this one.
    pub fn child(&self, name: &str) -> Self {
        match self {
            Self::Local(dir) => Self::Local(dir.join(name)),
            Self::S3(location) => Self::S3(location.child(name)),
        }
    }

    /// The location `name` beside this one (in the same parent).
    pub fn sibling(&self, name: &str) -> Self {
        match self {
            Self::Local(dir) => {
                let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                Self::Local(parent.join(name))
            }
            Self::S3(location) => {
                let parent = location.prefix.rsplit_once('/').map_or("", |(parent, _)| parent);
                Self::S3(S3Location { prefix: parent.to_owned(), ..location.clone() }.child(name))
            }
        }
    }

    /// The names directly below this location that hold a complete backup (a manifest).
    ///
    /// # Errors
    /// I/O and connection errors (an absent directory holds none).
    pub fn complete_children(&self) -> Result<Vec<String>, BackupError> {
        match self {
            Self::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(error) => return Err(BackupError::io(dir, error)),
                };
                let mut found = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|e| BackupError::io(dir, e))?;
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
                    if entry.path().join(MANIFEST_FILE).is_file() {
                        found.push(name);
                    }
                }
                found.sort();
                Ok(found)
            }
            Self::S3(location) => Ok(s3::children(location)?
                .into_iter()
                .filter(|(_, complete)| *complete)
                .map(|(name, _)| name)
                .collect()),
        }
    }

    /// Removes what interrupted writes left below this location among the names `is_ours`
    /// accepts (`<name>.partial` directories, prefixes without a manifest); returns where
    /// each was. Only for names the caller alone writes, before it writes any.
    ///
    /// # Errors
    /// I/O and connection errors (an absent directory holds none).
    pub fn remove_incomplete(&self, is_ours: impl Fn(&str) -> bool) -> Result<Vec<String>, BackupError> {
        let mut removed = Vec::new();
        match self {
            Self::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
                    Err(error) => return Err(BackupError::io(dir, error)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| BackupError::io(dir, e))?;
                    let name = entry.file_name();
                    if name.to_str().and_then(|n| n.strip_suffix(".partial")).is_some_and(&is_ours) {
                        std::fs::remove_dir_all(entry.path()).map_err(|e| BackupError::io(&entry.path(), e))?;
                        removed.push(entry.path().display().to_string());
                    }
                }
            }
            Self::S3(location) => {
                for (name, complete) in s3::children(location)? {
                    if !complete && is_ours(&name) {
                        let partial = location.child(&name);
                        s3::remove_all(&partial)?;
                        removed.push(partial.url());
                    }
                }
            }
        }
        Ok(removed)
    }

    /// A target that writes the backup named `name`.
    ///
    /// # Errors
    /// As [`LocalDirectory::create`] and [`S3Target::create`].
    pub fn create_target(&self, name: &str) -> Result<Box<dyn BackupTarget>, BackupError> {
        Ok(match self {
            Self::Local(dir) => Box::new(LocalDirectory::create(&dir.join(name))?),
            Self::S3(location) => Box::new(S3Target::create(&location.child(name))?),
        })
    }

    /// The manifest of the backup named `name` (only the manifest is fetched).
    ///
    /// # Errors
    /// A missing or bad manifest; I/O and connection errors.
    pub fn read_manifest(&self, name: &str) -> Result<Manifest, BackupError> {
        match self {
            Self::Local(dir) => Manifest::read(&dir.join(name)),
            Self::S3(location) => {
                let bytes = s3::read_object(&location.child(name), MANIFEST_FILE)?;
                Manifest::parse(&bytes, &PathBuf::from(self.display(name)).join(MANIFEST_FILE))
            }
        }
    }

    /// Runs `work` on a local copy of the backup named `name`: the directory itself, or one
    /// downloaded into a temporary directory removed afterwards.
    ///
    /// # Errors
    /// `work`'s errors; the download's.
    pub fn with_local_copy<T>(
        &self,
        name: &str,
        work: impl FnOnce(&Path) -> Result<T, BackupError>,
    ) -> Result<T, BackupError> {
        match self {
            Self::Local(dir) => work(&dir.join(name)),
            Self::S3(location) => {
                let scratch = std::env::temp_dir().join(format!("monarchd-fetch-{}-{name}", std::process::id()));
                let url = PathBuf::from(location.child(name).url_with_settings());
                s3::with_local_copy(&url, &scratch, work)
            }
        }
    }

    /// Verifies the backup named `name`.
    ///
    /// # Errors
    /// What verify finds; the download's errors.
    pub fn verify(&self, name: &str, key: Option<&BackupKey>) -> Result<Manifest, BackupError> {
        self.with_local_copy(name, |local| verify_backup(local, key).map(|(manifest, _)| manifest))
    }

    /// Removes the backup named `name`.
    ///
    /// # Errors
    /// I/O and connection errors.
    pub fn remove(&self, name: &str) -> Result<(), BackupError> {
        match self {
            Self::Local(dir) => {
                std::fs::remove_dir_all(dir.join(name)).map_err(|e| BackupError::io(&dir.join(name), e))
            }
            Self::S3(location) => s3::remove_all(&location.child(name)),
        }
    }
}

impl std::fmt::Display for BackupPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "{}", dir.display()),
            Self::S3(location) => f.write_str(&location.url_with_settings()),
        }
    }
}
