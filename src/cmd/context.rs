//! What a handler may use: the shared server state, the observers' settings and statistics,
//! its own connection and its own operation. Never the socket, the codec or the metrics
//! registry. Everything here is `Send`, so a handler may run on another thread: handlers that
//! may touch storage run on the blocking pool, from an [`OwnedCtx`] their job holds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bson::Document;
use monarch_wire::Compressor;

use crate::obs::Observers;
use crate::op::Operation;
use crate::state::State;
use crate::storage::DurabilityTicket;

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
    /// The subject of the client's verified certificate (RFC 2253), when it presented one.
    pub certificate_subject: Option<String>,
    /// The `client` document of the first hello, once received.
    pub metadata: Option<Document>,
    /// Compressors negotiated in hello, in server preference order.
    pub compressors: Vec<Compressor>,
    /// Set by a command (a test fail point) that wants the connection closed without a reply.
    pub close_requested: bool,
    /// Who the connection authenticated as.
    pub auth: crate::auth::Session,
    /// In an exhaust `hello` stream, the topology counter of the last reply sent: the next
    /// reply waits for a change past it, as mongod puts the previous reply's
    /// `topologyVersion` in place of the request's.
    pub streamed_topology: Option<i64>,
}

impl ClientInfo {
    /// A connection as it is accepted: before its hello and authentication.
    pub fn accepted(connection_id: u64, remote: SocketAddr, local: SocketAddr, tls: bool) -> Self {
        Self {
            connection_id,
            remote,
            local,
            tls,
            certificate_subject: None,
            metadata: None,
            compressors: Vec::new(),
            close_requested: false,
            auth: crate::auth::Session::default(),
            streamed_topology: None,
        }
    }

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
    pub op: &'a Arc<Operation>,
    /// What the reply waits for once the handler has returned (see [`ReplyWait`]); set
    /// through [`RequestCtx::reply_after_sync`].
    pub wait: Option<ReplyWait>,
    /// The handler runs again after its [`ReplyWait::TopologyChange`]: it builds the reply
    /// now instead of waiting again.
    pub awaited: bool,
    /// The open transaction a statement of a multi-document transaction runs in (see
    /// `cmd::transactions`); a handler that fails with it taken out aborts it.
    pub txn: Option<Box<crate::storage::Transaction>>,
    /// The view of a snapshot read (`readConcern: {level: "snapshot"}` outside a
    /// transaction) and the cluster time it reads at (see `cmd::snapshot_reads`).
    pub snapshot_read: Option<(crate::storage::ReadView, bson::Timestamp)>,
    /// The session (`lsid`) the request runs in, if any.
    pub session: Option<bson::Uuid>,
}

impl RequestCtx<'_> {
    /// The view a statement of a transaction reads (its snapshot with its own writes), or a
    /// snapshot read's; `None` otherwise, where each read takes a snapshot of its own.
    pub fn read_view(&self) -> Option<crate::storage::ReadView> {
        match (&self.txn, &self.snapshot_read) {
            (Some(txn), _) => Some(txn.view()),
            (None, Some((view, _))) => Some(view.clone()),
            (None, None) => None,
        }
    }

    /// The collection at `ns`: one this request's transaction created (which only its own
    /// statements see), else the catalog's.
    pub fn collection(&self, ns: &crate::storage::Namespace) -> Option<Arc<crate::storage::Collection>> {
        self.txn.as_ref().and_then(|txn| txn.created_collection(ns)).or_else(|| self.state.storage.collection(ns))
    }

    /// The cluster time a snapshot read reads at: its reply reports it as `atClusterTime`.
    pub fn snapshot_time(&self) -> Option<bson::Timestamp> {
        self.snapshot_read.as_ref().map(|(_, at)| *at)
    }

    /// Makes the reply wait until the batch with journal `ticket` is on disk (`j: true`). The
    /// wait happens after the handler returns, without holding a thread; if the sync fails, the
    /// reply becomes its error.
    pub fn reply_after_sync(&mut self, ticket: DurabilityTicket) {
        self.wait = Some(ReplyWait::Durable(ticket));
    }

    /// Builds the reply again once a capped collection has gained documents since the count
    /// `since`, or `deadline` has come (an `awaitData` `getMore`), without holding a thread.
    pub fn reply_after_capped_insert(&mut self, since: u64, deadline: std::time::Instant) {
        self.wait = Some(ReplyWait::CappedInsert { since, deadline });
    }

    /// Builds the reply again once the topology counter is past `counter` or `deadline` has
    /// come (an awaitable `hello`), without holding a thread.
    pub fn reply_after_topology_change(&mut self, counter: i64, deadline: std::time::Instant) {
        self.wait = Some(ReplyWait::TopologyChange { counter, deadline });
    }

    /// Holds the reply, success or error, for `delay` (a failed authentication's slowdown),
    /// without holding a thread.
    pub fn reply_after(&mut self, delay: std::time::Duration) {
        if !delay.is_zero() {
            self.wait = Some(ReplyWait::Delay(delay));
        }
    }
}

/// What a reply waits for after its handler has returned and before it is sent. The
/// connection's task awaits it, so the wait holds no thread: neither a runtime worker nor a
/// pool worker.
///
/// A journal sync (`j: true`), a delay, or a topology change: an awaitable `hello`
/// (`topologyVersion` with `maxAwaitTimeMS`) returns "wait for a topology change or the
/// deadline", and its handler runs again to build the reply. An `awaitData` `getMore` that
/// finds nothing returns "wait for an insert into a capped collection or `maxTimeMS`", then
/// fills its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyWait {
    /// The batch with this journal ticket is on disk.
    Durable(DurabilityTicket),
    /// This long has passed (the reply, even an error, is held back).
    Delay(std::time::Duration),
    /// The topology counter is past `counter`, or `deadline` has come; then the handler runs
    /// again with [`RequestCtx::awaited`] set.
    TopologyChange {
        /// The counter the client knows.
        counter: i64,
        /// When to answer anyway (`maxAwaitTimeMS` from the request's start).
        deadline: std::time::Instant,
    },
    /// A capped collection gained documents since the insert count was `since`, or
    /// `deadline` has come; then the handler runs again (an `awaitData` `getMore`).
    CappedInsert {
        /// The count of capped inserts read before the batch found nothing.
        since: u64,
        /// When to answer with an empty batch anyway.
        deadline: std::time::Instant,
    },
}

/// A request's context in owned form: what a handler's job on the blocking pool holds, so the
/// handler borrows nothing from its connection's task, which may go away (a closed connection,
/// shutdown) while the job runs. Cloning it is cheap (shared pointers).
#[derive(Clone)]
pub struct OwnedCtx {
    /// Server-wide state.
    pub state: Arc<State>,
    /// The observers' settings and statistics.
    pub observers: Arc<Observers>,
    /// This connection; locked for the handler's run (one request at a time per connection).
    pub client: Arc<Mutex<ClientInfo>>,
    /// This request.
    pub op: Arc<Operation>,
}

impl OwnedCtx {
    /// Runs `f` with the borrowed context; returns its result and what the reply must wait for.
    pub fn with<R>(&self, f: impl FnOnce(&mut RequestCtx<'_>) -> R) -> (R, Option<ReplyWait>) {
        self.with_awaited(false, f)
    }

    /// As [`OwnedCtx::with`], for a handler that runs again after its wait (`awaited`).
    pub fn with_awaited<R>(&self, awaited: bool, f: impl FnOnce(&mut RequestCtx<'_>) -> R) -> (R, Option<ReplyWait>) {
        let mut client = self.lock_client();
        let mut ctx = RequestCtx {
            state: &self.state,
            observers: &self.observers,
            client: &mut client,
            op: &self.op,
            wait: None,
            awaited,
            txn: None,
            snapshot_read: None,
            session: None,
        };
        let result = f(&mut ctx);
        (result, ctx.wait)
    }

    /// The connection, for a moment (never across an `await`).
    pub fn lock_client(&self) -> std::sync::MutexGuard<'_, ClientInfo> {
        // A handler that panicked while holding it left it consistent: fields are only set.
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// A handler may later run on another thread than its connection's task: keep the context
// `Send` (no `Rc`, no borrow of something tied to the connection's task).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<RequestCtx<'static>>();
    assert_send::<OwnedCtx>();
};
