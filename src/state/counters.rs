//! Server-wide counters behind `serverStatus` and `/metrics`: connections, network traffic, op
//! counters and per-command totals. Plain atomics: every request touches them.

use std::sync::atomic::{AtomicU64, Ordering};

use bson::{Document, doc};
use monarch_wire::Compressor;

/// Connection counts.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Open now.
    pub current: AtomicU64,
    /// Accepted since start.
    pub total_created: AtomicU64,
    /// Refused because of `maxConns`.
    pub rejected: AtomicU64,
    /// Running a request now.
    pub active: AtomicU64,
}

/// Bytes and requests over the wire.
#[derive(Debug, Default)]
pub struct NetworkStats {
    /// Message bytes received, as if uncompressed.
    pub bytes_in: AtomicU64,
    /// Message bytes sent, as if uncompressed.
    pub bytes_out: AtomicU64,
    /// Bytes read from sockets (after TLS).
    pub physical_bytes_in: AtomicU64,
    /// Bytes written to sockets (before TLS).
    pub physical_bytes_out: AtomicU64,
    /// Messages received.
    pub num_requests: AtomicU64,
    compression: [CompressionStats; 3],
}

/// Traffic through one compressor, in mongod's terms: what each side was given and produced.
#[derive(Debug, Default)]
struct CompressionStats {
    compressor_in: AtomicU64,
    compressor_out: AtomicU64,
    decompressor_in: AtomicU64,
    decompressor_out: AtomicU64,
}

impl NetworkStats {
    fn compression(&self, compressor: Option<Compressor>) -> Option<&CompressionStats> {
        let slot = Compressor::NEGOTIABLE.iter().position(|c| Some(*c) == compressor)?;
        self.compression.get(slot)
    }

    /// Records a received message: `wire` bytes as framed, `logical` once uncompressed.
    pub fn record_in(&self, compressor: Option<Compressor>, wire: usize, logical: usize) {
        self.num_requests.fetch_add(1, Ordering::Relaxed);
        add(&self.bytes_in, logical);
        if let Some(stats) = self.compression(compressor) {
            add(&stats.decompressor_in, wire);
            add(&stats.decompressor_out, logical);
        }
    }

    /// Records a sent message: `logical` bytes before compression, `wire` bytes as framed.
    pub fn record_out(&self, compressor: Option<Compressor>, wire: usize, logical: usize) {
        add(&self.bytes_out, logical);
        if let Some(stats) = self.compression(compressor) {
            add(&stats.compressor_in, logical);
            add(&stats.compressor_out, wire);
        }
    }

    /// mongod's `network` section.
    pub fn to_document(&self) -> Document {
        let mut compression = Document::new();
        for (compressor, stats) in Compressor::NEGOTIABLE.iter().zip(&self.compression) {
            compression.insert(compressor.name(), doc! {
                "compressor": { "bytesIn": get(&stats.compressor_in), "bytesOut": get(&stats.compressor_out) },
                "decompressor": { "bytesIn": get(&stats.decompressor_in), "bytesOut": get(&stats.decompressor_out) },
            });
        }
        doc! {
            "bytesIn": get(&self.bytes_in),
            "bytesOut": get(&self.bytes_out),
            "physicalBytesIn": get(&self.physical_bytes_in),
            "physicalBytesOut": get(&self.physical_bytes_out),
            "numSlowDNSOperations": 0_i64,
            "numSlowSSLOperations": 0_i64,
            "numRequests": get(&self.num_requests),
            "compression": compression,
        }
    }
}

/// mongod's `opcounters`: operations by kind since start.
#[derive(Debug, Default)]
pub struct OpCounters {
    /// Documents inserted.
    pub insert: AtomicU64,
    /// Queries (`find`).
    pub query: AtomicU64,
    /// Update statements.
    pub update: AtomicU64,
    /// Delete statements.
    pub delete: AtomicU64,
    /// `getMore` calls.
    pub getmore: AtomicU64,
    /// Every other command.
    pub command: AtomicU64,
}

impl OpCounters {
    /// The `opcounters` section.
    pub fn to_document(&self) -> Document {
        doc! {
            "insert": get(&self.insert),
            "query": get(&self.query),
            "update": get(&self.update),
            "delete": get(&self.delete),
            "getmore": get(&self.getmore),
            "command": get(&self.command),
        }
    }
}

/// Calls and failures of one command (`metrics.commands.<name>`).
#[derive(Debug, Default)]
pub struct CommandCounter {
    /// Calls.
    pub total: AtomicU64,
    /// Calls that returned an error.
    pub failed: AtomicU64,
}

/// All counters of the server.
#[derive(Debug)]
pub struct ServerStats {
    /// Connections.
    pub connections: ConnectionStats,
    /// Network.
    pub network: NetworkStats,
    /// Op counters.
    pub opcounters: OpCounters,
    /// User assertions: commands that failed with an error reply.
    pub user_asserts: AtomicU64,
    /// One counter per command-table row, in table order.
    pub commands: Vec<CommandCounter>,
    /// Commands not in the table.
    pub unknown_commands: AtomicU64,
    /// The TTL monitor's passes made by this node (`metrics.ttl.passes`).
    pub ttl_passes: AtomicU64,
    /// Documents the TTL monitor deleted (`metrics.ttl.deletedDocuments`).
    pub ttl_deleted: AtomicU64,
}

impl ServerStats {
    /// Counters for a command table of `commands` rows.
    pub fn new(commands: usize) -> Self {
        Self {
            connections: ConnectionStats::default(),
            network: NetworkStats::default(),
            opcounters: OpCounters::default(),
            user_asserts: AtomicU64::new(0),
            commands: (0..commands).map(|_| CommandCounter::default()).collect(),
            unknown_commands: AtomicU64::new(0),
            ttl_passes: AtomicU64::new(0),
            ttl_deleted: AtomicU64::new(0),
        }
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Reads a counter as the `long` mongod reports.
pub fn get(counter: &AtomicU64) -> i64 {
    i64::try_from(counter.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}
