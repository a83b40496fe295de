//! Networking: the listeners (the wire port with its connection cap, and the admin HTTP
//! port with the web console), TLS termination, and the per-connection frame loop that hands
//! each request to the command layer and its summary to the observers. Nothing here
//! interprets commands.

pub mod admin;
pub mod connection;
mod console;
mod debug_pprof;
mod debug_tasks;
mod flame_graph;
mod http;
pub mod listener;
mod metered;
pub mod tls;
