//! Limits against abuse: failed authentications slow down their client address (an
//! exponential delay, capped), `--maxConnsPerIP` caps one address's connections, and
//! `--rateLimitPerIP`/`--rateLimitPerUser` refill token buckets that each request takes one
//! token from. Every refusal is counted for `/metrics`; the tables forget quiet entries so a
//! stream of new addresses cannot grow them without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The delay after the second failure in a row from an address; it doubles with each one.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// An address with no failure for this long starts again from no delay.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// Entries kept before quiet ones are pruned.
const TABLE_LIMIT: usize = 4096;

/// Counts for `/metrics`.
#[derive(Debug, Default)]
pub struct AbuseCounters {
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// Of them, answered after a delay.
    pub auth_delayed: AtomicU64,
    /// Connections closed at `--maxConnsPerIP`.
    pub connections_refused_per_ip: AtomicU64,
    /// Requests refused by the per-address rate limit.
    pub rate_limited_ip: AtomicU64,
    /// Requests refused by the per-user rate limit.
    pub rate_limited_user: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// A token bucket holding up to `rate` tokens, refilled at `rate` per second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    /// The last request was refused (a refusal after a grant is logged, not every one).
    limited: bool,
}

/// What a rate-limit check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Granted,
    /// Refused; `first` when the previous request of this key was granted (worth a log line).
    Refused {
        /// The first refusal in a row.
        first: bool,
    },
}

/// Open connections per client address.
type ConnectionTable = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The server's abuse limits and their state.
#[derive(Debug)]
pub struct AbuseGuard {
    max_conns_per_ip: Option<usize>,
    rate_per_ip: Option<f64>,
    rate_per_user: Option<f64>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    connections: ConnectionTable,
    ip_buckets: Mutex<HashMap<IpAddr, Bucket>>,
    user_buckets: Mutex<HashMap<(String, String), Bucket>>,
    /// Counts for `/metrics`.
    pub counters: AbuseCounters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds one of an address's connections; dropping it gives it back.
#[derive(Debug)]
pub struct ConnectionSlot {
    table: Option<(ConnectionTable, IpAddr)>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some((table, ip)) = self.table.take() {
            let mut table = lock(&table);
            if let Some(count) = table.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    table.remove(&ip);
                }
            }
        }
    }
}

impl AbuseGuard {
    /// The limits: connections per address, and requests per second per address and per user
    /// (`None`: no limit).
    pub fn new(max_conns_per_ip: Option<usize>, rate_per_ip: Option<f64>, rate_per_user: Option<f64>) -> Self {
        Self {
            max_conns_per_ip,
            rate_per_ip,
            rate_per_user,
            failures: Mutex::default(),
            connections: Arc::default(),
            ip_buckets: Mutex::default(),
            user_buckets: Mutex::default(),
            counters: AbuseCounters::default(),
        }
    }

    /// Records a failed authentication from `ip` at `now`; returns how long to wait before
    /// answering: nothing for the first failure, then 100 ms doubling up to 5 s.
    pub fn auth_failed(&self, ip: IpAddr, now: Instant) -> Duration {
        self.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        let mut failures = lock(&self.failures);
        prune(&mut failures, |f| now.saturating_duration_since(f.last) < FAILURE_MEMORY);
        let entry = failures.entry(ip).or_insert(Failures { count: 0, last: now });
        if now.saturating_duration_since(entry.last) >= FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let delay = match entry.count {
            0 | 1 => Duration::ZERO,
            n => FIRST_DELAY.saturating_mul(1 << (n - 2).min(16)).min(MAX_DELAY),
        };
        if !delay.is_zero() {
            self.counters.auth_delayed.fetch_add(1, Ordering::Relaxed);
        }
        delay
    }

    /// Records a successful authentication from `ip`: its failures are forgotten.
    pub fn auth_succeeded(&self, ip: IpAddr) {
        lock(&self.failures).remove(&ip);
    }

    /// Takes one of `ip`'s connections, or `None` at `--maxConnsPerIP`.
    pub fn admit_connection(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let Some(max) = self.max_conns_per_ip else { return Some(ConnectionSlot { table: None }) };
        let mut table = lock(&self.connections);
        let count = table.entry(ip).or_insert(0);
        if *count >= max {
            self.counters.connections_refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { table: Some((self.connections.clone(), ip)) })
    }

    /// Whether any request rate limit is configured (when none is, requests skip the check).
    pub fn limits_requests(&self) -> bool {
        self.rate_per_ip.is_some() || self.rate_per_user.is_some()
    }

    /// Takes a token for a request from `ip` by `users` (the connection's authenticated users)
    /// at `now`: the address's bucket first, then each user's.
    pub fn admit_request(&self, ip: IpAddr, users: &[(String, String)], now: Instant) -> (Admission, &'static str) {
        if let Some(rate) = self.rate_per_ip {
            let admission = take(&self.ip_buckets, ip, rate, now);
            if admission != Admission::Granted {
                self.counters.rate_limited_ip.fetch_add(1, Ordering::Relaxed);
                return (admission, "address");
            }
        }
        if let Some(rate) = self.rate_per_user {
            for user in users {
                let admission = take(&self.user_buckets, user.clone(), rate, now);
                if admission != Admission::Granted {
                    self.counters.rate_limited_user.fetch_add(1, Ordering::Relaxed);
                    return (admission, "user");
                }
            }
        }
        (Admission::Granted, "")
    }
}

/// Takes one token from `key`'s bucket (full at first), refilled at `rate` per second.
fn take<K: Hash + Eq>(buckets: &Mutex<HashMap<K, Bucket>>, key: K, rate: f64, now: Instant) -> Admission {
    let mut buckets = lock(buckets);
    // A bucket idle this long is full again (rates are at least one per second): nothing to keep.
    prune(&mut buckets, |b| now.saturating_duration_since(b.refilled) < FAILURE_MEMORY);
    let bucket = buckets.entry(key).or_insert(Bucket { tokens: rate, refilled: now, limited: false });
    let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(rate.max(1.0));
    bucket.refilled = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        bucket.limited = false;
        Admission::Granted
    } else {
        let first = !bucket.limited;
        bucket.limited = true;
        Admission::Refused { first }
    }
}

/// Drops the entries `keep` rejects once the table passes its limit.
fn prune<K, V>(table: &mut HashMap<K, V>, keep: impl Fn(&V) -> bool) {
    if table.len() >= TABLE_LIMIT {
        table.retain(|_, v| keep(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn failed_authentications_wait_longer_each_time_up_to_a_cap() {
        let guard = AbuseGuard::new(None, None, None);
        let start = Instant::now();
        let delays: Vec<u128> =
            (0..10).map(|i| guard.auth_failed(HOME, start + Duration::from_millis(i)).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(guard.counters.auth_failures.load(Ordering::Relaxed), 10);
        assert_eq!(guard.counters.auth_delayed.load(Ordering::Relaxed), 9);
        // A quiet minute, or a success, starts over.
        assert_eq!(guard.auth_failed(HOME, start + FAILURE_MEMORY + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(guard.auth_failed(HOME, start + FAILURE_MEMORY + Duration::from_secs(2)), FIRST_DELAY);
        guard.auth_succeeded(HOME);
        assert_eq!(guard.auth_failed(HOME, start + FAILURE_MEMORY + Duration::from_secs(3)), Duration::ZERO);
    }

    #[test]
    fn connections_per_address_are_capped_and_given_back() {
        let guard = AbuseGuard::new(Some(2), None, None);
        let first = guard.admit_connection(HOME);
        let second = guard.admit_connection(HOME);
        assert!(first.is_some() && second.is_some());
        assert!(guard.admit_connection(HOME).is_none());
        drop(first);
        assert!(guard.admit_connection(HOME).is_some());
        assert_eq!(guard.counters.connections_refused_per_ip.load(Ordering::Relaxed), 1);
        assert!(AbuseGuard::new(None, None, None).admit_connection(HOME).is_some());
    }

    #[test]
    fn request_buckets_refill_at_their_rate() {
        let guard = AbuseGuard::new(None, Some(2.0), Some(100.0));
        let start = Instant::now();
        let users = [("ann".to_owned(), "admin".to_owned())];
        assert_eq!(guard.admit_request(HOME, &users, start).0, Admission::Granted);
        assert_eq!(guard.admit_request(HOME, &users, start).0, Admission::Granted);
        assert_eq!(guard.admit_request(HOME, &users, start), (Admission::Refused { first: true }, "address"));
        assert_eq!(guard.admit_request(HOME, &users, start), (Admission::Refused { first: false }, "address"));
        assert_eq!(guard.admit_request(HOME, &users, start + Duration::from_millis(500)).0, Admission::Granted);
        assert_eq!(guard.counters.rate_limited_ip.load(Ordering::Relaxed), 2);
        let per_user = AbuseGuard::new(None, None, Some(1.0));
        assert_eq!(per_user.admit_request(HOME, &users, start).0, Admission::Granted);
        assert_eq!(per_user.admit_request(HOME, &users, start), (Admission::Refused { first: true }, "user"));
        assert_eq!(per_user.admit_request(HOME, &[], start).0, Admission::Granted);
    }
}
