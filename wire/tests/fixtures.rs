//! Real driver handshakes, captured off the wire (see `tests/fixtures/README.md`): each must
//! decode, carry what a server needs from a handshake, and re-encode to the same bytes.

use bson::{Bson, Document};
use bytes::BytesMut;
use monarch_wire::{Body, Message, MessageCodec, OpCode};
use tokio_util::codec::Decoder;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PYMONGO_HELLO: &[u8] = include_bytes!("fixtures/pymongo_hello.bin");
const PYMONGO_HELLO_COMPRESSORS: &[u8] = include_bytes!("fixtures/pymongo_hello_compressors.bin");
const NODE_HELLO: &[u8] = include_bytes!("fixtures/node_hello.bin");

/// Decodes the fixture as the server would: it must be exactly one whole message.
fn decode(bytes: &[u8]) -> Result<Message, Box<dyn std::error::Error>> {
    let mut src = BytesMut::from(bytes);
    let message = MessageCodec::default().decode(&mut src)?.ok_or("fixture is not a whole message")?;
    assert!(src.is_empty(), "{} bytes after the message", src.len());
    Ok(message)
}

fn assert_reencodes(message: &Message, bytes: &[u8]) -> TestResult {
    let mut out = BytesMut::new();
    message.encode(&mut out)?;
    assert_eq!(out.as_ref(), bytes, "re-encoding changed the bytes");
    Ok(())
}

/// The command document of an `OP_MSG`, which must have no document sequences.
fn op_msg_command(message: &Message) -> Result<Document, Box<dyn std::error::Error>> {
    let Body::Msg(msg) = &message.body else { return Err(format!("expected OP_MSG, got {message:?}").into()) };
    assert!(msg.sequences.is_empty());
    assert_eq!(msg.flags.bits(), 0);
    Ok(Document::try_from(msg.body.as_raw())?)
}

/// Checks the parts of a handshake the server relies on; returns the driver's name.
fn assert_handshake(command: &Document) -> Result<String, Box<dyn std::error::Error>> {
    let name = command.keys().next().ok_or("empty command")?;
    assert!(["hello", "isMaster", "ismaster"].contains(&name.as_str()), "command is {name}");
    let client = command.get_document("client")?;
    let driver = client.get_document("driver")?;
    assert!(driver.contains_key("version"));
    assert_eq!(client.get_document("application")?.get_str("name")?, "fixture");
    Ok(driver.get_str("name")?.to_owned())
}

fn compression(command: &Document) -> Result<Vec<&str>, Box<dyn std::error::Error>> {
    Ok(command.get_array("compression")?.iter().filter_map(Bson::as_str).collect())
}

#[test]
fn fixtures_pymongo_hello_decodes() -> TestResult {
    let message = decode(PYMONGO_HELLO)?;
    assert_eq!(message.op_code(), OpCode::Msg);
    assert_eq!(message.compressor, None);
    assert_eq!(message.header.response_to, 0);
    let command = op_msg_command(&message)?;
    assert_eq!(command.keys().next().map(String::as_str), Some("ismaster"));
    assert!(assert_handshake(&command)?.starts_with("PyMongo"));
    assert_eq!(command.get_str("$db")?, "admin");
    assert!(command.get_bool("helloOk")?);
    // The monitoring connection's handshake does not offer compression.
    assert!(!command.contains_key("compression"));
    assert_reencodes(&message, PYMONGO_HELLO)
}

#[test]
fn fixtures_pymongo_hello_compressors_decodes() -> TestResult {
    let message = decode(PYMONGO_HELLO_COMPRESSORS)?;
    assert_eq!(message.op_code(), OpCode::Msg);
    assert_eq!(message.compressor, None, "the handshake itself is never compressed");
    let command = op_msg_command(&message)?;
    assert_eq!(command.keys().next().map(String::as_str), Some("ismaster"));
    assert!(assert_handshake(&command)?.starts_with("PyMongo"));
    assert_eq!(command.get_str("$db")?, "admin");
    assert_eq!(compression(&command)?, ["zstd", "snappy", "zlib"]);
    assert_reencodes(&message, PYMONGO_HELLO_COMPRESSORS)
}

#[test]
fn fixtures_node_hello_decodes() -> TestResult {
    let message = decode(NODE_HELLO)?;
    assert_eq!(message.op_code(), OpCode::Query);
    assert_eq!(message.compressor, None);
    let Body::Query(query) = &message.body else { return Err(format!("expected OP_QUERY, got {message:?}").into()) };
    assert_eq!(query.full_collection_name, "admin.$cmd");
    assert_eq!(query.number_to_skip, 0);
    assert_eq!(query.number_to_return, -1);
    assert_eq!(query.return_fields_selector, None);
    let command = Document::try_from(query.query.as_raw())?;
    assert_eq!(command.keys().next().map(String::as_str), Some("ismaster"));
    assert_eq!(assert_handshake(&command)?, "nodejs");
    // Legacy OP_QUERY commands name their database in the namespace, not in `$db`.
    assert!(!command.contains_key("$db"));
    assert_eq!(compression(&command)?, ["none"]);
    assert_reencodes(&message, NODE_HELLO)
}

#[test]
fn fixtures_decode_one_byte_at_a_time() -> TestResult {
    for fixture in [PYMONGO_HELLO, PYMONGO_HELLO_COMPRESSORS, NODE_HELLO] {
        let expected = decode(fixture)?;
        let mut src = BytesMut::new();
        for (i, byte) in fixture.iter().enumerate() {
            src.extend_from_slice(&[*byte]);
            let decoded = MessageCodec::default().decode(&mut src)?;
            if i + 1 < fixture.len() {
                assert!(decoded.is_none(), "message after {} of {} bytes", i + 1, fixture.len());
            } else {
                assert_eq!(decoded.as_ref(), Some(&expected));
            }
        }
    }
    Ok(())
}
