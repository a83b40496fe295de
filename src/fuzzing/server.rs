//! The targets that need a server: every command of the table run through the dispatcher, and
//! aggregation pipelines run over fuzzed documents, both on an in-process server whose storage
//! lives in a directory the caller owns (a temporary one).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bson::{RawBsonRef, RawDocumentBuf};

use super::{leading_document, query_targets};
use crate::cmd::{self, ClientInfo, CommandRequest, OwnedCtx};
use crate::config::Config;
use crate::exec::pipeline::PipelineEnv;
use crate::log::LogSink;
use crate::obs::Observers;
use crate::state::State;
use crate::state::cursors::DocumentStream;
use crate::state::pool::BlockingPool;
use crate::storage::Storage;

/// Commands the command target never runs, because they would change what every later
/// execution sees for the rest of the process (a fail point that blocks or fails commands, a
/// member stepped down or turned into a replica set, parameters such as cursor timeouts): the
/// fuzzer needs each input to behave the same whenever it is run.
const EXCLUDED: &[&str] =
    &["configureFailPoint", "replSetInitiate", "replSetReconfig", "replSetStepDown", "setParameter"];

/// Fields the command target removes from every body: they make a command wait for news
/// (an awaitable `hello`, a tailable `getMore`) for as long as the input asks.
const WAITING_FIELDS: &[&str] = &["maxAwaitTimeMS"];

/// The blocking stages of fuzzed pipelines may hold this much (mongod's default is 100 MB):
/// enough to reach the limit checks, little enough for libFuzzer's memory limit.
const PIPELINE_MEMORY_BYTES: u64 = 16 * 1024 * 1024;

/// The address every fuzzed command comes from.
const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

/// At most this many documents are read from a fuzzed pipeline's output.
const PIPELINE_OUTPUT: usize = 256;

/// An in-process server without sockets: state, observers and a runtime for the dispatcher.
pub struct Harness {
    state: Arc<State>,
    observers: Arc<Observers>,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    /// A server with the default configuration (test commands enabled, so that they are
    /// fuzzed too), a silent log and its storage in `dbpath`.
    ///
    /// # Errors
    /// What went wrong, as text: the configuration, the storage, the pool or the runtime.
    pub fn open(dbpath: &Path) -> Result<Self, String> {
        let config = Config::from_args(["monarchd", "--setParameter", "enableTestCommands=1"])
            .map_err(|e| format!("configuration: {e}"))?;
        let storage = Arc::new(Storage::open(dbpath).map_err(|e| format!("storage: {e}"))?);
        let log = LogSink::new(Box::new(std::io::sink()));
        let observers = Observers::new(&config, log.clone(), storage.clone());
        let pool = BlockingPool::new(1, 16).map_err(|e| format!("pool: {e}"))?;
        let state = Arc::new(State::new(
            config,
            log,
            storage,
            pool,
            cmd::COMMANDS.len(),
            crate::state::tls::TlsCertificates::disabled(),
        ));
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("runtime: {e}"))?;
        Ok(Self { state, observers: Arc::new(observers), runtime })
    }

    /// A client on loopback, as a fresh connection.
    fn client(&self) -> ClientInfo {
        let addr = SocketAddr::from((LOOPBACK, 27400));
        ClientInfo::accepted(self.state.next_connection_id(), addr, addr, false)
    }

    /// Runs the `OP_MSG` body `body` through the dispatcher as a fresh connection would.
    fn run(&self, body: RawDocumentBuf) {
        let Ok(request) = CommandRequest::from_msg(monarch_wire::OpMsg::new(body.into())) else { return };
        let client = self.client();
        let listed = self.state.config.parameters.observability;
        let guard = self.state.ops.begin(request.op_start(&client, std::time::Instant::now()), listed);
        let ctx = OwnedCtx {
            state: self.state.clone(),
            observers: self.observers.clone(),
            client: Arc::new(Mutex::new(client)),
            op: guard.op().clone(),
        };
        let executed = self.runtime.block_on(cmd::execute(&ctx, Arc::new(request)));
        // Every input comes from the same address: forget its failed authentications, whose
        // growing delay (up to seconds) would slow every later input and make them depend on
        // the ones before.
        self.state.abuse.auth_succeeded(LOOPBACK.into());
        assert!(
            executed.error != Some(crate::error::ErrorCode::InternalError),
            "a handler failed inside: {:?}",
            executed.reply.to_document()
        );
    }
}

/// Every command of the table on an arbitrary body: the first byte picks the command (so each
/// row is reached whatever the body), the rest is a BSON document whose first field's value
/// becomes the command's value and whose other fields its arguments. `$db` is `fuzz` unless
/// the body names a database. A handler must answer with a reply or an error, and never fail
/// inside (the dispatcher turns a panic into `InternalError`, which is a bug here).
pub fn command(harness: &Harness, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some(spec) = cmd::COMMANDS.get(usize::from(selector) % cmd::COMMANDS.len()) else { return };
    if EXCLUDED.contains(&spec.name) {
        return;
    }
    let Some((args, _)) = leading_document(rest) else { return };
    let Ok(name) = <&bson::raw::CStr>::try_from(spec.name) else { return };
    let mut fields = args.iter().map_while(Result::ok);
    let value = fields.next().map_or(RawBsonRef::Int32(1), |(_, value)| value);
    let mut body = RawDocumentBuf::new();
    body.append(name, value);
    let mut db = None;
    for (key, value) in fields {
        match key.as_str() {
            "$db" => db = Some(value),
            k if WAITING_FIELDS.contains(&k) || k == spec.name => {}
            _ => body.append(key, value),
        }
    }
    body.append(bson::raw::cstr!("$db"), db.unwrap_or(RawBsonRef::String("fuzz")));
    harness.run(body);
}

/// The aggregation pipeline runner: the input's leading document read as an array of stages,
/// run over the documents after it and the samples, at most [`PIPELINE_OUTPUT`] results read.
/// Joins (`$lookup`, `$unionWith`) read, and `$out`/`$merge` write, the harness's storage.
pub fn pipeline(harness: &Harness, data: &[u8]) {
    let Some((spec, rest)) = leading_document(data) else { return };
    let stages: Vec<RawBsonRef<'_>> = spec.iter().map_while(Result::ok).map(|(_, stage)| stage).collect();
    let env = Arc::new(PipelineEnv::detached(harness.state.storage.clone(), "fuzz", false, PIPELINE_MEMORY_BYTES));
    let input: DocumentStream = Box::new(query_targets(rest, 4).into_iter().map(Ok));
    if crate::exec::pipeline::check_positions(&stages).is_err() {
        return;
    }
    let Ok(output) = crate::exec::pipeline::run(input, &stages, &env) else { return };
    for _ in output.take(PIPELINE_OUTPUT) {}
}
