//! The accept loop: enforces the connection caps (all connections, and per client address)
//! and starts one task per connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::connection;
use crate::obs::Observers;
use crate::state::State;
use crate::state::counters::get;

/// What an accept loop needs.
pub struct AcceptContext {
    /// Server state.
    pub state: Arc<State>,
    /// The observers finished requests feed.
    pub observers: Arc<Observers>,
    /// One permit per allowed connection (`maxConns`).
    pub limiter: Arc<Semaphore>,
    /// Tracks connection tasks so shutdown can wait for them.
    pub connections: TaskTracker,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Accepts connections until shutdown. A connection over the cap is closed at once with a log
/// line; accept errors (e.g. out of file descriptors) are logged and retried after a pause.
pub async fn accept_loop(listener: TcpListener, context: AcceptContext) {
    let state = &context.state;
    loop {
        let accepted = tokio::select! {
            () = context.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(target: "NETWORK", id = 22955, ctx = "listener", %error, "Error accepting new connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = context.limiter.clone().try_acquire_owned() else {
            state.counters.connections.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                target: "NETWORK",
                id = 22942,
                ctx = "listener",
                remote = %remote,
                connectionCount = get(&state.counters.connections.current),
                maxConns = state.config.max_conns,
                "Connection refused because there are too many open connections"
            );
            drop(stream);
            continue;
        };
        let Some(slot) = state.abuse.admit_connection(remote.ip()) else {
            tracing::info!(
                target: "NETWORK",
                id = 7_000_310,
                ctx = "listener",
                remote = %remote,
                maxConnsPerIP = state.config.max_conns_per_ip,
                "Connection refused because its address has too many open connections"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = state.next_connection_id();
        let span = tracing::info_span!("conn", ctx = format!("conn{id}"));
        let task = connection::run(
            stream,
            remote,
            id,
            connection::Services { state: state.clone(), observers: context.observers.clone() },
            state.tls.acceptor(),
            context.shutdown.clone(),
        );
        context.connections.spawn(
            async move {
                task.await;
                drop(slot);
                drop(permit);
            }
            .instrument(span),
        );
    }
}
