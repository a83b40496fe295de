//! Monarch: a database server that speaks the MongoDB wire protocol.
//!
//! A request walks down the modules in this order:
//! - [`net`] accepts a connection (within `maxConns`), terminates TLS, and frames the byte
//!   stream into messages with the `monarch_wire` codec;
//! - [`cmd`] reads the command, finds it in the one command table, runs its handler and
//!   builds the reply (or mongod's error shape from an [`error::Error`]);
//! - [`query`] is the pure query language the handlers use: BSON order, filters,
//!   projections, sorts and updates;
//! - [`storage`] is the only module that touches fjall: catalog, documents, durability;
//! - [`obs`] logs in mongod's JSON shape and counts everything for `serverStatus`.
//!
//! [`config`] merges flags, environment and config file once at start; [`server`] owns the
//! shared state, startup and graceful shutdown; [`session`] keeps logical sessions;
//! [`parameters`] holds the server parameters `setParameter` changes at runtime.

pub mod cmd;
pub mod config;
pub mod cursor;
pub mod error;
pub mod failpoint;
pub mod host;
pub mod net;
pub mod obs;
pub mod parameters;
pub mod query;
pub mod server;
pub mod session;
pub mod storage;
