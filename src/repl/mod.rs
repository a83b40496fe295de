//! Replica-set mode on one node (`--replSet NAME`): the member's state (waiting for
//! `replSetInitiate`, primary, or stepped down), its configuration and term kept in
//! `local.system.replset`, and the logical clock that gives replies their `$clusterTime` and
//! `operationTime`.
//!
//! A single member is always its own majority, so it becomes primary as soon as it has a
//! configuration (at `replSetInitiate`, and again at every start) and, after a
//! `replSetStepDown`, as soon as the step-down period ends.

pub mod set_config;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, RawDocumentBuf, Timestamp, doc};

use crate::error::{Error, ErrorCode, Result};
pub use crate::storage::LogicalClock;
use crate::storage::{Namespace, OplogEntry, Storage};
pub use set_config::SetConfig;

/// Where the configuration is kept, as in mongod.
const CONFIG_COLLECTION: &str = "system.replset";

/// A member's state, with mongod's numbers (`replSetGetStatus.myState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Started with `--replSet` and no configuration yet (mongod's STARTUP).
    Startup,
    /// The writable primary.
    Primary,
    /// Stepped down; primary again when the step-down period ends.
    Secondary,
}

impl MemberState {
    /// mongod's number for the state.
    pub fn number(self) -> i32 {
        match self {
            Self::Startup => 0,
            Self::Primary => 1,
            Self::Secondary => 2,
        }
    }

    /// mongod's name for the state (`stateStr`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Startup => "STARTUP",
            Self::Primary => "PRIMARY",
            Self::Secondary => "SECONDARY",
        }
    }
}

/// The last write this member applied: its time and term, and its wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct OpTime {
    /// The cluster time of the write.
    pub ts: Timestamp,
    /// The term it was written in.
    pub term: i64,
    /// When it was written.
    pub wall: DateTime,
}

impl OpTime {
    /// `{ts, t}`, as replies show an optime.
    pub fn to_document(self) -> Document {
        doc! { "ts": self.ts, "t": self.term }
    }
}

/// When this member last won an election.
#[derive(Debug, Clone, Copy)]
struct Election {
    time: Timestamp,
    date: DateTime,
}

#[derive(Debug)]
struct Member {
    config: Option<SetConfig>,
    state: MemberState,
    term: i64,
    election: Option<Election>,
    stepped_down_until: Option<Instant>,
    last_write: OpTime,
}

/// The replica-set side of the server: `None` set name on a standalone.
#[derive(Debug)]
pub struct Replication {
    set_name: Option<String>,
    /// One of several nodes sharing a PostgreSQL database (`--pgSharedNodes`): it answers as
    /// mongos does, so drivers treat the nodes as routers of one cluster.
    router: bool,
    member: Mutex<Member>,
    /// The member's state as [`MemberState::number`], read by every request without the lock.
    state: AtomicI32,
    /// The storage's clock, which its oplog entries take their times from.
    clock: Arc<LogicalClock>,
    /// The oplog's size in bytes when this member creates it (`--oplogSize`); `None`:
    /// mongod's default.
    oplog_bytes: Option<u64>,
    /// Wakes the task that ends step-down periods (see [`Replication::next_election`]).
    pub wake: tokio::sync::Notify,
    started: Instant,
}

/// mongod's `electionId`: `0x7fffffff` then the term, big-endian.
fn election_id(term: i64) -> ObjectId {
    let mut bytes = [0_u8; 12];
    bytes[..4].copy_from_slice(&0x7fff_ffff_u32.to_be_bytes());
    bytes[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

fn config_namespace() -> Namespace {
    Namespace { db: "local".to_owned(), coll: CONFIG_COLLECTION.to_owned() }
}

impl Replication {
    /// As [`Replication::new`]; `router`: a node sharing its database with others, answering
    /// as mongos (no replica set then).
    #[must_use]
    pub fn routing(mut self, router: bool) -> Self {
        self.router = router && self.set_name.is_none();
        self
    }

    /// Whether this node answers as mongos (see [`Replication::routing`]).
    pub fn is_router(&self) -> bool {
        self.router
    }

    /// A member of `set_name`, or a standalone when `None`, keeping time with `clock` and
    /// creating an oplog of `oplog_size_mb` (when given).
    pub fn new(set_name: Option<String>, oplog_size_mb: Option<u64>, clock: Arc<LogicalClock>) -> Self {
        Self {
            set_name,
            router: false,
            member: Mutex::new(Member {
                config: None,
                state: MemberState::Startup,
                term: 0,
                election: None,
                stepped_down_until: None,
                last_write: OpTime {
                    ts: Timestamp { time: 0, increment: 0 },
                    term: -1,
                    wall: DateTime::from_millis(0),
                },
            }),
            state: AtomicI32::new(MemberState::Startup.number()),
            clock,
            oplog_bytes: oplog_size_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            wake: tokio::sync::Notify::new(),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Member> {
        self.member.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The set name, when this server runs with `--replSet`.
    pub fn set_name(&self) -> Option<&str> {
        self.set_name.as_deref()
    }

    /// This member's state; `None` on a standalone.
    pub fn state(&self) -> Option<MemberState> {
        self.set_name.as_ref()?;
        Some(match self.state.load(Ordering::Acquire) {
            1 => MemberState::Primary,
            2 => MemberState::Secondary,
            _ => MemberState::Startup,
        })
    }

    /// Whether this member has a configuration (its replies carry cluster times).
    pub fn is_initiated(&self) -> bool {
        self.state().is_some_and(|state| state != MemberState::Startup)
    }

    /// Moves to `state`, under the lock.
    fn set_state(&self, member: &mut Member, state: MemberState) {
        member.state = state;
        self.state.store(state.number(), Ordering::Release);
    }

    /// The latest cluster time.
    pub fn cluster_time(&self) -> Timestamp {
        self.clock.now()
    }

    /// Records a write: the cluster time after it (its oplog entries ticked the clock) is
    /// its `operationTime` and the member's `lastWrite`.
    pub fn note_write(&self) -> Timestamp {
        let ts = self.clock.now();
        let mut member = self.lock();
        member.last_write = OpTime { ts, term: member.term, wall: DateTime::now() };
        ts
    }

    /// Reads the stored configuration at start. With one for this set, the member is primary
    /// in a new term (the only member elects itself); started without `--replSet` over a
    /// member's data, it warns as mongod does and runs as a standalone. A router (a node
    /// sharing its database) starts recording the shared oplog.
    ///
    /// # Errors
    /// Storage errors; 93 when the stored set has another name than `--replSet` gives.
    pub fn load(&self, storage: &Storage) -> Result<()> {
        if self.router {
            // The nodes sharing a database record one oplog, for change streams on any of them.
            storage.start_oplog(self.oplog_bytes)?;
            return storage.catch_up_with_other_nodes();
        }
        let Some(collection) = storage.collection(&config_namespace()) else { return Ok(()) };
        let mut stored = None;
        for raw in storage.snapshot().scan(&collection, crate::storage::Direction::Forward) {
            stored = Document::try_from(raw?.as_ref()).ok().and_then(|d| SetConfig::from_stored(&d));
        }
        let Some((config, term)) = stored else { return Ok(()) };
        let Some(set_name) = &self.set_name else {
            tracing::warn!(
                target: "REPL",
                id = 21558,
                "Document(s) exist in 'system.replset', but started without --replSet. Database contents may appear inconsistent with the writes that were visible when this node was running as part of a replica set. Restart with --replSet unless you are doing maintenance and no other clients are connected."
            );
            return Ok(());
        };
        if config.name() != set_name {
            return Err(Error::new(
                ErrorCode::InvalidReplicaSetConfig,
                format!(
                    "The local replica set configuration names the set {}, but the command line reports {set_name}; start with --replSet {} or remove local.system.replset",
                    config.name(),
                    config.name()
                ),
            ));
        }
        if let Some(last) = storage.last_oplog_time()? {
            self.clock.advance_to(last);
        }
        let mut member = self.lock();
        member.config = Some(config);
        member.term = term;
        self.win_election(&mut member, storage, "new primary")?;
        tracing::info!(target: "REPL", id = 21393, term = member.term, "Found self in config; transition to primary");
        Ok(())
    }

    /// `replSetInitiate`: takes `config` and becomes primary in term 1.
    ///
    /// # Errors
    /// 76 on a standalone, 23 once initiated; storage errors.
    pub fn initiate(&self, storage: &Storage, config: SetConfig) -> Result<()> {
        let mut member = self.lock();
        if member.config.is_some() {
            return Err(Error::new(ErrorCode::AlreadyInitialized, "already initialized")
                .with_info(doc! { "info": "try querying local.system.replset to see current configuration" }));
        }
        member.config = Some(config);
        member.term = 0;
        if let Err(error) = self.win_election(&mut member, storage, "initiating set") {
            member.config = None;
            self.set_state(&mut member, MemberState::Startup);
            return Err(error);
        }
        tracing::info!(target: "REPL", id = 21356, "replSetInitiate config object parses ok, 1 members specified");
        Ok(())
    }

    /// The configuration in use and the term: what a reconfig starts from.
    ///
    /// # Errors
    /// 94 before `replSetInitiate`.
    pub fn current(&self) -> Result<(SetConfig, i64)> {
        let member = self.lock();
        match &member.config {
            Some(config) => Ok((config.clone(), member.term)),
            None => Err(not_yet_initialized()),
        }
    }

    /// `replSetReconfig`: stores `config` (already checked against the current one).
    ///
    /// # Errors
    /// 10107 when not primary (unless `force`); storage errors.
    pub fn reconfig(&self, storage: &Storage, config: SetConfig, force: bool) -> Result<()> {
        let mut member = self.lock();
        if !force && member.state != MemberState::Primary {
            return Err(Error::new(
                ErrorCode::NotWritablePrimary,
                format!(
                    "replSetReconfig should only be run on a writable PRIMARY. Current state {};",
                    member.state.name()
                ),
            ));
        }
        save(storage, &config, member.term)?;
        tracing::info!(target: "REPL", id = 21392, version = config.version, "New replica set config in use");
        member.config = Some(config);
        Ok(())
    }

    /// `replSetStepDown`: steps down until `until`, then the election task makes this member
    /// primary again in a new term.
    ///
    /// # Errors
    /// 10107 when not primary.
    pub fn step_down(&self, until: Instant) -> Result<()> {
        let mut member = self.lock();
        if member.state != MemberState::Primary {
            return Err(Error::new(ErrorCode::NotWritablePrimary, "not primary so can't step down"));
        }
        self.set_state(&mut member, MemberState::Secondary);
        member.stepped_down_until = Some(until);
        drop(member);
        tracing::info!(target: "REPL", id = 21358, "Replica set state transition: PRIMARY -> SECONDARY (stepDown)");
        self.wake.notify_one();
        Ok(())
    }

    /// Steps down because the storage's database is unreachable (the PostgreSQL engine during
    /// a restart or a failover): writes get 10107 and drivers wait for a primary instead of
    /// failing every operation. No election until [`Replication::storage_returned`]. Returns
    /// whether it stepped down (it was primary).
    pub fn step_down_for_storage(&self) -> bool {
        let mut member = self.lock();
        if member.state != MemberState::Primary {
            return false;
        }
        self.set_state(&mut member, MemberState::Secondary);
        member.stepped_down_until = None;
        drop(member);
        tracing::warn!(target: "REPL", id = 21358, "Replica set state transition: PRIMARY -> SECONDARY (the storage engine's database is unreachable)");
        self.wake.notify_one();
        true
    }

    /// The storage's database is reachable again: a member stepped down for it stands for
    /// election at once.
    pub fn storage_returned(&self) {
        let mut member = self.lock();
        if member.state == MemberState::Secondary && member.stepped_down_until.is_none() {
            member.stepped_down_until = Some(Instant::now());
            drop(member);
            self.wake.notify_one();
        }
    }

    /// When a stepped-down member stands for election again, if it is stepped down.
    pub fn next_election(&self) -> Option<Instant> {
        let member = self.lock();
        (member.state == MemberState::Secondary).then_some(member.stepped_down_until).flatten()
    }

    /// Ends a step-down period that is over: this member wins the election of the next term.
    /// Returns whether it became primary.
    ///
    /// # Errors
    /// Storage errors (the new term could not be stored; it stays secondary and tries again).
    pub fn elect_if_due(&self, storage: &Storage, now: Instant) -> Result<bool> {
        let mut member = self.lock();
        if member.state != MemberState::Secondary || member.stepped_down_until.is_some_and(|until| until > now) {
            return Ok(false);
        }
        self.win_election(&mut member, storage, "new primary")?;
        tracing::info!(target: "REPL", id = 21358, term = member.term, "Replica set state transition: SECONDARY -> PRIMARY");
        Ok(true)
    }

    /// Moves to the next term as primary, stores the term with the configuration and writes
    /// the oplog's no-op entry `msg` (started first if need be), whose time is the election's.
    fn win_election(&self, member: &mut Member, storage: &Storage, msg: &str) -> Result<()> {
        let term = member.term + 1;
        if let Some(config) = &member.config {
            save(storage, config, term)?;
        }
        storage.start_oplog(self.oplog_bytes)?;
        storage.oplog.set_term(term);
        storage.log(OplogEntry::noop(msg)?)?;
        let time = self.clock.now();
        member.term = term;
        self.set_state(member, MemberState::Primary);
        member.stepped_down_until = None;
        member.election = Some(Election { time, date: DateTime::now() });
        member.last_write = OpTime { ts: time, term, wall: DateTime::now() };
        Ok(())
    }

    /// Adds what `hello` says about the set: `primary_field` (`isWritablePrimary` or
    /// `ismaster`) and, in replica-set mode, mongod's fields for this member's state.
    pub fn describe(&self, reply: &mut Document, primary_field: &str) {
        if self.set_name.is_none() {
            reply.insert(primary_field, true);
            if self.router {
                // What mongos answers: drivers then spread operations over every node given,
                // pin cursors to theirs and retry on another.
                reply.insert("msg", "isdbgrid");
            }
            return;
        }
        let member = self.lock();
        let Some(config) = &member.config else {
            reply.insert(primary_field, false);
            reply.insert("secondary", false);
            reply.insert("info", "Does not have a valid replica set config");
            reply.insert("isreplicaset", true);
            return;
        };
        let primary = member.state == MemberState::Primary;
        reply.insert("hosts", vec![Bson::String(config.host.clone())]);
        reply.insert("setName", config.name());
        reply.insert("setVersion", config.version);
        reply.insert(primary_field, primary);
        reply.insert("secondary", member.state == MemberState::Secondary);
        if primary {
            reply.insert("primary", config.host.clone());
        }
        reply.insert("me", config.host.clone());
        if primary {
            reply.insert("electionId", election_id(member.term));
        }
        let last = member.last_write;
        reply.insert(
            "lastWrite",
            doc! {
                "opTime": last.to_document(),
                "lastWriteDate": last.wall,
                "majorityOpTime": last.to_document(),
                "majorityWriteDate": last.wall,
            },
        );
    }

    /// `replSetGetConfig`'s `config`.
    ///
    /// # Errors
    /// 94 before `replSetInitiate`.
    pub fn config_document(&self) -> Result<Document> {
        let (config, term) = self.current()?;
        Ok(config.to_document(term))
    }

    /// `replSetGetStatus`, as a single member reports it.
    ///
    /// # Errors
    /// 94 before `replSetInitiate`.
    pub fn status(&self) -> Result<Document> {
        let member = self.lock();
        let Some(config) = &member.config else { return Err(not_yet_initialized()) };
        let last = member.last_write;
        let optime = last.to_document();
        let primary = member.state == MemberState::Primary;
        let mut me = doc! {
            "_id": config.member_id,
            "name": config.host.clone(),
            "health": 1.0,
            "state": member.state.number(),
            "stateStr": member.state.name(),
            "uptime": i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX),
            "optime": optime.clone(),
            "optimeDate": DateTime::from_millis(i64::from(last.ts.time) * 1000),
            "lastAppliedWallTime": last.wall,
            "lastDurableWallTime": last.wall,
            "syncSourceHost": "",
            "syncSourceId": -1,
            "infoMessage": "",
        };
        if let (true, Some(election)) = (primary, member.election) {
            me.insert("electionTime", election.time);
            me.insert("electionDate", election.date);
        }
        me.insert("configVersion", config.version);
        me.insert("configTerm", member.term);
        me.insert("self", true);
        me.insert("lastHeartbeatMessage", "");
        let mut status = doc! {
            "set": config.name(),
            "date": DateTime::now(),
            "myState": member.state.number(),
            "term": member.term,
            "syncSourceHost": "",
            "syncSourceId": -1,
            "heartbeatIntervalMillis": Bson::Int64(2000),
            "majorityVoteCount": 1,
            "writeMajorityCount": 1,
            "votingMembersCount": 1,
            "writableVotingMembersCount": 1,
            "optimes": {
                "lastCommittedOpTime": optime.clone(),
                "lastCommittedWallTime": last.wall,
                "readConcernMajorityOpTime": optime.clone(),
                "appliedOpTime": optime.clone(),
                "durableOpTime": optime,
                "lastAppliedWallTime": last.wall,
                "lastDurableWallTime": last.wall,
            },
        };
        if let Some(election) = member.election {
            status.insert(
                "electionCandidateMetrics",
                doc! {
                    "lastElectionReason": "electionTimeout",
                    "lastElectionDate": election.date,
                    "electionTerm": member.term,
                    "numVotesNeeded": 1,
                    "priorityAtElection": 1.0,
                    "electionTimeoutMillis": Bson::Int64(10000),
                    "newTermStartDate": election.date,
                },
            );
        }
        status.insert("members", vec![Bson::Document(me)]);
        Ok(status)
    }
}

/// The `host` of `rs.initiate()`'s default configuration, as mongod picks it: the host name
/// when the server listens on every address, else the first address it listens on.
pub fn default_host(bind_ip: &[String], port: u16) -> String {
    match bind_ip.first().map(String::as_str) {
        Some(first) if first != "0.0.0.0" && first != "::" => format!("{first}:{port}"),
        _ => format!("{}:{port}", crate::host::hostname()),
    }
}

/// Whether `host` (`name:port`, as configurations hold it) is this server, listening on `port`:
/// the port matches and the name is `localhost`, the host name, or resolves to an address of
/// this machine (one a socket can be bound to). Resolving may block: handlers call it on the
/// blocking pool.
pub fn is_self(host: &str, port: u16) -> bool {
    let Some((name, given_port)) = set_config::normalize_host(host) else { return false };
    if given_port != port {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") || name == crate::host::hostname() {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let Ok(addresses) = std::net::ToSocketAddrs::to_socket_addrs(&(bare, port)) else { return false };
    addresses
        .into_iter()
        .any(|address| address.ip().is_loopback() || std::net::UdpSocket::bind((address.ip(), 0)).is_ok())
}

fn not_yet_initialized() -> Error {
    Error::new(ErrorCode::NotYetInitialized, "no replset config has been received")
}

/// Stores `config` with `term` in `local.system.replset`, durably, replacing what was there.
fn save(storage: &Storage, config: &SetConfig, term: i64) -> Result<()> {
    let collection = storage.collection_or_create(&config_namespace())?;
    let stored = RawDocumentBuf::try_from(&config.to_document(term))
        .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let mut writer = storage.writer(&collection)?;
    // One document, `_id` the set name: `load` checks it against `--replSet`.
    writer.replace(stored)?;
    if let Some(ticket) = writer.commit()? {
        storage.wait_durable(ticket)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_knows_its_own_host() {
        assert!(is_self("localhost:27017", 27017));
        assert!(is_self("127.0.0.1:40001", 40001));
        assert!(!is_self("127.0.0.1:40001", 40002), "another port is another server");
        assert!(!is_self("192.0.2.1:27017", 27017), "a documentation address is nobody's");
        assert_eq!(default_host(&["127.0.0.1".to_owned()], 5), "127.0.0.1:5");
        assert_eq!(default_host(&["0.0.0.0".to_owned()], 5), format!("{}:5", crate::host::hostname()));
    }

    #[test]
    fn replication_election_id_carries_the_term() {
        assert_eq!(election_id(1).to_hex(), "7fffffff0000000000000001");
        assert_eq!(election_id(258).to_hex(), "7fffffff0000000000000102");
    }
}
