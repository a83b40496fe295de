//! One connection: optional TLS handshake, then the frame loop — decode a message, run the
//! command, encode the reply — until the client leaves, sends garbage, or the server stops.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::RawBsonRef;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use monarch_wire::{Body, Compressor, DocumentBytes, Header, Message, MessageCodec, MsgFlags, OpMsg, OpReply};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::metered::Metered;
use super::tls::starts_with_tls;
use crate::cmd::{self, ClientInfo, CommandRequest, OwnedCtx};
use crate::config::TlsMode;
use crate::error::ErrorCode;
use crate::obs::{Observers, OpSummary};
use crate::op::OpGuard;
use crate::state::State;

/// Commands whose replies are never compressed (they carry credentials or negotiate
/// compression itself), per the compression specification.
const NEVER_COMPRESSED: &[&str] = &[
    "hello",
    "isMaster",
    "ismaster",
    "saslStart",
    "saslContinue",
    "getnonce",
    "authenticate",
    "createUser",
    "updateUser",
    "copydbSaslStart",
    "copydbgetnonce",
    "copydb",
];

/// What a connection works with: the shared state (for the handlers and the counters) and the
/// observers its finished requests feed.
#[derive(Clone)]
pub struct Services {
    /// The shared server state.
    pub state: Arc<State>,
    /// The observers.
    pub observers: Arc<Observers>,
}

/// Keeps the open-connection gauge right on every way out of a connection task.
struct OpenConnection<'a> {
    state: &'a State,
    remote: SocketAddr,
    id: u64,
}

impl<'a> OpenConnection<'a> {
    fn open(state: &'a State, remote: SocketAddr, id: u64) -> Self {
        let connections = &state.counters.connections;
        connections.total_created.fetch_add(1, Ordering::Relaxed);
        let count = connections.current.fetch_add(1, Ordering::Relaxed) + 1;
        if !state.params.quiet() {
            tracing::info!(target: "NETWORK", id = 22943, remote = %remote, connectionId = id, connectionCount = count, "Connection accepted");
        }
        Self { state, remote, id }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        let count = self.state.counters.connections.current.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        if !self.state.params.quiet() {
            tracing::info!(target: "NETWORK", id = 22944, remote = %self.remote, connectionId = self.id, connectionCount = count, "Connection ended");
        }
    }
}

/// Serves one accepted connection to the end.
pub async fn run(
    stream: TcpStream,
    remote: SocketAddr,
    id: u64,
    services: Services,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let _open = OpenConnection::open(&services.state, remote, id);
    let local = stream.local_addr().unwrap_or(remote);
    let stream = match tls {
        None => Either::Left(stream),
        Some(acceptor) => {
            let limit = Duration::from_millis(services.state.config.parameters.tls_handshake_timeout_millis);
            let opened = tokio::select! {
                () = shutdown.cancelled() => return,
                opened = tokio::time::timeout(limit, open_tls(stream, acceptor, &services.state, remote)) => opened,
            };
            match opened {
                Ok(Some(stream)) => stream,
                Ok(None) => return,
                Err(_) => {
                    // IMPORTANT: without this limit a peer that connects and stays silent (or
                    // stops halfway through the handshake) holds a connection slot forever.
                    tracing::info!(
                        target: "NETWORK",
                        id = 22988,
                        remote = %remote,
                        connectionId = id,
                        error = %format!("NetworkTimeout: the TLS handshake did not complete within {} ms (monarchTLSHandshakeTimeoutMillis)", limit.as_millis()),
                        "Error receiving request from client. Ending connection from remote"
                    );
                    return;
                }
            }
        }
    };
    // The subject of a client certificate the CA file verified: who MONGODB-X509 authenticates.
    let certificate_subject = match &stream {
        Either::Right(tls) => tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| crate::auth::x509::subject_name(leaf).ok()),
        Either::Left(_) => None,
    };
    let client = ClientInfo {
        certificate_subject,
        ..ClientInfo::accepted(id, remote, local, matches!(stream, Either::Right(_)))
    };
    let stream = Metered::new(stream, &services.state.counters.network);
    serve_frames(stream, client, &services, &shutdown).await;
}

/// Tells a TLS client from a plain one by its first byte and runs the TLS handshake for the
/// former; `None` when the connection ends here (a failed handshake, a plain client where TLS
/// is required, or a client that closed).
async fn open_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    state: &State,
    remote: SocketAddr,
) -> Option<Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>> {
    match starts_with_tls(&stream).await {
        Ok(true) => match acceptor.accept(stream).await {
            Ok(tls_stream) => Some(Either::Right(tls_stream)),
            Err(error) => {
                tracing::info!(target: "NETWORK", id = 22988, remote = %remote, %error, "TLS handshake failed; ending connection");
                None
            }
        },
        Ok(false) if state.config.tls.mode == TlsMode::Require => {
            tracing::info!(target: "NETWORK", id = 23256, remote = %remote, "Plain connection refused: the server requires TLS (net.tls.mode requireTLS)");
            None
        }
        Ok(false) => Some(Either::Left(stream)),
        Err(_) => None,
    }
}

async fn serve_frames<S>(stream: Metered<'_, S>, client: ClientInfo, services: &Services, shutdown: &CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let remote = client.remote;
    let connection_id = client.connection_id;
    // Shared with the handler's job on the blocking pool, one request at a time.
    let client = Arc::new(Mutex::new(client));
    let mut framed = Framed::new(stream, MessageCodec::default());
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = framed.next() => next,
        };
        let message = match next {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                tracing::info!(
                    target: "NETWORK",
                    id = 22988,
                    remote = %remote,
                    connectionId = connection_id,
                    error = %error,
                    "Error receiving request from client. Ending connection from remote"
                );
                return;
            }
        };
        let decoded_at = Instant::now();
        let decoded_len = framed.codec().last_decoded_len();
        release_large_buffer(framed.read_buffer_mut(), decoded_len);
        let first_byte = framed.get_mut().take_first_byte().unwrap_or(decoded_at);
        let network = &services.state.counters.network;
        let bytes_in = message.uncompressed_len();
        network.record_in(message.compressor, framed.codec().last_decoded_len(), bytes_in);
        // An awaitable hello or a getMore that allows exhaust is answered as a stream: kept to
        // run again.
        let exhaust = exhaust_kind(&message).map(|kind| (kind, message.clone()));
        let (outcome, tracked) = handle(message, &client, services, decoded_at, bytes_in as u64).await;
        if let Some(tracked) = &tracked {
            tracked.guard.op().add_phase(|p| &mut p.read, decoded_at.saturating_duration_since(first_byte));
        }
        let mut reply = match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::NoReply => {
                if let Some(tracked) = tracked {
                    tracked.finish(0);
                }
                continue;
            }
            Outcome::Close => return,
        };
        let streamed = exhaust.as_ref().and_then(|(kind, _)| stream_next(*kind, &mut reply));
        let reply_id = reply.header.request_id;
        if !send_reply(&mut framed, reply, tracked, network, remote).await {
            return;
        }
        let encoded_len = framed.codec().last_encoded_len();
        release_large_buffer(framed.write_buffer_mut(), encoded_len);
        if let (Some((kind, request)), Some(counter)) = (exhaust, streamed)
            && !stream_replies(&mut framed, (kind, request), (reply_id, counter), &client, services, shutdown).await
        {
            return;
        }
    }
}

/// The buffer capacity a connection keeps between messages: what most requests and replies
/// fit in. Past it, an emptied buffer is given back to the allocator instead of being kept as
/// long as the connection lives (one 48 MB insert or a 16 MiB batch would otherwise pin that
/// much memory on an idle connection).
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

/// Replaces `buffer` by a new, empty one when it holds nothing and either has grown past
/// [`KEPT_BUFFER_BYTES`] or has just carried a message of `last_len` bytes that large; the
/// next message allocates what it needs again.
fn release_large_buffer(buffer: &mut BytesMut, last_len: usize) {
    // IMPORTANT: the length test matters too: a buffer emptied by a split or an advance reports
    // only its remaining capacity, yet still holds the whole allocation of the large message.
    if buffer.is_empty() && (last_len > KEPT_BUFFER_BYTES || buffer.capacity() > KEPT_BUFFER_BYTES) {
        *buffer = BytesMut::new();
    }
}

/// Sends `reply` and finishes its request's tracking; false when the connection is gone.
async fn send_reply<S>(
    framed: &mut Framed<Metered<'_, S>, MessageCodec>,
    reply: Message,
    tracked: Option<Tracked<'_>>,
    network: &crate::state::counters::NetworkStats,
    remote: std::net::SocketAddr,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (compressor, logical) = (reply.compressor, reply.uncompressed_len());
    let writing = Instant::now();
    let sent = framed.send(reply).await;
    network.record_out(compressor, framed.codec().last_encoded_len(), logical);
    if let Some(tracked) = tracked {
        tracked.guard.op().add_phase(|p| &mut p.write, writing.elapsed());
        tracked.finish(logical as u64);
    }
    if let Err(error) = sent {
        tracing::info!(target: "NETWORK", id = 22989, remote = %remote, %error, "Error sending response to client. Ending connection from remote");
        return false;
    }
    true
}

/// A request whose replies stream when it allows exhaust (`exhaustAllowed`): each reply goes
/// with `moreToCome` and the server runs the request again, answering the previous reply,
/// until a reply ends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exhaust {
    /// An awaitable `hello` (or `isMaster`): the next reply waits for a topology change past
    /// the previous one's (or `maxAwaitTimeMS`); the stream goes on until an error or the
    /// client closes the connection.
    Hello,
    /// A `getMore`: the next batch follows at once; the stream ends with the cursor (id 0) or
    /// an error.
    GetMore,
}

/// What kind of exhaust stream `message` asks for, if any.
fn exhaust_kind(message: &Message) -> Option<Exhaust> {
    let Body::Msg(msg) = &message.body else { return None };
    if !msg.flags.exhaust_allowed() || msg.flags.more_to_come() {
        return None;
    }
    let body = msg.body.as_raw();
    let name = body.iter().next().and_then(Result::ok).map(|(name, _)| name.as_str())?;
    match name {
        "hello" | "isMaster" | "ismaster"
            if matches!(body.get("maxAwaitTimeMS"), Ok(Some(_)))
                && matches!(body.get("topologyVersion"), Ok(Some(_))) =>
        {
            Some(Exhaust::Hello)
        }
        "getMore" => Some(Exhaust::GetMore),
        _ => None,
    }
}

/// Marks a reply to stream (`moreToCome`) when the stream goes on after it, and returns what
/// the next run goes on from: a hello's topology counter (which the next reply waits past),
/// or a getMore's open cursor id. `None` for an error reply or a closed cursor, which end the
/// stream.
fn stream_next(kind: Exhaust, reply: &mut Message) -> Option<i64> {
    let Body::Msg(msg) = &mut reply.body else { return None };
    let body = msg.body.as_raw();
    let ok = matches!(body.get("ok"), Ok(Some(RawBsonRef::Double(ok))) if ok == 1.0);
    let next = match kind {
        Exhaust::Hello => match body.get("topologyVersion") {
            Ok(Some(RawBsonRef::Document(version))) => version.get_i64("counter").ok()?,
            _ => return None,
        },
        Exhaust::GetMore => match body.get("cursor") {
            Ok(Some(RawBsonRef::Document(cursor))) => cursor.get_i64("id").ok().filter(|id| *id != 0)?,
            _ => return None,
        },
    };
    if !ok {
        return None;
    }
    msg.flags = msg.flags.with(MsgFlags::MORE_TO_COME, true);
    Some(next)
}

/// Streams replies to the exhaust `request` after the first (`previous_reply`, with what the
/// stream goes on from, `next`): each answers the previous reply's request id and carries
/// `moreToCome` while the stream goes on. A hello's waits for a topology change past the
/// previous reply's counter (or `maxAwaitTimeMS`); a getMore's is the cursor's next batch.
/// Ends, with the connection still usable, when a reply ends the stream (it goes without
/// `moreToCome`); returns false when the connection is gone or the server shuts down.
async fn stream_replies<S>(
    framed: &mut Framed<Metered<'_, S>, MessageCodec>,
    (kind, request): (Exhaust, Message),
    (mut previous_reply, mut next): (i32, i64),
    client: &Arc<Mutex<ClientInfo>>,
    services: &Services,
    shutdown: &CancellationToken,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let network = &services.state.counters.network;
    loop {
        if kind == Exhaust::Hello {
            lock(client).streamed_topology = Some(next);
        }
        let bytes_in = request.uncompressed_len() as u64;
        let handled = tokio::select! {
            () = shutdown.cancelled() => None,
            handled = handle(request.clone(), client, services, Instant::now(), bytes_in) => Some(handled),
        };
        lock(client).streamed_topology = None;
        let Some((outcome, tracked)) = handled else { return false };
        let Outcome::Reply(mut reply) = outcome else { return false };
        reply.header.response_to = previous_reply;
        let following = stream_next(kind, &mut reply);
        previous_reply = reply.header.request_id;
        let remote = lock(client).remote;
        if !send_reply(framed, reply, tracked, network, remote).await {
            return false;
        }
        let encoded_len = framed.codec().last_encoded_len();
        release_large_buffer(framed.write_buffer_mut(), encoded_len);
        match following {
            Some(following) => next = following,
            None => return true,
        }
    }
}

/// A request whose reply is on its way: profiled before the reply is sent, finished (fed to
/// every observer) once written, or when dropped on an early exit (a closed connection, a
/// failed write).
struct Tracked<'a> {
    guard: OpGuard<'a>,
    services: &'a Services,
    command: &'static str,
    error: Option<ErrorCode>,
    bytes_in: u64,
    /// The profiler's slow-operation draw, once it has seen the request.
    profiled: Option<bool>,
    done: bool,
}

impl Tracked<'_> {
    /// Writes the profile entry of a request whose reply of `bytes_out` bytes is ready, on the
    /// blocking pool (storage), and waits for it.
    async fn profile(&mut self, bytes_out: u64) {
        let observers = &self.services.observers;
        if !observers.profiling() {
            return;
        }
        let (profiled, entry) = observers.before_reply(&self.summary(bytes_out));
        self.profiled = profiled;
        if let Some(entry) = entry {
            let observers = observers.clone();
            let written = self.services.state.pool.run(move || observers.profiler.write(entry)).await;
            if let Err(error) = written {
                tracing::warn!(target: "COMMAND", id = 20701, error = %error, "Cannot write a profile entry");
            }
        }
    }

    fn finish(mut self, bytes_out: u64) {
        self.record(bytes_out);
    }

    fn record(&mut self, bytes_out: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let observers = &self.services.observers;
        if let Some(entry) = observers.finish(&self.summary(bytes_out), self.profiled) {
            // No reply waits for this entry (and a `Drop` cannot wait): queued without waiting;
            // with the pool's queue full it is dropped and counted.
            let writer = observers.clone();
            if !self.services.state.pool.try_spawn(move || writer.profiler.write(entry)) {
                observers.profiler.count_dropped();
            }
        }
    }

    fn summary(&self, bytes_out: u64) -> OpSummary<'_> {
        OpSummary::of(self.guard.op(), self.command, self.error, self.bytes_in, bytes_out)
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.record(0);
    }
}

/// What the frame loop does after a message.
enum Outcome {
    /// Send this reply.
    Reply(Message),
    /// Send nothing (`moreToCome`).
    NoReply,
    /// The client broke the protocol: close the connection.
    Close,
}

/// Runs one message; returns what to send and the tracked request, if one was read.
async fn handle<'a>(
    message: Message,
    client: &Arc<Mutex<ClientInfo>>,
    services: &'a Services,
    decoded_at: Instant,
    bytes_in: u64,
) -> (Outcome, Option<Tracked<'a>>) {
    let state = &*services.state;
    let request_id = message.header.request_id;
    let compressor = message.compressor;
    let (request, legacy, more_to_come) = match message.body {
        Body::Msg(msg) => {
            let more_to_come = msg.flags.more_to_come();
            (CommandRequest::from_msg(msg), false, more_to_come)
        }
        Body::Query(query) => (CommandRequest::from_query(query), true, false),
        Body::Reply(_) => {
            let remote = lock(client).remote;
            tracing::info!(target: "NETWORK", id = 22988, remote = %remote, "Client sent OP_REPLY; ending connection");
            return (Outcome::Close, None);
        }
    };
    let active = &state.counters.connections.active;
    active.fetch_add(1, Ordering::Relaxed);
    let (reply, name, tracked) = match request {
        Ok(request) => {
            let start = request.op_start(&lock(client), decoded_at);
            let guard = state.ops.begin(start, state.config.parameters.observability);
            guard.op().add_phase(|p| &mut p.parse, decoded_at.elapsed());
            let name = request.name().to_owned();
            let ctx = OwnedCtx {
                state: services.state.clone(),
                observers: services.observers.clone(),
                client: client.clone(),
                op: guard.op().clone(),
            };
            let executed = cmd::execute(&ctx, Arc::new(request)).await;
            let tracked = Tracked {
                guard,
                services,
                command: executed.command,
                error: executed.error,
                bytes_in,
                profiled: None,
                done: false,
            };
            (executed.reply, Some(name), Some(tracked))
        }
        Err(error) => (cmd::Reply::from(error.to_reply()), None, None),
    };
    active.fetch_sub(1, Ordering::Relaxed);
    let (close_requested, remote) = {
        let client = lock(client);
        (client.close_requested, client.remote)
    };
    if close_requested {
        tracing::info!(target: "NETWORK", id = 22988, remote = %remote, "Closing the connection as a fail point asked");
        return (Outcome::Close, tracked);
    }
    if more_to_come {
        return (Outcome::NoReply, tracked);
    }
    let compressor = compressor.filter(|_| name.as_deref().is_none_or(|n| !NEVER_COMPRESSED.contains(&n)));
    let encoding = Instant::now();
    let reply = reply_message(state, request_id, reply, legacy, compressor);
    let mut tracked = tracked;
    if let Some(tracked) = &mut tracked {
        tracked.guard.op().add_phase(|p| &mut p.encode, encoding.elapsed());
        // IMPORTANT: before the reply leaves; clients read `system.profile` right after it.
        tracked.profile(reply.uncompressed_len() as u64).await;
    }
    (Outcome::Reply(reply), tracked)
}

/// The connection's client record, for a moment (never across an `await`).
fn lock(client: &Mutex<ClientInfo>) -> std::sync::MutexGuard<'_, ClientInfo> {
    client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply_message(
    state: &State,
    response_to: i32,
    reply: cmd::Reply,
    legacy: bool,
    compressor: Option<Compressor>,
) -> Message {
    // Raw replies (cursor batches) go out as built; owned ones are encoded here, once.
    let document = match reply.encode() {
        Ok(raw) => DocumentBytes::from(raw),
        Err(error) => match DocumentBytes::try_from(&error.to_reply()) {
            Ok(document) => document,
            // The fixed error reply always encodes; this only keeps the type honest.
            Err(_) => DocumentBytes::from(bson::rawdoc! { "ok": 0.0 }),
        },
    };
    let body = if legacy { Body::Reply(OpReply::command_reply(document)) } else { Body::Msg(OpMsg::new(document)) };
    Message { header: Header { request_id: state.next_request_id(), response_to }, body, compressor }
}
