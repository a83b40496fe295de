//! A server for unit tests, without sockets: the shared state and the observers over storage
//! in a temporary directory, and commands run through the dispatcher as a connection would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::cmd::{self, ClientInfo, CommandRequest, OwnedCtx};
use crate::config::Config;
use crate::log::LogSink;
use crate::obs::Observers;
use crate::state::State;
use crate::state::pool::BlockingPool;
use crate::storage::Storage;

/// Test state that owns its temporary data directory (removed when dropped).
pub(crate) struct TestServer {
    state: Arc<State>,
    observers: Arc<Observers>,
    /// Drives the dispatcher, which awaits the blocking pool and journal syncs.
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestServer {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl TestServer {
    /// Default configuration, a silent log and storage in a temporary directory.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let config = Config::from_args(["monarchd"]).unwrap_or_else(|e| panic!("default config: {e}"));
        let storage = Arc::new(Storage::open(dir.path()).unwrap_or_else(|e| panic!("storage: {e}")));
        let log = LogSink::new(Box::new(std::io::sink()));
        let observers = Observers::new(&config, log.clone(), storage.clone());
        let pool = BlockingPool::new(2, 16).unwrap_or_else(|e| panic!("pool: {e}"));
        let state = Arc::new(State::new(
            config,
            log,
            storage,
            pool,
            cmd::COMMANDS.len(),
            crate::state::tls::TlsCertificates::disabled(),
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        Self { state, observers: Arc::new(observers), runtime, _dir: dir }
    }

    /// A client on loopback.
    pub(crate) fn test_client(&self) -> ClientInfo {
        let addr = SocketAddr::from(([127, 0, 0, 1], 50000));
        ClientInfo::accepted(self.state.next_connection_id(), addr, addr, false)
    }

    /// Runs the command `body` (an `OP_MSG` body) through the dispatcher as `client`.
    pub(crate) fn run_command_as(&self, client: &mut ClientInfo, body: bson::Document) -> bson::Document {
        let bytes = monarch_wire::DocumentBytes::try_from(&body).unwrap_or_else(|e| panic!("test body: {e}"));
        let request =
            CommandRequest::from_msg(monarch_wire::OpMsg::new(bytes)).unwrap_or_else(|e| panic!("test request: {e}"));
        let listed = self.state.config.parameters.observability;
        let guard = self.state.ops.begin(request.op_start(client, std::time::Instant::now()), listed);
        let ctx = OwnedCtx {
            state: self.state.clone(),
            observers: self.observers.clone(),
            client: Arc::new(Mutex::new(client.clone())),
            op: guard.op().clone(),
        };
        let reply = self.runtime.block_on(cmd::execute(&ctx, Arc::new(request))).reply;
        let reply = reply.to_document().unwrap_or_else(|e| panic!("test reply: {e}"));
        *client = ctx.lock_client().clone();
        reply
    }

    /// Runs the command `body` on a fresh test connection.
    pub(crate) fn run_command(&self, body: bson::Document) -> bson::Document {
        let mut client = self.test_client();
        self.run_command_as(&mut client, body)
    }

    /// What `/metrics` would serve now.
    pub(crate) fn metrics_text(&self) -> String {
        let figures = crate::net::admin::figures(&self.state);
        self.observers.metrics_text(&figures, &self.state.storage, &self.state.config.dbpath)
    }
}
