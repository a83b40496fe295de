//! Raw wire-protocol bytes against a real server: legacy OP_QUERY, moreToCome, and every kind
//! of bad input. A malformed message closes only its own connection; bad BSON or bad argument
//! types get an error reply.
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::{TestServer, op_msg, op_msg_raw, reply_body};
use mongodb::bson::{Document, doc};

/// The server still answers a fresh client.
fn assert_still_serving(server: &TestServer) {
    let mut conn = server.raw();
    conn.send(&op_msg(99, 0, &doc! { "ping": 1, "$db": "admin" }));
    let reply = reply_body(&conn.receive().expect("ping reply"));
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0));
}

fn op_query(request_id: i32, namespace: &str, query: &Document) -> Vec<u8> {
    let query = query.to_vec().expect("encode");
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(namespace.as_bytes());
    body.push(0);
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    body.extend_from_slice(&query);
    let mut message = Vec::new();
    message.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    message.extend_from_slice(&request_id.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&2004i32.to_le_bytes());
    message.extend_from_slice(&body);
    message
}

fn op_reply_document(message: &[u8]) -> Document {
    assert_eq!(i32::from_le_bytes(message[12..16].try_into().expect("op")), 1, "expected OP_REPLY");
    assert_eq!(i32::from_le_bytes(message[32..36].try_into().expect("n")), 1, "numberReturned");
    Document::from_reader(&message[36..]).expect("reply document")
}

#[test]
fn protocol_op_query_is_master_gets_op_reply() {
    let server = TestServer::start(&[]);
    let mut conn = server.raw();
    conn.send(&op_query(
        7,
        "admin.$cmd",
        &doc! { "isMaster": 1, "helloOk": true, "client": { "driver": { "name": "raw", "version": "0" } } },
    ));
    let message = conn.receive().expect("reply");
    assert_eq!(i32::from_le_bytes(message[8..12].try_into().expect("responseTo")), 7);
    let reply = op_reply_document(&message);
    assert_eq!(reply.get_bool("ismaster").ok(), Some(true));
    assert_eq!(reply.get_bool("helloOk").ok(), Some(true));

    // After the handshake, OP_QUERY commands are refused as mongod refuses them.
    conn.send(&op_query(8, "admin.$cmd", &doc! { "ping": 1 }));
    let reply = op_reply_document(&conn.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(352), "{reply}");
    conn.send(&op_query(9, "test.coll", &doc! { "x": 1 }));
    assert_eq!(op_reply_document(&conn.receive().expect("reply")).get_i32("code").ok(), Some(352));
}

#[test]
fn protocol_more_to_come_gets_no_reply() {
    let server = TestServer::start(&[]);
    let mut conn = server.raw();
    conn.send(&op_msg(1, 2, &doc! { "ping": 1, "$db": "admin" }));
    conn.send(&op_msg(2, 0, &doc! { "ping": 1, "$db": "admin" }));
    let message = conn.receive().expect("reply");
    // The first reply to arrive answers request 2: request 1 got none.
    assert_eq!(i32::from_le_bytes(message[8..12].try_into().expect("responseTo")), 2);
}

#[test]
fn protocol_checksum_verified_and_accepted() {
    let server = TestServer::start(&[]);
    let mut message = op_msg(5, 1, &doc! { "ping": 1, "$db": "admin" });
    let length = (message.len() + 4) as i32;
    message[..4].copy_from_slice(&length.to_le_bytes());
    let crc = crc32c(&message);
    let mut good = message.clone();
    good.extend_from_slice(&crc.to_le_bytes());
    let mut conn = server.raw();
    conn.send(&good);
    assert_eq!(reply_body(&conn.receive().expect("reply")).get_f64("ok").ok(), Some(1.0));

    let mut bad = message;
    bad.extend_from_slice(&(crc ^ 1).to_le_bytes());
    let mut conn = server.raw();
    conn.send(&bad);
    assert!(conn.is_closed(), "a checksum failure must close the connection");
    assert_still_serving(&server);
}

#[test]
fn protocol_bad_frames_close_only_their_connection() {
    let server = TestServer::start(&[]);
    let bystander_before = server.raw();

    // Length below the header size, above 48 MB, and negative.
    for length in [8i32, 48_000_001, -1] {
        let mut conn = server.raw();
        let mut message = length.to_le_bytes().to_vec();
        message.extend_from_slice(&[0u8; 12]);
        conn.send(&message);
        assert!(conn.is_closed(), "length {length} must close the connection");
    }

    // An unknown op code (the removed OP_INSERT).
    let mut conn = server.raw();
    let mut insert = op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" });
    insert[12..16].copy_from_slice(&2002i32.to_le_bytes());
    conn.send(&insert);
    assert!(conn.is_closed());

    // A body section whose document overruns the message.
    let mut conn = server.raw();
    let mut overrun = op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" });
    overrun[21..25].copy_from_slice(&1000i32.to_le_bytes());
    conn.send(&overrun);
    assert!(conn.is_closed());

    // OP_COMPRESSED with an unknown compressor and with garbage zlib data.
    for (compressor, payload) in [(9u8, vec![1u8, 2, 3]), (2u8, vec![0xffu8; 32])] {
        let mut conn = server.raw();
        let mut message = Vec::new();
        message.extend_from_slice(&((16 + 9 + payload.len()) as i32).to_le_bytes());
        message.extend_from_slice(&1i32.to_le_bytes());
        message.extend_from_slice(&0i32.to_le_bytes());
        message.extend_from_slice(&2012i32.to_le_bytes());
        message.extend_from_slice(&2013i32.to_le_bytes());
        message.extend_from_slice(&100i32.to_le_bytes());
        message.push(compressor);
        message.extend_from_slice(&payload);
        conn.send(&message);
        assert!(conn.is_closed(), "compressor {compressor} must close the connection");
    }

    // A client sending a server's reply op code (OP_REPLY).
    let mut conn = server.raw();
    let mut reply = Vec::new();
    let document = doc! { "ok": 1 }.to_vec().expect("encode");
    reply.extend_from_slice(&((16 + 20 + document.len()) as i32).to_le_bytes());
    reply.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    reply.extend_from_slice(&[0u8; 16]);
    reply.extend_from_slice(&1i32.to_le_bytes());
    reply.extend_from_slice(&document);
    conn.send(&reply);
    assert!(conn.is_closed(), "OP_REPLY from a client must close the connection");

    // A truncated message, then the client goes away: the server just drops it.
    let mut conn = server.raw();
    let whole = op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" });
    conn.send(&whole[..whole.len() - 3]);
    drop(conn);

    // The connection opened before all this still works, and so do new ones.
    let mut bystander = bystander_before;
    bystander.send(&op_msg(3, 0, &doc! { "ping": 1, "$db": "admin" }));
    assert_eq!(reply_body(&bystander.receive().expect("reply")).get_f64("ok").ok(), Some(1.0));
    assert_still_serving(&server);
    assert!(server.wait_for_log("Error receiving request from client", std::time::Duration::from_secs(5)));
}

#[test]
fn protocol_bad_bson_and_arguments_get_error_replies() {
    let server = TestServer::start(&[]);
    let mut conn = server.raw();

    // The frame is right but a nested document's length is wrong.
    let mut body = doc! { "ping": 1, "x": { "a": 1 }, "$db": "admin" }.to_vec().expect("encode");
    let nested = body.windows(2).position(|w| w == b"x\0").expect("x") + 2;
    body[nested] = 200;
    conn.send(&op_msg_raw(1, 0, &body));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(22), "{reply}");
    assert_eq!(reply.get_str("codeName").ok(), Some("InvalidBSON"), "{reply}");

    // Missing $db.
    conn.send(&op_msg(2, 0, &doc! { "ping": 1 }));
    assert_eq!(reply_body(&conn.receive().expect("reply")).get_i32("code").ok(), Some(40571));

    // Wrong argument types.
    conn.send(&op_msg(3, 0, &doc! { "hello": 1, "helloOk": "yes", "$db": "admin" }));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_str("codeName").ok(), Some("TypeMismatch"), "{reply}");
    conn.send(&op_msg(4, 0, &doc! { "getLog": 3, "$db": "admin" }));
    assert_eq!(reply_body(&conn.receive().expect("reply")).get_i32("code").ok(), Some(14));

    // An empty command: mongod looks the (empty) name up before it reads `$db`.
    conn.send(&op_msg(5, 0, &doc! {}));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(59), "{reply}");
    assert_eq!(reply.get_str("errmsg").ok(), Some("no such command: ''"), "{reply}");

    // Same connection, still fine.
    conn.send(&op_msg(6, 0, &doc! { "ping": 1, "$db": "admin" }));
    assert_eq!(reply_body(&conn.receive().expect("reply")).get_f64("ok").ok(), Some(1.0));
}

/// CRC-32C (Castagnoli), bitwise: an independent check of the server's checksum code.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
