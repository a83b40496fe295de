//! The snapshot history of a replica-set member: which engine instant each cluster time was
//! current at, so that a snapshot read with `atClusterTime` reads the data exactly as it was
//! then. As mongod keeps `minSnapshotHistoryWindowInSeconds` (default 300) of history, this
//! keeps at least that long: engine snapshots (anchors) hold the versions compaction would
//! otherwise drop, and a run-length list maps the times of logged commits to instants.
//!
//! The oplog's lock guards it: every logged commit ticks the clock, commits and records its
//! time here under that lock, so a time and the instant recorded with it always agree.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::engine::{Instant as SeqNo, Snapshot};
use bson::Timestamp;

use super::clock::{pack, unpack};
use super::read::ReadView;

/// The most runs kept: past it the oldest go first, whatever the window (about 24 MiB).
const MAX_RUNS: usize = 1 << 20;

/// A run of commits whose times and instants both advance by one: the commit at time `ts + k`
/// made the engine's instant `instant + k` current, for `k` below `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    ts: u64,
    instant: SeqNo,
    len: u64,
}

/// The history: anchors oldest first, and the runs of commits since the oldest anchor.
#[derive(Default)]
pub(super) struct History {
    anchors: VecDeque<(Instant, Snapshot)>,
    runs: VecDeque<Run>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("anchors", &self.anchors.len()).field("runs", &self.runs.len()).finish()
    }
}

/// Why a time cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unreadable {
    /// Before the oldest time kept.
    TooOld,
}

impl History {
    /// Records that the commit ending at time `ts` made `instant` current; `now` is the
    /// wall clock and `window` the history to keep; `snapshot` opens an engine snapshot (at
    /// `instant` or later) when a new anchor is due.
    pub(super) fn record(
        &mut self,
        ts: Timestamp,
        instant: SeqNo,
        (now, window): (Instant, Duration),
        snapshot: impl FnOnce() -> Snapshot,
    ) {
        let ts = pack(ts);
        match self.runs.back_mut() {
            Some(last) if last.ts + last.len == ts && last.instant + last.len == instant => last.len += 1,
            Some(last) if last.ts + last.len > ts => {}
            _ => self.runs.push_back(Run { ts, instant, len: 1 }),
        }
        // A new anchor every half window (at most one a second): the oldest kept is then at
        // most one and a half windows old.
        let every = (window / 2).max(Duration::from_secs(1));
        if self.anchors.back().is_none_or(|(taken, _)| now.duration_since(*taken) >= every) {
            self.anchors.push_back((now, snapshot()));
        }
        // The second anchor alone covers the window once it is older than the window.
        while self.anchors.get(1).is_some_and(|(taken, _)| now.duration_since(*taken) >= window) {
            self.anchors.pop_front();
        }
        if let Some((_, oldest)) = self.anchors.front() {
            self.drop_before(oldest.instant());
        }
        while self.runs.len() > MAX_RUNS {
            self.runs.pop_front();
        }
    }

    /// Forgets the commits whose instants come before `instant` (their versions may be gone).
    fn drop_before(&mut self, instant: SeqNo) {
        while let Some(first) = self.runs.front_mut() {
            if first.instant >= instant {
                return;
            }
            let skipped = instant - first.instant;
            if skipped >= first.len {
                self.runs.pop_front();
            } else {
                first.ts += skipped;
                first.instant += skipped;
                first.len -= skipped;
                return;
            }
        }
    }

    /// The instant at which the data is as it was at time `ts` (the last commit at or
    /// before it), with the anchor that keeps it readable.
    pub(super) fn instant_at(&self, ts: Timestamp) -> Result<(Snapshot, SeqNo), Unreadable> {
        let ts = pack(ts);
        let (_, anchor) = self.anchors.front().ok_or(Unreadable::TooOld)?;
        let after = self.runs.partition_point(|run| run.ts <= ts);
        let run = after.checked_sub(1).and_then(|i| self.runs.get(i)).ok_or(Unreadable::TooOld)?;
        let offset = (ts - run.ts).min(run.len - 1);
        Ok((anchor.clone(), run.instant + offset))
    }

    /// The oldest time it can read, if any.
    pub(super) fn oldest(&self) -> Option<Timestamp> {
        self.runs.front().map(|run| unpack(run.ts))
    }
}

/// Views kept for an engine that cannot read in the past (PostgreSQL keeps no history): the
/// view a snapshot read of "now" opened, by the cluster time it read at, for a short while.
/// A snapshot session's later reads ask for that time and get the same view (the same
/// database snapshot); any other earlier time stays unreadable.
#[derive(Default)]
pub(super) struct RecentViews {
    views: VecDeque<(Instant, Timestamp, ReadView)>,
}

impl std::fmt::Debug for RecentViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentViews").field("views", &self.views.len()).finish()
    }
}

/// The most views kept: each holds a database connection and its open transaction.
const RECENT_VIEWS: usize = 16;
/// How long a view is kept: mongod's `transactionLifetimeLimitSeconds` default, the longest a
/// snapshot is held open by a transaction too.
const RECENT_VIEW_LIFE: Duration = Duration::from_secs(60);

impl RecentViews {
    /// Keeps `view`, which reads at time `ts` (the first kept for a time stays).
    pub(super) fn remember(&mut self, ts: Timestamp, view: &ReadView, now: Instant) {
        self.expire(now);
        if self.views.iter().any(|(_, kept, _)| *kept == ts) {
            return;
        }
        self.views.push_back((now, ts, view.clone()));
        while self.views.len() > RECENT_VIEWS {
            self.views.pop_front();
        }
    }

    /// The view kept for time `ts`, if any.
    pub(super) fn get(&mut self, ts: Timestamp, now: Instant) -> Option<ReadView> {
        self.expire(now);
        self.views.iter().find(|(_, kept, _)| *kept == ts).map(|(_, _, view)| view.clone())
    }

    fn expire(&mut self, now: Instant) {
        while self.views.front().is_some_and(|(taken, _, _)| now.duration_since(*taken) >= RECENT_VIEW_LIFE) {
            self.views.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::engine::{Engine, Space};
    use crate::storage::{EngineConfig, MemoryBudget, StorageError};

    fn ts(increment: u32) -> Timestamp {
        Timestamp { time: 100, increment }
    }

    #[test]
    fn history_maps_times_to_the_instant_of_the_last_commit_at_or_before() -> Result<(), StorageError> {
        let dir = tempfile::tempdir()?;
        let db = Engine::open(dir.path(), &EngineConfig::Fjall(MemoryBudget::split(MemoryBudget::MIN_BYTES)))?;
        let mut history = History::default();
        let start = Instant::now();
        let window = (start, Duration::from_secs(300));
        // Commits at times 1, 2, 3 (one run), then 7 after a batch of four entries.
        for (increment, instant) in [(1, 10), (2, 11), (3, 12), (7, 13)] {
            history.record(ts(increment), instant, window, || db.snapshot());
        }
        assert_eq!(history.runs.len(), 2, "{:?}", history.runs);
        let at = |increment| history.instant_at(ts(increment)).map(|(_, instant)| instant);
        assert_eq!(at(1), Ok(10));
        assert_eq!(at(3), Ok(12));
        assert_eq!(at(5), Ok(12), "between commits: the earlier one");
        assert_eq!(at(7), Ok(13));
        assert_eq!(at(9), Ok(13));
        assert_eq!(at(0), Err(Unreadable::TooOld));
        assert_eq!(history.oldest(), Some(ts(1)));
        Ok(())
    }

    #[test]
    fn history_drops_what_its_oldest_anchor_no_longer_keeps() -> Result<(), StorageError> {
        let dir = tempfile::tempdir()?;
        let db = Engine::open(dir.path(), &EngineConfig::Fjall(MemoryBudget::split(MemoryBudget::MIN_BYTES)))?;
        let mut history = History::default();
        let start = Instant::now();
        let window = Duration::from_secs(10);
        let first = db.visible_instant();
        history.record(ts(1), first, (start, window), || db.snapshot());
        for _ in 0..5 {
            db.insert(Space::Docs, "a", "b")?;
        }
        // Six seconds on: a second anchor, both kept (the second is not yet a window old).
        history.record(ts(2), db.visible_instant(), (start + Duration::from_secs(6), window), || db.snapshot());
        assert_eq!(history.anchors.len(), 2);
        assert_eq!(history.instant_at(ts(1)).map(|(_, i)| i), Ok(first));
        // Seventeen seconds on, the second anchor is over a window old: the first goes, and
        // the commit before the second anchor with it.
        history.record(ts(3), db.visible_instant(), (start + Duration::from_secs(17), window), || db.snapshot());
        assert_eq!(history.anchors.len(), 2, "a third anchor was due, the first dropped");
        assert_eq!(history.instant_at(ts(1)).map(|(_, i)| i), Err(Unreadable::TooOld));
        assert_eq!(history.oldest(), Some(ts(2)));
        Ok(())
    }
}
