//! The handshake: `hello` and the legacy `isMaster`/`ismaster`.

use std::time::{Duration, Instant};

use bson::{Bson, DateTime, Document, RawBsonRef, RawDocument};
use monarch_wire::{MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE};

use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::sessions::SESSION_TIMEOUT;

/// The most documents one write command may carry.
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// Wire versions: 0 (oldest) to 21 (MongoDB 7.0).
pub const MIN_WIRE_VERSION: i32 = 0;
/// See [`MIN_WIRE_VERSION`].
pub const MAX_WIRE_VERSION: i32 = 21;

/// `hello`: answers with `isWritablePrimary`.
pub fn hello(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    handshake(ctx, req, "isWritablePrimary")
}

/// `isMaster` / `ismaster`: answers with `ismaster`, plus `helloOk` when the driver asks.
pub fn is_master(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    handshake(ctx, req, "ismaster")
}

fn handshake(ctx: &mut RequestCtx<'_>, req: &CommandRequest, primary_field: &str) -> Result<Document> {
    let awaitable = awaitable(ctx, req)?;
    if let Some(wait) = &awaitable {
        if ctx.state.topology.shutting_down() {
            // As mongod in quiesce mode: the monitor learns at once that this server is going.
            // Its reply carries the topology version, as every state-change error's does.
            return Err(Error::new(ErrorCode::ShutdownInProgress, "The server is in quiesce mode and will shut down"));
        }
        if !ctx.awaited && wait.counter == ctx.state.topology.counter() {
            ctx.reply_after_topology_change(wait.counter, wait.deadline);
            return Ok(Document::new());
        }
    }
    let hello_ok = req.bool_arg("helloOk")?.unwrap_or(false);
    let mechanisms = match req.str_arg("saslSupportedMechs")? {
        Some(user) => super::auth::supported_mechanisms(ctx, user)?,
        None => None,
    };
    record_client_metadata(ctx, req)?;
    // As mongod's MessageCompressorManager::serverNegotiate: the client's list in the client's
    // order, keeping the compressors this server has enabled; without a list, the connection's
    // earlier result. An empty result is left out of the reply.
    if let Some(offered) = req.array_arg("compression")? {
        let enabled = &ctx.state.config.compressors;
        ctx.client.compressors = offered
            .iter()
            .filter_map(|v| v.as_str())
            .filter_map(|name| enabled.iter().copied().find(|c| c.name() == name))
            .collect();
    }
    let negotiated = &ctx.client.compressors;

    let mut reply = Document::new();
    if primary_field == "ismaster" && hello_ok {
        reply.insert("helloOk", true);
    }
    reply.insert("topologyVersion", ctx.state.topology.version());
    ctx.state.repl.describe(&mut reply, primary_field);
    reply.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE as i32);
    reply.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
    reply.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    reply.insert("localTime", DateTime::now());
    reply.insert("logicalSessionTimeoutMinutes", (SESSION_TIMEOUT.as_secs() / 60) as i32);
    reply.insert("connectionId", i32::try_from(ctx.client.connection_id).unwrap_or(i32::MAX));
    reply.insert("minWireVersion", MIN_WIRE_VERSION);
    reply.insert("maxWireVersion", MAX_WIRE_VERSION);
    reply.insert("readOnly", false);
    if !negotiated.is_empty() {
        reply.insert("compression", negotiated.iter().map(|c| Bson::from(c.name())).collect::<Vec<_>>());
    }
    if let Some(mechanisms) = mechanisms {
        reply.insert("saslSupportedMechs", mechanisms);
    }
    if let Some(RawBsonRef::Document(spec)) = req.get("speculativeAuthenticate")
        && let Some(answer) = super::auth::speculative(ctx, spec)
    {
        reply.insert("speculativeAuthenticate", answer);
    }
    Ok(reply)
}

/// An awaitable `hello`: the topology counter the client knows, and when to answer anyway.
struct AwaitableHello {
    counter: i64,
    deadline: Instant,
}

/// Reads `topologyVersion`, `maxAwaitTimeMS` and `awaitable` as mongod does. `Some` when the
/// reply may wait: the client's `topologyVersion` names this process and its counter (in an
/// exhaust stream, the previous reply's). A counter ahead of the server's is an error; another
/// process's id (a restarted server) or an older counter is answered at once.
fn awaitable(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Option<AwaitableHello>> {
    let version = req.get("topologyVersion");
    let max_await = req.get("maxAwaitTimeMS");
    if req.get("awaitable").is_some() {
        if version.is_none() {
            return Err(Error::new(
                ErrorCode::Location5135800,
                "A request with 'awaitable' must include 'topologyVersion'",
            ));
        }
        if max_await.is_none() {
            return Err(Error::new(
                ErrorCode::Location5135801,
                "A request with 'awaitable' must include 'maxAwaitTimeMS'",
            ));
        }
    }
    let (version, max_await) = match (version, max_await) {
        (None, None) => return Ok(None),
        (Some(version), Some(max_await)) => (version, max_await),
        (Some(_), None) => {
            return Err(Error::new(
                ErrorCode::Location31368,
                "A request with a 'topologyVersion' must include 'maxAwaitTimeMS'",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::new(
                ErrorCode::Location31368,
                "A request with 'maxAwaitTimeMS' must include a 'topologyVersion'",
            ));
        }
    };
    let RawBsonRef::Document(version) = version else {
        return Err(Error::new(ErrorCode::Location10065, "invalid parameter: expected an object (topologyVersion)"));
    };
    let (process_id, counter) = parse_topology_version(version)?;
    let max_await_ms = match max_await {
        RawBsonRef::Int32(n) => i64::from(n),
        RawBsonRef::Int64(n) => n,
        // Whole doubles count, as mongod's integer extraction takes them.
        RawBsonRef::Double(n) if n.fract() == 0.0 && n.is_finite() => n as i64,
        other => return Err(req.wrong_type("maxAwaitTimeMS", other, "long")),
    };
    if max_await_ms < 0 {
        return Err(Error::new(ErrorCode::Location31373, "maxAwaitTimeMS must be a non-negative integer"));
    }
    let topology = &ctx.state.topology;
    let (process_id, counter) = match ctx.client.streamed_topology {
        Some(previous) => (topology.process_id(), previous),
        None => (process_id, counter),
    };
    if process_id != topology.process_id() {
        return Ok(None);
    }
    let current = topology.counter();
    if counter > current {
        return Err(Error::new(
            ErrorCode::Location31382,
            format!(
                "Received a topology version with counter: {counter} which is greater than the server topology version counter: {current}"
            ),
        ));
    }
    let deadline = ctx.op.started + Duration::from_millis(u64::try_from(max_await_ms).unwrap_or(0));
    Ok(Some(AwaitableHello { counter, deadline }))
}

/// `{processId: ObjectId, counter: long}`, checked as mongod's IDL parser checks it.
fn parse_topology_version(version: &RawDocument) -> Result<(bson::oid::ObjectId, i64)> {
    let (mut process_id, mut counter) = (None, None);
    for element in version {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let wrong_type = |expected: &str| {
            Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "BSON field 'TopologyVersion.{}' is the wrong type '{}', expected type '{expected}'",
                    key.as_str(),
                    crate::query::type_name(value.element_type())
                ),
            )
        };
        match (key.as_str(), value) {
            ("processId", RawBsonRef::ObjectId(id)) => process_id = Some(id),
            ("processId", _) => return Err(wrong_type("objectId")),
            ("counter", RawBsonRef::Int64(n)) => counter = Some(n),
            ("counter", _) => return Err(wrong_type("long")),
            (other, _) => {
                return Err(Error::new(
                    ErrorCode::Location40415,
                    format!("BSON field 'TopologyVersion.{other}' is an unknown field."),
                ));
            }
        }
    }
    let missing = |field: &str| {
        Error::new(
            ErrorCode::Location40414,
            format!("BSON field 'TopologyVersion.{field}' is missing but a required field"),
        )
    };
    let process_id = process_id.ok_or_else(|| missing("processId"))?;
    let counter = counter.ok_or_else(|| missing("counter"))?;
    if counter < 0 {
        return Err(Error::new(ErrorCode::Location31372, "topologyVersion must have a non-negative counter"));
    }
    Ok((process_id, counter))
}

/// Keeps the first hello's `client` document and logs it; mongod refuses a second one.
fn record_client_metadata(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<()> {
    let Some(client) = req.get("client") else { return Ok(()) };
    let RawBsonRef::Document(client) = client else {
        return Err(req.wrong_type("client", client, "object"));
    };
    if ctx.client.metadata.is_some() {
        return Err(Error::new(
            ErrorCode::ClientMetadataCannotBeMutated,
            "The client metadata document may only be sent in the first hello",
        ));
    }
    let metadata = Document::try_from(client)
        .map_err(|e| Error::new(ErrorCode::InvalidBSON, format!("invalid client metadata: {e}")))?;
    // mongod's --quiet drops connection chatter; client metadata is part of it.
    if !ctx.state.params.quiet() {
        log_client_metadata(ctx, &metadata);
    }
    ctx.client.metadata = Some(metadata);
    Ok(())
}

fn log_client_metadata(ctx: &RequestCtx<'_>, metadata: &Document) {
    tracing::info!(
        target: "NETWORK",
        id = 51800,
        remote = %ctx.client.remote,
        client = format!("conn{}", ctx.client.connection_id),
        doc = %metadata,
        "client metadata"
    );
}

/// The reply fields state by `hello` and `isMaster`, for tests that check them.
#[cfg(test)]
pub(crate) fn required_fields() -> [&'static str; 10] {
    [
        "maxBsonObjectSize",
        "maxMessageSizeBytes",
        "maxWriteBatchSize",
        "localTime",
        "logicalSessionTimeoutMinutes",
        "connectionId",
        "minWireVersion",
        "maxWireVersion",
        "readOnly",
        "ok",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestServer;
    use bson::doc;
    use monarch_wire::Compressor;

    #[test]
    fn hello_reports_handshake_fields() {
        let shared = TestServer::new();
        let mut client = shared.test_client();
        let reply = shared.run_command_as(&mut client, doc! { "hello": 1, "$db": "admin" });
        assert_eq!(reply.get_bool("isWritablePrimary").ok(), Some(true));
        for field in required_fields() {
            assert!(reply.contains_key(field), "missing {field}: {reply}");
        }
        let version = reply.get_document("topologyVersion").expect("topologyVersion");
        assert_eq!(version.get_object_id("processId").ok(), Some(shared.topology.process_id()));
        assert_eq!(version.get_i64("counter").ok(), Some(0));
        assert_eq!(reply.get_i32("maxWireVersion").ok(), Some(21));
    }

    #[test]
    fn is_master_echoes_hello_ok_and_negotiates_compression() {
        let shared = TestServer::new();
        let mut client = shared.test_client();
        let reply = shared.run_command_as(
            &mut client,
            doc! {
                "isMaster": 1, "helloOk": true, "compression": ["zlib", "lz4", "snappy"], "$db": "admin"
            },
        );
        assert_eq!(reply.get_bool("ismaster").ok(), Some(true));
        assert_eq!(reply.get_bool("helloOk").ok(), Some(true));
        // The client's order (zlib before snappy), restricted to what the server has: mongod
        // keeps the client's preference, whatever its own list's order (snappy, zstd, zlib).
        assert_eq!(reply.get_array("compression").ok(), Some(&vec![Bson::from("zlib"), Bson::from("snappy")]));
        assert_eq!(client.compressors, vec![Compressor::Zlib, Compressor::Snappy]);
        // A later hello without a list reports the connection's result, as mongod.
        let again = shared.run_command_as(&mut client, doc! { "hello": 1, "$db": "admin" });
        assert_eq!(again.get_array("compression").ok(), Some(&vec![Bson::from("zlib"), Bson::from("snappy")]));
        // Nothing in common: no `compression` field at all.
        let mut other = shared.test_client();
        let none = shared.run_command_as(&mut other, doc! { "hello": 1, "compression": ["lz4"], "$db": "admin" });
        assert!(!none.contains_key("compression"), "{none}");
        assert!(other.compressors.is_empty());
    }

    #[test]
    fn hello_client_metadata_only_once() {
        let shared = TestServer::new();
        let mut client = shared.test_client();
        let body = doc! { "hello": 1, "client": { "driver": { "name": "test", "version": "1" } }, "$db": "admin" };
        assert_eq!(shared.run_command_as(&mut client, body.clone()).get_f64("ok").ok(), Some(1.0));
        assert_eq!(shared.run_command_as(&mut client, body).get_i32("code").ok(), Some(186));
    }

    #[test]
    fn hello_rejects_wrong_argument_type() {
        let shared = TestServer::new();
        let mut client = shared.test_client();
        let reply = shared.run_command_as(&mut client, doc! { "hello": 1, "compression": "snappy", "$db": "admin" });
        assert_eq!(reply.get_str("codeName").ok(), Some("TypeMismatch"));
    }
}
