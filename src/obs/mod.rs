//! Observability: mongod-shaped logs and the counters behind `serverStatus`.

pub mod log;
pub mod stats;
