//! The floors measured in one run: the engine's, before Monarch starts, and the echo
//! server's, gathered from the slices interleaved with the workloads.

use crate::BenchResult;
use crate::config::Config;
use crate::engine::Engine;
use crate::measure::Measured;
use crate::run::Outcome;
use crate::workload::{Basis, Floor, FloorRun};

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
