//! Raw wire-protocol bytes against a real server: legacy OP_QUERY, moreToCome, and every kind
//! of bad input. A malformed message closes only its own connection; bad BSON or bad argument
//! types get an error reply.
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::{TestServer, op_msg, op_msg_raw, op_msg_with_raw_sequence, reply_body};
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
    assert_eq!(i32_at(message, 12), 1, "expected OP_REPLY");
    assert_eq!(i32_at(message, 32), 1, "numberReturned");
    Document::from_reader(message.get(36..).expect("reply document")).expect("reply document")
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

// ---- OP_COMPRESSED, checked against codecs that share no code with the server's ----------
//
// The server compresses with the wire crate's codecs (snap, flate2 on miniz_oxide, zstd on
// libzstd). Requests here are built by hand in each format's simplest valid form (snappy
// literals, zlib stored blocks, a zstd raw block), and replies are read with a snappy decoder
// written below from the format description, zune-inflate and ruzstd: a codec that only
// agrees with itself would fail here.

/// Appends `n` as a little-endian base-128 varint (snappy's length prefix).
fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Snappy raw format, literals only (valid snappy that any decoder must accept).
fn snappy_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_varint(&mut out, data.len());
    for chunk in data.chunks(65_536) {
        // Tag 61 << 2: a literal whose length - 1 follows in two bytes.
        out.push(61 << 2);
        out.extend_from_slice(&((chunk.len() - 1) as u16).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Decodes snappy's raw format (literals and the three copy forms), or `None` if malformed.
fn snappy_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    let mut length = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = *input.get(at)?;
        at += 1;
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let mut out = Vec::with_capacity(length);
    let take = |at: &mut usize, n: usize| -> Option<usize> {
        let bytes = input.get(*at..*at + n)?;
        *at += n;
        Some(bytes.iter().rev().fold(0usize, |v, b| (v << 8) | usize::from(*b)))
    };
    while at < input.len() {
        let tag = *input.get(at)?;
        at += 1;
        let (len, offset) = match tag & 3 {
            0 => {
                let small = usize::from(tag >> 2);
                let len = if small < 60 { small + 1 } else { take(&mut at, small - 59)? + 1 };
                out.extend_from_slice(input.get(at..at + len)?);
                at += len;
                continue;
            }
            1 => (usize::from((tag >> 2) & 7) + 4, (usize::from(tag >> 5) << 8) | take(&mut at, 1)?),
            2 => (usize::from(tag >> 2) + 1, take(&mut at, 2)?),
            _ => (usize::from(tag >> 2) + 1, take(&mut at, 4)?),
        };
        if offset == 0 || offset > out.len() {
            return None;
        }
        // Byte by byte: a copy may overlap what it produces.
        for _ in 0..len {
            let byte = *out.get(out.len() - offset)?;
            out.push(byte);
        }
    }
    (out.len() == length).then_some(out)
}

/// zlib (RFC 1950) with stored deflate blocks and its Adler-32.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// One zstd frame holding `data` as a single raw block (at most 128 KiB).
fn zstd_raw(data: &[u8]) -> Vec<u8> {
    assert!(data.len() < 128 * 1024);
    let mut out = 0xFD2F_B528u32.to_le_bytes().to_vec();
    // Single segment, a 4-byte content size, no checksum, no dictionary.
    out.push(0b1010_0000);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    // Block header: last block, raw, its size.
    let header = ((data.len() as u32) << 3) | 1;
    out.extend_from_slice(header.to_le_bytes().get(..3).expect("3 of 4 bytes"));
    out.extend_from_slice(data);
    out
}

/// One zstd frame of `blocks` RLE blocks of 128 KiB zeros each: a few bytes per block, so a
/// 2 KB payload inflates to 60 MB (a decompression bomb).
fn zstd_zero_bomb(blocks: usize) -> Vec<u8> {
    let mut out = 0xFD2F_B528u32.to_le_bytes().to_vec();
    // No content size, no checksum; a window descriptor for 128 KiB (2^(10 + 7)).
    out.push(0);
    out.push(7 << 3);
    for block in 0..blocks {
        let last = u32::from(block + 1 == blocks);
        // Block header: last flag, type 1 (RLE), size 128 KiB; then the byte to repeat.
        let header = ((128 * 1024u32) << 3) | (1 << 1) | last;
        out.extend_from_slice(header.to_le_bytes().get(..3).expect("3 of 4 bytes"));
        out.push(0);
    }
    out
}

/// Wraps `message` (a whole OP_MSG) in OP_COMPRESSED with `compressor` (id) and `payload`.
fn op_compressed(message: &[u8], compressor: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((16 + 9 + payload.len()) as i32).to_le_bytes());
    out.extend_from_slice(message.get(4..8).expect("request id"));
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&2012i32.to_le_bytes());
    out.extend_from_slice(message.get(12..16).expect("op code"));
    out.extend_from_slice(&((message.len() - 16) as i32).to_le_bytes());
    out.push(compressor);
    out.extend_from_slice(payload);
    out
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).expect("4 bytes"))
}

#[test]
fn protocol_op_compressed_bombs_close_only_their_connection() {
    let server = TestServer::start(&[]);
    let ping = op_msg(5, 0, &doc! { "ping": 1, "$db": "admin" });
    let bomb = zstd_zero_bomb(480);
    // The bomb is real: an independent decoder inflates it to 60 MiB.
    let mut inflated = Vec::new();
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(bomb.as_slice()).expect("zstd frame");
    std::io::Read::read_to_end(&mut decoder, &mut inflated).expect("zstd bomb decodes");
    assert_eq!(inflated.len(), 480 * 128 * 1024);
    drop(inflated);

    let peak_before = server.peak_rss_kib();
    for _ in 0..3 {
        let mut conn = server.raw();
        conn.send(&op_msg(1, 0, &doc! { "hello": 1, "compression": ["zstd"], "$db": "admin" }));
        assert!(conn.receive().is_some(), "hello");
        // Declares the ping's own size: the server stops one byte past it.
        conn.send(&op_compressed(&ping, 3, &bomb));
        assert!(conn.is_closed(), "a payload larger than its declared size closes the connection");
    }
    // A declared size past maxMessageSizeBytes is refused before anything is inflated.
    let mut conn = server.raw();
    let mut oversized = op_compressed(&ping, 3, &bomb);
    oversized.splice(20..24, 48_000_000i32.to_le_bytes());
    conn.send(&oversized);
    assert!(conn.is_closed(), "a declared size over 48,000,000 bytes closes the connection");

    let grown = server.peak_rss_kib().saturating_sub(peak_before);
    assert!(grown < 30 * 1024, "peak RSS grew {grown} KiB: a bomb was inflated");
    let mut healthy = server.raw();
    healthy.send(&ping);
    assert_eq!(reply_body(&healthy.receive().expect("ping reply")).get_f64("ok").ok(), Some(1.0));
}

#[test]
fn protocol_op_compressed_replies_decode_with_independent_codecs() {
    let server = TestServer::start(&[]);
    // Repetitive values, so a real compressor has something to do (and uses copies).
    let seed: Vec<Document> =
        (0..60).map(|i| doc! { "_id": i, "text": "the same words again and ".repeat(8) }).collect();
    let mut setup = server.raw();
    setup.send(&op_msg(1, 0, &doc! { "insert": "z", "documents": seed, "$db": "cmp" }));
    assert_eq!(reply_body(&setup.receive().expect("insert reply")).get_i32("n").ok(), Some(60));

    type Encode = fn(&[u8]) -> Vec<u8>;
    type Decode = fn(&[u8]) -> Option<Vec<u8>>;
    let codecs: [(&str, u8, Encode, Decode); 3] = [
        ("snappy", 1, snappy_literals, snappy_decode),
        ("zlib", 2, zlib_stored, |data| zune_inflate::DeflateDecoder::new(data).decode_zlib().ok()),
        ("zstd", 3, zstd_raw, |data| {
            let mut out = Vec::new();
            let mut decoder = ruzstd::decoding::StreamingDecoder::new(data).ok()?;
            std::io::Read::read_to_end(&mut decoder, &mut out).ok()?;
            Some(out)
        }),
    ];
    for (name, id, encode, decode) in codecs {
        let mut conn = server.raw();
        conn.send(&op_msg(1, 0, &doc! { "hello": 1, "compression": [name], "$db": "admin" }));
        let hello = reply_body(&conn.receive().expect("hello reply"));
        assert_eq!(hello.get_array("compression").ok(), Some(&vec![name.into()]), "{hello}");

        let find = op_msg(7, 0, &doc! { "find": "z", "filter": {}, "batchSize": 60, "$db": "cmp" });
        conn.send(&op_compressed(&find, id, &encode(&find[16..])));
        let reply = conn.receive().expect("compressed reply");
        assert_eq!(i32_at(&reply, 8), 7, "{name}: responseTo");
        assert_eq!(i32_at(&reply, 12), 2012, "{name}: a compressed request gets a compressed reply");
        assert_eq!(i32_at(&reply, 16), 2013, "{name}: original op code");
        assert_eq!(reply[24], id, "{name}: compressor id");
        let payload = &reply[25..];
        let body = decode(payload).unwrap_or_else(|| panic!("{name}: the reply does not decode"));
        assert_eq!(body.len(), i32_at(&reply, 20) as usize, "{name}: uncompressed size");
        assert!(payload.len() < body.len() / 2, "{name}: {} bytes for {}: not compressed", payload.len(), body.len());
        // flags, then a kind-0 section holding the reply document.
        assert_eq!((i32_at(&body, 0), body[4]), (0, 0), "{name}: flags and section kind");
        let document = Document::from_reader(&body[5..]).expect("reply document");
        assert_eq!(document.get_f64("ok").ok(), Some(1.0), "{name}: {document}");
        let batch = document.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch");
        assert_eq!(batch.len(), 60, "{name}");
        assert_eq!(batch[59].as_document().and_then(|d| d.get_i32("_id").ok()), Some(59), "{name}");
    }
}

#[test]
fn protocol_compression_negotiation_keeps_the_clients_order() {
    let server = TestServer::start(&[]);
    let mut conn = server.raw();
    // The server's own list is snappy, zstd, zlib; mongod answers in the client's order.
    conn.send(&op_msg(1, 0, &doc! { "hello": 1, "compression": ["zlib", "lz4", "zstd", "snappy"], "$db": "admin" }));
    let hello = reply_body(&conn.receive().expect("hello reply"));
    assert_eq!(hello.get_array("compression").ok(), Some(&vec!["zlib".into(), "zstd".into(), "snappy".into()]));
    // With a server that offers one compressor, only that one.
    let zlib_only = TestServer::start(&["--networkMessageCompressors", "zlib"]);
    let mut conn = zlib_only.raw();
    conn.send(&op_msg(1, 0, &doc! { "hello": 1, "compression": ["snappy", "zlib"], "$db": "admin" }));
    let hello = reply_body(&conn.receive().expect("hello reply"));
    assert_eq!(hello.get_array("compression").ok(), Some(&vec!["zlib".into()]));
    // Nothing in common: no `compression` field.
    let mut conn = zlib_only.raw();
    conn.send(&op_msg(1, 0, &doc! { "hello": 1, "compression": ["snappy"], "$db": "admin" }));
    let hello = reply_body(&conn.receive().expect("hello reply"));
    assert!(!hello.contains_key("compression"), "{hello}");
}

/// `bytes` with the byte `offset` past the first `needle` set to `value`.
fn patched(bytes: &[u8], needle: &[u8], offset: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = out.windows(needle.len()).position(|w| w == needle).expect("needle") + offset;
    *out.get_mut(at).expect("in range") = value;
    out
}

/// Adds `grown` to the little-endian int32 at byte `at`.
fn grow_length(bytes: &mut [u8], at: usize, grown: usize) {
    let field = bytes.get_mut(at..at + 4).expect("length");
    let old = i32::from_le_bytes((&*field).try_into().expect("four bytes"));
    field.copy_from_slice(&(old + i32::try_from(grown).expect("small")).to_le_bytes());
}

/// A document to insert whose bytes are damaged deep inside (an array in a document in an
/// array), each in a way that only a full walk finds.
fn deeply_damaged_documents() -> Vec<(&'static str, Vec<u8>)> {
    let deep = doc! { "_id": 1, "a": [ { "b": [ "zz", true, { "c": "yy" } ] } ] };
    let bytes = deep.to_vec().expect("encode");
    vec![
        ("invalid UTF-8", patched(&bytes, b"zz\0", 0, 0xff)),
        // The array's element "1" is the boolean: type byte, key, NUL, then the value byte.
        ("boolean byte 2", patched(&bytes, &[0x08, b'1', 0], 3, 2)),
        ("unknown type", patched(&bytes, &[0x02, b'c', 0], 0, 0x42)),
        // The innermost document claims more bytes than its array holds.
        ("length", patched(&bytes, &[0x03, b'2', 0], 3, 0x7f)),
    ]
}

#[test]
fn protocol_inserts_with_malformed_bson_deep_inside_are_refused_and_store_nothing() {
    let server = TestServer::start(&[]);
    let mut conn = server.raw();
    let mut request_id = 0;
    for (what, damaged) in deeply_damaged_documents() {
        // In the command body's `documents` array, in place of a placeholder document.
        let placeholder = doc! { "_id": 0 }.to_vec().expect("encode");
        let template =
            doc! { "insert": "c", "documents": [ { "_id": 0 } ], "$db": "hostile" }.to_vec().expect("encode");
        let at = template.windows(placeholder.len()).position(|w| w == placeholder).expect("placeholder");
        let documents_at = template.windows(10).position(|w| w == b"documents\0").expect("documents") + 10;
        let mut body = template.clone();
        body.splice(at..at + placeholder.len(), damaged.iter().copied());
        let grown = damaged.len() - placeholder.len();
        grow_length(&mut body, 0, grown);
        grow_length(&mut body, documents_at, grown);
        request_id += 1;
        conn.send(&op_msg_raw(request_id, 0, &body));
        let reply = reply_body(&conn.receive().expect("reply"));
        assert_eq!(reply.get_i32("code").ok(), Some(22), "{what} in the body: {reply}");
        assert_eq!(reply.get_str("codeName").ok(), Some("InvalidBSON"), "{what} in the body: {reply}");

        // In a kind-1 document sequence, after a good document: nothing of the batch is stored.
        let good = doc! { "_id": 2 }.to_vec().expect("encode");
        request_id += 1;
        let command = doc! { "insert": "c", "$db": "hostile" };
        conn.send(&op_msg_with_raw_sequence(request_id, &command, "documents", &[good, damaged]));
        let reply = reply_body(&conn.receive().expect("reply"));
        assert_eq!(reply.get_i32("code").ok(), Some(22), "{what} in a sequence: {reply}");
    }
    request_id += 1;
    conn.send(&op_msg(request_id, 0, &doc! { "count": "c", "$db": "hostile" }));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_i32("n").ok(), Some(0), "{reply}");
    assert_still_serving(&server);
}
