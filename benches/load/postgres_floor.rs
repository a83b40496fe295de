//! The raw PostgreSQL floors (`--pg-floor URI`): the engine floors' point reads and
//! one-record writes, sent by the blocking `postgres` client straight to a table of the same
//! keys and documents, one connection per thread. They are what the PostgreSQL storage
//! engine's figures are made of: one Monarch operation costs several of these round trips.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use postgres::types::Type;
use postgres::{Client, NoTls};

use crate::BenchResult;
use crate::measure::{Measured, Timing, drive_threads};
use crate::shape::{KEY_SALT, Shape, engine_key, random};
use crate::workload::Floor;

/// The floor's tables: the loaded records, and the writes' own.
const RECORDS: &str = "monarch_bench_floor";
const WRITES: &str = "monarch_bench_floor_writes";

/// Connections to the database at `--pg-floor`, with its table loaded.
pub(crate) struct PostgresFloor {
    clients: Vec<Mutex<Client>>,
    shape: Shape,
}

impl PostgresFloor {
    /// Connects `threads` clients, and creates and loads the tables afresh.
    pub(crate) fn open(uri: &str, shape: Shape, threads: usize) -> BenchResult<Self> {
        let mut clients = (0..threads).map(|_| Client::connect(uri, NoTls)).collect::<Result<Vec<_>, _>>()?;
        let loader = clients.first_mut().ok_or("at least one thread")?;
        for table in [RECORDS, WRITES] {
            loader.batch_execute(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (k bytea PRIMARY KEY, v bytea NOT NULL)"
            ))?;
        }
        let sql = format!("INSERT INTO {RECORDS} SELECT * FROM unnest($1::bytea[], $2::bytea[])");
        for first in (0..shape.records).step_by(10_000) {
            let ids = first..shape.records.min(first + 10_000);
            let keys: Vec<Vec<u8>> = ids.clone().map(engine_key).collect();
            let values = ids.map(|id| shape.bytes(id)).collect::<BenchResult<Vec<_>>>()?;
            loader.execute_typed(&sql, &[(&keys, Type::BYTEA_ARRAY), (&values, Type::BYTEA_ARRAY)])?;
        }
        loader.batch_execute(&format!("VACUUM ANALYZE {RECORDS}"))?;
        Ok(Self { clients: clients.into_iter().map(Mutex::new).collect(), shape })
    }

    /// Measures `floor` (a read or a write) from as many threads as it has clients.
    pub(crate) fn measure(&self, floor: Floor, timing: Timing) -> BenchResult<Measured> {
        let threads = self.clients.len();
        let client = |worker: usize| self.clients.get(worker).map(|c| c.lock().unwrap_or_else(PoisonError::into_inner));
        match floor {
            Floor::PostgresRead => {
                let sql = format!("SELECT v FROM {RECORDS} WHERE k = $1");
                drive_threads(threads, timing, 1, |worker, seq| {
                    let key = engine_key(random(worker, seq, KEY_SALT) % self.shape.records);
                    let sql = &sql;
                    move || {
                        let mut client = client(worker).ok_or("no client for the thread")?;
                        let rows = client.query_typed(sql, &[(&key, Type::BYTEA)]).map_err(|e| e.to_string())?;
                        let row = rows.first().ok_or("a loaded key is missing")?;
                        black_box(row.get::<_, &[u8]>(0));
                        Ok(())
                    }
                })
            }
            Floor::PostgresWrite => {
                let sql = format!("INSERT INTO {WRITES} VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v");
                let next = AtomicU64::new(0);
                drive_threads(threads, timing, 1, |worker, _| {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    let (key, value) = (engine_key(id), self.shape.bytes(id % self.shape.records));
                    let sql = &sql;
                    move || {
                        let value = value.map_err(|e| e.to_string())?;
                        let mut client = client(worker).ok_or("no client for the thread")?;
                        client
                            .execute_typed(sql, &[(&key, Type::BYTEA), (&value, Type::BYTEA)])
                            .map_err(|e| e.to_string())?;
                        Ok(())
                    }
                })
            }
            _ => Err(format!("{} is not a PostgreSQL floor", floor.name()).into()),
        }
    }
}
