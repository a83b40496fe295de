//! The logical clock of a replica-set member: cluster times as mongod's `Timestamp(seconds,
//! increment)`, never going backwards, ticked by every write so that each acknowledged write has
//! a time later than every earlier one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bson::Timestamp;

/// The cluster time: the latest time handed out, packed as `seconds << 32 | increment`.
#[derive(Debug, Default)]
pub struct LogicalClock {
    latest: AtomicU64,
}

/// A time as one ordered number: `seconds << 32 | increment`.
pub(crate) fn pack(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// The time [`pack`] packed.
pub(crate) fn unpack(packed: u64) -> Timestamp {
    Timestamp { time: (packed >> 32) as u32, increment: packed as u32 }
}

fn wall_seconds() -> u32 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

impl LogicalClock {
    /// The latest cluster time; `Timestamp(0, 0)` before the first tick.
    pub fn now(&self) -> Timestamp {
        unpack(self.latest.load(Ordering::Acquire))
    }

    /// Hands out a new time, later than every earlier one: this second's next increment, or
    /// the next increment of the latest time when the wall clock is behind it (a clock set
    /// back, or more than 2^32 ticks in a second).
    pub fn tick(&self) -> Timestamp {
        let seconds = wall_seconds();
        let mut current = self.latest.load(Ordering::Acquire);
        loop {
            let latest = unpack(current);
            let next = if seconds > latest.time {
                Timestamp { time: seconds, increment: 1 }
            } else if latest.increment == u32::MAX {
                Timestamp { time: latest.time.saturating_add(1), increment: 1 }
            } else {
                Timestamp { time: latest.time, increment: latest.increment + 1 }
            };
            match self.latest.compare_exchange_weak(current, pack(next), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// Moves the clock to `time` if it is later (a time read back from storage at start).
    pub fn advance_to(&self, time: Timestamp) {
        self.latest.fetch_max(pack(time), Ordering::AcqRel);
    }
}

/// mongod's rendering of a timestamp in messages: `Timestamp(1700000000, 1)`.
pub fn shown(ts: Timestamp) -> String {
    format!("Timestamp({}, {})", ts.time, ts.increment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_ticks_strictly_increase_and_survive_a_later_stored_time() {
        let clock = LogicalClock::default();
        assert_eq!(clock.now(), Timestamp { time: 0, increment: 0 });
        let first = clock.tick();
        let second = clock.tick();
        assert!(pack(second) > pack(first), "{first:?} then {second:?}");
        assert_eq!(clock.now(), second);
        // A time from the future (a clock set back since it was stored) is kept, and the next
        // tick counts on from it instead of going back to the wall clock.
        let ahead = Timestamp { time: wall_seconds() + 3600, increment: 7 };
        clock.advance_to(ahead);
        clock.advance_to(first);
        assert_eq!(clock.now(), ahead);
        assert_eq!(clock.tick(), Timestamp { time: ahead.time, increment: 8 });
        assert_eq!(shown(ahead), format!("Timestamp({}, 7)", ahead.time));
    }
}
