//! Networking: the accept loop with its connection cap, TLS termination, and the per-connection
//! frame loop. Nothing here interprets commands.

pub mod connection;
pub mod listener;
mod metered;
pub mod tls;
