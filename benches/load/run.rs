//! Runs the workloads against `monarchd` (one, or several nodes sharing their data behind one
//! driver), each in rounds interleaved with the echo floor:
//! a slice of pings to the echo server at the workload's client count, then a slice of the
//! workload, so that both see the same machine. Each round gives one ratio; the median of a
//! workload's rounds is its `vs echo` ratio, so that one round disturbed by the rest of the
//! machine (a build, a compaction) does not move it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use bson::Document;
use mongodb::options::{CollectionOptions, WriteConcern};
use mongodb::{Client, Collection};

use crate::BenchResult;
use crate::config::Config;
use crate::measure::{Measured, Timing, median, spread};
use crate::ops::{
    aggregate_group, aggregate_lookup, aggregate_top, count, equality, insert, insert_many, load, load_orders, ping,
    scan, set_k_index, transactions, ycsb, ycsb_e,
};
use crate::process::ServerProcess;
use crate::report::thousands;
use crate::shape::Shape;
use crate::workload::Workload;

/// Runs `workloads` against `servers`, loading `bench.usertable` first if one needs it.
pub(crate) async fn run_workloads(
    config: &Config,
    servers: &mut [ServerProcess],
    echo: &ServerProcess,
    workloads: &[Workload],
) -> BenchResult<Vec<Outcome>> {
    let (mut monarch, mut echoes) = (Clients::default(), Clients::default());
    let ports: Vec<u16> = servers.iter().map(|server| server.port).collect();
    if config.server_args.iter().any(|arg| arg == "--replSet") {
        initiate(&monarch.get(&ports, 1).await?).await?;
    }
    if workloads.iter().any(|w| w.needs_records()) {
        println!("loading {} records into Monarch ...", config.shape.records);
        let client = monarch.get(&ports, config.clients).await?;
        let started = Instant::now();
        load(&client.database("bench").collection("usertable"), config.shape, config.clients).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!("  loaded in {seconds:.1} s ({} docs/s)", thousands(config.shape.records as f64 / seconds));
    }
    let mut outcomes = Vec::with_capacity(workloads.len());
    for &workload in workloads {
        if let Some(status) = servers.iter_mut().find_map(ServerProcess::exited) {
            let reason = format!("monarchd exited ({status}) before it");
            println!("{reason}: {} and the remaining workloads are skipped", workload.name());
            outcomes.extend(workloads.iter().skip(outcomes.len()).map(|&w| Outcome::skipped(w, &reason)));
            break;
        }
        println!("running {} ...", workload.name());
        let clients = workload.clients(config);
        let run = WorkloadRun::prepare(workload, monarch.get(&ports, clients).await?, config).await?;
        let echo_client = echoes.get(&[echo.port], clients).await?;
        let rounds = workload.rounds(config);
        let (mut slices, mut echo_slices, mut round_ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let timing = config.timing.slice(round, rounds);
            let echo_slice = ping(&echo_client, clients, timing).await?;
            let slice = run.measure(timing).await?;
            round_ratios.push(slice.ops_per_sec / echo_slice.ops_per_sec.max(f64::MIN_POSITIVE));
            echo_slices.push(echo_slice);
            slices.push(slice);
        }
        let figures =
            Figures::Rate { measured: Measured::combine(slices)?, echo: Measured::combine(echo_slices)?, round_ratios };
        outcomes.push(Outcome { workload, figures });
    }
    monarch.shutdown().await;
    echoes.shutdown().await;
    Ok(outcomes)
}

/// One workload's result.
pub(crate) struct Outcome {
    pub(crate) workload: Workload,
    pub(crate) figures: Figures,
}

/// What a workload produced.
#[expect(clippy::large_enum_variant, reason = "a handful per run, never moved in a loop")]
pub(crate) enum Figures {
    /// Rates and latencies of the workload and of the echo pings interleaved with it, and each
    /// round's ratio of the two (operations/s over pings/s).
    Rate { measured: Measured, echo: Measured, round_ratios: Vec<f64> },
    /// Not measured, and why.
    Skipped(String),
}

impl Outcome {
    fn skipped(workload: Workload, reason: &str) -> Self {
        Self { workload, figures: Figures::Skipped(reason.to_owned()) }
    }

    /// The rates, if the workload ran.
    pub(crate) fn measured(&self) -> Option<&Measured> {
        match &self.figures {
            Figures::Rate { measured, .. } => Some(measured),
            Figures::Skipped(_) => None,
        }
    }

    /// The echo pings interleaved with it, if the workload ran.
    pub(crate) fn echo(&self) -> Option<&Measured> {
        match &self.figures {
            Figures::Rate { echo, .. } => Some(echo),
            Figures::Skipped(_) => None,
        }
    }

    /// Each round's operations/s over its echo slice's pings/s, if the workload ran.
    pub(crate) fn round_ratios(&self) -> &[f64] {
        match &self.figures {
            Figures::Rate { round_ratios, .. } => round_ratios,
            Figures::Skipped(_) => &[],
        }
    }

    /// The median of the rounds' ratios to the echo floor: the `vs echo` ratio.
    pub(crate) fn ratio_to_echo(&self) -> Option<f64> {
        median(self.round_ratios())
    }

    /// How far apart the rounds' ratios to the echo floor were, over their median.
    pub(crate) fn echo_spread(&self) -> Option<f64> {
        spread(self.round_ratios())
    }
}

/// Initiates the replica set of one the server was started as (`--server-arg --replSet`), and
/// waits until it takes writes.
async fn initiate(client: &Client) -> BenchResult<()> {
    let admin = client.database("admin");
    admin.run_command(bson::doc! { "replSetInitiate": {} }).await?;
    for _ in 0..100 {
        let hello = admin.run_command(bson::doc! { "hello": 1 }).await?;
        if hello.get_bool("isWritablePrimary").unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err("the replica set did not become primary".into())
}

/// A client of the servers on `ports`: directly connected to one, or given several (nodes
/// sharing their data, which answer as mongos), among which the driver spreads operations.
async fn connect(ports: &[u16], clients: usize) -> BenchResult<Client> {
    let hosts: Vec<String> = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
    let direct = if ports.len() == 1 { "directConnection=true&" } else { "" };
    let uri = format!(
        "mongodb://{}/?{direct}maxPoolSize={clients}&minPoolSize={clients}&serverSelectionTimeoutMS=5000\
         &appName=monarch-load",
        hosts.join(",")
    );
    Ok(Client::with_uri_str(uri).await?)
}

/// Driver clients by pool size: a pool must be as large as its workload's concurrency, or the
/// driver queues requests.
#[derive(Default)]
struct Clients {
    pools: Vec<(usize, Client)>,
}

impl Clients {
    async fn get(&mut self, ports: &[u16], size: usize) -> BenchResult<Client> {
        if let Some((_, client)) = self.pools.iter().find(|(s, _)| *s == size) {
            return Ok(client.clone());
        }
        let client = connect(ports, size).await?;
        self.pools.push((size, client.clone()));
        Ok(client)
    }

    async fn shutdown(self) {
        for (_, client) in self.pools {
            client.shutdown().await;
        }
    }
}

/// A workload ready to be measured, slice after slice: its collection, index and the next new
/// `_id` it inserts outlive each slice.
struct WorkloadRun {
    workload: Workload,
    client: Client,
    coll: Collection<Document>,
    shape: Shape,
    clients: usize,
    next_id: Arc<AtomicU64>,
}

impl WorkloadRun {
    /// Picks the collection and sets up the index the workload needs (not timed).
    async fn prepare(workload: Workload, client: Client, config: &Config) -> BenchResult<Self> {
        let db = client.database("bench");
        let usertable = db.collection("usertable");
        let (coll, shape, first_id) = match workload {
            Workload::Insert => (db.collection("inserts"), config.shape, 0),
            Workload::InsertJ => {
                let journaled = WriteConcern::builder().journal(true).build();
                let options = CollectionOptions::builder().write_concern(journaled).build();
                (db.collection_with_options("journaled", options), config.shape, 0)
            }
            Workload::InsertMany => (db.collection("batches"), config.many_shape, 0),
            Workload::EqScan => {
                set_k_index(&usertable, false).await?;
                (usertable, config.shape, 0)
            }
            Workload::EqIndex => {
                set_k_index(&usertable, true).await?;
                (usertable, config.shape, 0)
            }
            Workload::AggTop => {
                set_k_index(&usertable, true).await?;
                (usertable, config.shape, 0)
            }
            Workload::AggLookup => {
                let orders = db.collection("orders");
                load_orders(&orders, config.shape).await?;
                (orders, config.shape, 0)
            }
            Workload::YcsbE => {
                set_k_index(&usertable, true).await?;
                // Its inserts add records after the loaded ones.
                (usertable, config.shape, config.shape.records)
            }
            _ => (usertable, config.shape, 0),
        };
        let clients = workload.clients(config);
        Ok(Self { workload, client, coll, shape, clients, next_id: Arc::new(AtomicU64::new(first_id)) })
    }

    async fn measure(&self, timing: Timing) -> BenchResult<Measured> {
        let (coll, shape, clients) = (&self.coll, self.shape, self.clients);
        let next = Arc::clone(&self.next_id);
        match self.workload {
            Workload::Ping => ping(&self.client, clients, timing).await,
            Workload::YcsbA => ycsb(coll, shape, 50, clients, timing).await,
            Workload::YcsbB => ycsb(coll, shape, 95, clients, timing).await,
            Workload::YcsbC => ycsb(coll, shape, 100, clients, timing).await,
            Workload::Insert | Workload::InsertJ => insert(coll, shape, next, clients, timing).await,
            Workload::InsertMany => insert_many(coll, shape, next, clients, timing).await,
            Workload::Scan => scan(coll, shape, clients, timing).await,
            Workload::Count => count(coll, shape, clients, timing).await,
            Workload::EqScan => equality(coll, shape, shape.records, clients, timing).await,
            Workload::EqIndex => equality(coll, shape, 1, clients, timing).await,
            Workload::YcsbE => ycsb_e(coll, shape, next, clients, timing).await,
            Workload::AggGroup => aggregate_group(coll, shape, clients, timing).await,
            Workload::AggTop => aggregate_top(coll, shape, clients, timing).await,
            Workload::AggLookup => aggregate_lookup(coll, clients, timing).await,
            Workload::Txn => transactions(&self.client, coll, shape, clients, timing).await,
            Workload::All | Workload::Goals => Err(format!("{} is not a driven workload", self.workload.name()).into()),
        }
    }
}
