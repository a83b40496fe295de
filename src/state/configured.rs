//! The configuration in effect: the one read at start, with what SIGHUP reloads have changed
//! since (see `crate::reload`), and the new values that wait for a restart. `/config` shows it.

use std::sync::{Mutex, PoisonError};

use bson::Document;

use crate::config::Config;

/// The configuration in effect and the keys a reload could not apply.
#[derive(Debug)]
pub struct ConfigInEffect {
    inner: Mutex<(Config, Vec<String>)>,
}

impl ConfigInEffect {
    /// The configuration read at start.
    pub fn new(config: Config) -> Self {
        Self { inner: Mutex::new((config, Vec::new())) }
    }

    /// A copy of the configuration in effect.
    pub fn get(&self) -> Config {
        self.lock().0.clone()
    }

    /// Records a reload: the configuration now in effect, and the keys whose new values take
    /// effect only at the next start.
    pub fn replace(&self, config: Config, pending_restart: Vec<String>) {
        *self.lock() = (config, pending_restart);
    }

    /// `Config::effective()` of the configuration in effect, with `pendingRestart`: the keys
    /// the last reload found changed but could not apply.
    pub fn document(&self) -> Document {
        let inner = self.lock();
        let mut doc = inner.0.effective();
        doc.insert("pendingRestart", inner.1.clone());
        doc
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Config, Vec<String>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
