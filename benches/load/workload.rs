//! What is measured (the workloads) and what each is compared with (its floors).

use clap::ValueEnum;

use crate::config::Config;

/// One workload, as named on the command line; `all` and `goals` stand for sets of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Workload {
    Ping,
    YcsbA,
    YcsbB,
    YcsbC,
    Scan,
    Count,
    EqScan,
    EqIndex,
    YcsbE,
    Insert,
    InsertJ,
    InsertMany,
    AggGroup,
    AggTop,
    AggLookup,
    /// Transactions of four `$set` updates by `_id` each, committed (needs `--replSet`).
    Txn,
    All,
    Goals,
}

impl Workload {
    pub(crate) const EVERY: [Workload; 15] = [
        Workload::Ping,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::Scan,
        Workload::Count,
        Workload::EqScan,
        Workload::EqIndex,
        Workload::YcsbE,
        Workload::AggGroup,
        Workload::AggTop,
        Workload::AggLookup,
        Workload::Insert,
        Workload::InsertJ,
        Workload::InsertMany,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Ping => "ping",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbE => "ycsb-e",
            Workload::Insert => "insert",
            Workload::InsertJ => "insert-j",
            Workload::InsertMany => "insert-many",
            Workload::Scan => "scan",
            Workload::Count => "count",
            Workload::EqScan => "eq-scan",
            Workload::EqIndex => "eq-index",
            Workload::AggGroup => "agg-group",
            Workload::AggTop => "agg-top",
            Workload::AggLookup => "agg-lookup",
            Workload::Txn => "txn",
            Workload::All => "all",
            Workload::Goals => "goals",
        }
    }

    /// The floor this workload is compared with.
    pub(crate) fn basis(self) -> Basis {
        match self {
            Workload::Ping => Basis::Floor(Floor::Echo),
            Workload::YcsbA => Basis::Mix { read_pct: 50 },
            Workload::YcsbB => Basis::Mix { read_pct: 95 },
            Workload::YcsbC | Workload::EqIndex | Workload::AggTop | Workload::AggLookup => {
                Basis::Floor(Floor::EngineRead)
            }
            Workload::EqScan => Basis::Floor(Floor::EngineScan),
            Workload::Insert => Basis::Floor(Floor::EngineWrite),
            Workload::InsertJ => Basis::Floor(Floor::EngineGroupCommit),
            Workload::InsertMany => Basis::Floor(Floor::EngineBatch),
            Workload::Scan | Workload::Count | Workload::AggGroup => Basis::Floor(Floor::EngineScan),
            Workload::YcsbE | Workload::Txn | Workload::All | Workload::Goals => Basis::None,
        }
    }

    /// The floors this workload is compared with when only its goal matters: the echo floor
    /// stands for the goals of reads, updates and single inserts, so their engine floors are
    /// left out; `insert-j` keeps the group-commit rate its goal quotes beside it.
    pub(crate) fn goal_basis(self) -> Basis {
        match self {
            Workload::InsertJ | Workload::InsertMany => self.basis(),
            _ => Basis::None,
        }
    }

    /// Concurrent clients (and floor threads) this workload runs with.
    pub(crate) fn clients(self, config: &Config) -> usize {
        match self {
            Workload::InsertJ => config.j_clients,
            _ => config.clients,
        }
    }

    /// Rounds it is measured in, each after its own echo slice. Workloads whose operations take
    /// a good part of a second (batches, scans) run in one: a short slice would hold too few
    /// operations per client to measure them, and their ratio that counts is to an engine floor.
    pub(crate) fn rounds(self, config: &Config) -> u32 {
        match self {
            Workload::InsertMany
            | Workload::Scan
            | Workload::Count
            | Workload::EqScan
            | Workload::AggGroup
            | Workload::AggLookup => 1,
            _ => config.rounds,
        }
    }

    /// Whether it reads `bench.usertable`, which must be loaded first.
    pub(crate) fn needs_records(self) -> bool {
        matches!(
            self,
            Workload::YcsbA
                | Workload::YcsbB
                | Workload::YcsbC
                | Workload::Scan
                | Workload::Count
                | Workload::EqScan
                | Workload::EqIndex
                | Workload::YcsbE
                | Workload::AggGroup
                | Workload::AggTop
                | Workload::AggLookup
                | Workload::Txn
        )
    }
}

/// What a workload's rate is divided by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Basis {
    Floor(Floor),
    /// The engine's read and write rates blended: `1 / (r / read + (1 - r) / write)`.
    Mix {
        read_pct: u64,
    },
    None,
}

impl Basis {
    pub(crate) fn floors(self) -> Vec<Floor> {
        match self {
            Basis::Floor(floor) => vec![floor],
            Basis::Mix { .. } => vec![Floor::EngineRead, Floor::EngineWrite],
            Basis::None => Vec::new(),
        }
    }
}

/// A rate measured without Monarch in the way: the network's (echo) or fjall's (engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Floor {
    Echo,
    EngineRead,
    EngineScan,
    EngineWrite,
    EngineBatch,
    EngineGroupCommit,
    /// PostgreSQL point reads of the same keys (`--pg-floor`).
    PostgresRead,
    /// PostgreSQL one-row durable upserts (`--pg-floor`).
    PostgresWrite,
}

impl Floor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Floor::Echo => "net echo",
            Floor::EngineWrite => "engine write",
            Floor::EngineRead => "engine read",
            Floor::EngineScan => "engine scan",
            Floor::EngineBatch => "engine batch",
            Floor::EngineGroupCommit => "engine group commit",
            Floor::PostgresRead => "postgres read",
            Floor::PostgresWrite => "postgres write",
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Floor::Echo => "net_echo_ping",
            Floor::EngineWrite => "engine_write",
            Floor::EngineRead => "engine_read",
            Floor::EngineScan => "engine_scan",
            Floor::EngineBatch => "engine_batch",
            Floor::EngineGroupCommit => "engine_group_commit",
            Floor::PostgresRead => "postgres_read",
            Floor::PostgresWrite => "postgres_write",
        }
    }

    /// Whether it reads the engine's loaded records.
    pub(crate) fn needs_records(self) -> bool {
        matches!(self, Floor::EngineRead | Floor::EngineScan)
    }
}

/// A floor measured with a given number of clients or threads: a workload is only compared
/// with a floor measured at its own concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FloorRun {
    pub(crate) floor: Floor,
    pub(crate) threads: usize,
}
