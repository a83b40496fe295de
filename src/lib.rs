//! Monarch: a database server that speaks the MongoDB wire protocol.
//!
//! A request walks down the layers in this order (each imports only those below it):
//! - [`net`] accepts a connection (within `maxConns`), terminates TLS, frames the byte stream
//!   into messages with the `monarch_wire` codec, and serves the admin HTTP port;
//! - [`cmd`] reads the command, finds it in the one command table, parses its typed arguments
//!   once, runs its handler and builds the reply (or mongod's error shape from an
//!   [`error::Error`]);
//! - [`exec`] plans and runs queries: the planner and its cache, scans, executor stages,
//!   cursors and the aggregation pipeline runner;
//! - [`obs`] feeds each finished request's summary to metrics, the slow-query log, the
//!   profiler and the latency statistics;
//! - [`state`] is the shared server state (storage handle, configuration, registries), with
//!   [`op`] (the operations in flight) and [`log`] below it;
//! - [`storage`] is the only module that touches fjall (inside it, only its engine module):
//!   catalog, documents, indexes, durability, behind an engine-shaped boundary;
//! - [`query`] is the pure query language: BSON order, filters, projections, sorts, updates;
//!   [`auth`] is the pure side of authentication (SCRAM).
//!
//! [`backup`] takes consistent backups of a running server, verifies them and restores them
//! offline (between `storage` and `cmd`).
//!
//! [`config`] merges flags, environment and config file at start; [`server`] builds the
//! state and the observers, starts the listeners and background tasks, and shuts down
//! gracefully; [`reload`] reads the configuration again on SIGHUP and applies what can change
//! while serving.

pub mod auth;
pub mod backup;
pub mod cmd;
pub mod config;
pub mod error;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod log;
pub mod net;
pub mod obs;
pub mod op;
pub mod pem;
pub mod query;
pub mod reload;
pub mod repl;
pub mod server;
pub mod state;
pub mod storage;
pub mod version;

#[cfg(test)]
mod reference_docs;
#[cfg(test)]
mod testkit;
