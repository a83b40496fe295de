//! The floors measured in one run: the engine's, before Monarch starts (its batch floor after
//! Monarch stops, for the bytes `insert-many` wrote), and the echo server's, gathered from the
//! slices interleaved with the workloads.

use crate::BenchResult;
use crate::config::Config;
use crate::engine::Engine;
use crate::measure::Measured;
use crate::postgres_floor::PostgresFloor;
use crate::run::Outcome;
use crate::workload::{Basis, Floor, FloorRun, Workload};

/// The floors measured in this run.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    pub(crate) measured: Vec<(FloorRun, Measured)>,
}

impl Floors {
    /// Adds the echo floor at each client count: every echo slice of the run at that count.
    pub(crate) fn add_echo(&mut self, outcomes: &[Outcome], config: &Config) -> BenchResult<()> {
        let clients = |outcome: &Outcome| outcome.workload.clients(config);
        let mut counts: Vec<usize> = outcomes.iter().filter(|o| o.echo().is_some()).map(clients).collect();
        counts.sort_unstable();
        counts.dedup();
        for threads in counts {
            let slices: Vec<Measured> =
                outcomes.iter().filter(|o| clients(o) == threads).filter_map(|o| o.echo().cloned()).collect();
            self.measured.push((FloorRun { floor: Floor::Echo, threads }, Measured::combine(slices)?));
        }
        self.measured.sort_by_key(|(run, _)| *run);
        Ok(())
    }

    fn get(&self, floor: Floor, threads: usize) -> Option<&Measured> {
        self.measured.iter().find(|(run, _)| *run == FloorRun { floor, threads }).map(|(_, m)| m)
    }

    /// The floor rate `basis` stands for at `threads`, and how to name it.
    pub(crate) fn rate(&self, basis: Basis, threads: usize) -> Option<(String, f64)> {
        match basis {
            Basis::Floor(floor) => self.get(floor, threads).map(|m| (floor.name().to_owned(), m.item_rate())),
            Basis::Mix { read_pct } => {
                let read = self.get(Floor::EngineRead, threads)?.item_rate();
                let write = self.get(Floor::EngineWrite, threads)?.item_rate();
                let r = read_pct as f64 / 100.0;
                let blended = 1.0 / (r / read + (1.0 - r) / write);
                Some((format!("engine {read_pct}/{} read/write", 100 - read_pct), blended))
            }
            Basis::None => None,
        }
    }

    /// Measures fjall's batch floor for the same bytes as `insert-many` wrote in its measured
    /// window (as many batches of as many documents of the same size, from as many threads),
    /// once Monarch has stopped: a floor measured for a fixed time would write more or fewer
    /// bytes than Monarch did, and meet more or fewer of fjall's flushes and compactions.
    pub(crate) fn add_engine_batch(&mut self, config: &Config, outcomes: &[Outcome]) -> BenchResult<()> {
        let Some(measured) = outcomes.iter().find(|o| o.workload == Workload::InsertMany).and_then(Outcome::measured)
        else {
            return Ok(());
        };
        if measured.ops == 0 {
            return Ok(());
        }
        let threads = Workload::InsertMany.clients(config);
        println!("measuring the engine batch floor, {} batches from {threads} threads ...", measured.ops);
        let engine = Engine::open(config.shape, config.many_shape, false)?;
        let run = FloorRun { floor: Floor::EngineBatch, threads };
        self.measured.push((run, engine.batch_writes(threads, measured.ops)?));
        self.measured.sort_by_key(|(run, _)| *run);
        Ok(())
    }

    /// Measures the raw PostgreSQL floors when `--pg-floor` names a database, before Monarch
    /// starts, at the run's client count.
    pub(crate) fn add_postgres(&mut self, config: &Config) -> BenchResult<()> {
        let Some(uri) = &config.pg_floor else { return Ok(()) };
        println!("loading the PostgreSQL floor ({} records) ...", config.shape.records);
        let postgres = PostgresFloor::open(uri, config.shape, config.clients)?;
        for floor in [Floor::PostgresRead, Floor::PostgresWrite] {
            println!("measuring the {} floor, {} connections ...", floor.name(), config.clients);
            let run = FloorRun { floor, threads: config.clients };
            self.measured.push((run, postgres.measure(floor, config.timing)?));
        }
        self.measured.sort_by_key(|(run, _)| *run);
        Ok(())
    }

    /// Measures the engine floors in `engine_needs`, before Monarch starts: interleaving them
    /// with Monarch's workloads would let each side's background flushes and compactions run
    /// during the other's measurement.
    pub(crate) fn measure_engine(config: &Config, engine_needs: &[FloorRun]) -> BenchResult<Self> {
        let mut floors = Self::default();
        if engine_needs.is_empty() {
            return Ok(floors);
        }
        let load = engine_needs.iter().any(|r| r.floor.needs_records());
        if load {
            println!("loading the engine floor ({} records) ...", config.shape.records);
        }
        let engine = Engine::open(config.shape, config.many_shape, load)?;
        for &run in engine_needs {
            println!("measuring the {} floor, {} threads ...", run.floor.name(), run.threads);
            floors.measured.push((run, engine.measure(run.floor, run.threads, config.timing)?));
        }
        Ok(floors)
    }
}
