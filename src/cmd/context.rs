//! What a handler may use: the shared server state, the observers' settings and statistics,
//! its own connection and its own operation. Never the socket, the codec or the metrics
//! registry. Everything here is `Send`, so a handler may run on another thread.

use std::net::SocketAddr;

use bson::Document;
use monarch_wire::Compressor;

use crate::obs::Observers;
use crate::op::Operation;
use crate::state::State;

/// The connection a request arrived on, as handlers see it (never the socket itself).
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The server-wide connection number (`connectionId`, `conn12` in logs).
    pub connection_id: u64,
    /// The client's address.
    pub remote: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The `client` document of the first hello, once received.
    pub metadata: Option<Document>,
    /// Compressors negotiated in hello, in server preference order.
    pub compressors: Vec<Compressor>,
    /// Set by a command (a test fail point) that wants the connection closed without a reply.
    pub close_requested: bool,
}

impl ClientInfo {
    /// The application name the driver sent in its first hello (`client.application.name`).
    pub fn app_name(&self) -> Option<&str> {
        self.metadata.as_ref()?.get_document("application").ok()?.get_str("name").ok()
    }
}

/// Everything a handler works through.
pub struct RequestCtx<'a> {
    /// Server-wide state: storage, configuration, cursors, sessions, plan cache, registries.
    pub state: &'a State,
    /// The profiler's and slow-query log's settings and the latency statistics (`profile`,
    /// `serverStatus.opLatencies`, `monarchQueryStats`, `$collStats`).
    pub observers: &'a Observers,
    /// This connection.
    pub client: &'a mut ClientInfo,
    /// This request, as `currentOp` sees it; handlers report their work to it.
    pub op: &'a std::sync::Arc<Operation>,
}

// A handler may later run on another thread than its connection's task: keep the context
// `Send` (no `Rc`, no borrow of something tied to the connection's task).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<RequestCtx<'static>>();
};
