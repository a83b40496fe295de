//! The network floor: a minimal `OP_MSG` server on `monarch_wire`'s codec, served by this
//! harness run again as a separate process (like `monarchd`). It answers `hello`/`isMaster`
//! (`OP_MSG` or legacy `OP_QUERY`) like a standalone mongod and anything else with `{ok: 1}`,
//! so the driver's pings to it cost the network, the kernel and the driver, and nothing else.

use bson::{RawDocument, doc};
use futures_util::{SinkExt, StreamExt};
use monarch_wire::{Body, DocumentBytes, Header, Message, MessageCodec, OpMsg, OpReply};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use crate::BenchResult;

/// The echo server's process: announces its port in a log line shaped like `monarchd`'s and
/// serves until SIGTERM.
pub(crate) fn serve() -> BenchResult<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        println!("{}", json!({ "s": "I", "msg": "Waiting for connections", "attr": { "port": port } }));
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(echo_connection(stream));
                    }
                    Err(error) => eprintln!("echo server: accept failed: {error}"),
                },
            }
        }
    })
}

async fn echo_connection(stream: TcpStream) {
    let mut framed = Framed::new(stream, MessageCodec::default());
    let mut request_id = 0;
    while let Some(Ok(request)) = framed.next().await {
        let Some(reply) = echo_reply(&request, request_id) else { continue };
        request_id = request_id.wrapping_add(1);
        if framed.send(reply).await.is_err() {
            break;
        }
    }
}

/// The reply to `request`: none for fire-and-forget messages.
fn echo_reply(request: &Message, request_id: i32) -> Option<Message> {
    let body = match &request.body {
        Body::Msg(msg) if msg.flags.more_to_come() => return None,
        Body::Msg(msg) => Body::Msg(OpMsg::new(echo_document(msg.body.as_raw())?)),
        Body::Query(query) => Body::Reply(OpReply::command_reply(echo_document(query.query.as_raw())?)),
        Body::Reply(_) => return None,
    };
    Some(Message { header: Header { request_id, response_to: request.header.request_id }, body, compressor: None })
}

/// A standalone mongod's handshake for `hello`/`isMaster`, `{ok: 1}` for anything else.
fn echo_document(command: &RawDocument) -> Option<DocumentBytes> {
    let name = command.iter().next().and_then(Result::ok).map(|(key, _)| key.as_str().to_owned());
    let max_bson = i32::try_from(monarch_wire::MAX_BSON_OBJECT_SIZE).unwrap_or(i32::MAX);
    let max_message = i32::try_from(monarch_wire::MAX_MESSAGE_SIZE).unwrap_or(i32::MAX);
    let reply = match name.as_deref() {
        Some("hello" | "isMaster" | "ismaster") => doc! {
            "helloOk": true,
            "isWritablePrimary": true,
            "ismaster": true,
            "maxBsonObjectSize": max_bson,
            "maxMessageSizeBytes": max_message,
            "maxWriteBatchSize": 100_000,
            "logicalSessionTimeoutMinutes": 30,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "ok": 1.0,
        },
        _ => doc! { "ok": 1.0 },
    };
    DocumentBytes::try_from(&reply).ok()
}
