//! A tiny synchronous MongoDB client for the command line: one command over one plain TCP
//! connection, framed with the server's own wire crate. It understands only
//! `mongodb://host[:port][/]`; credentials, TLS and every other URI option are refused with
//! "not supported yet" rather than ignored.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf};
use bytes::{Bytes, BytesMut};
use monarch_wire::{Body, DocumentBytes, Header, MAX_MESSAGE_SIZE, Message, OpMsg};

use super::error::BackupError;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server address taken from a `mongodb://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Host name or IP address.
    pub host: String,
    /// Port (27017 when the URI has none).
    pub port: u16,
}

impl ServerAddress {
    /// Parses `uri`.
    ///
    /// # Errors
    /// [`BackupError::BadArgument`] for what is not a `mongodb://` URI;
    /// [`BackupError::NotSupported`] for credentials, `mongodb+srv://`, several hosts, a
    /// database path or any option (`?tls=true`, ...): this client would not honour them.
    pub fn parse(uri: &str) -> Result<Self, BackupError> {
        if uri.starts_with("mongodb+srv://") {
            return Err(BackupError::NotSupported("a mongodb+srv:// URI".to_owned()));
        }
        let rest = uri
            .strip_prefix("mongodb://")
            .ok_or_else(|| BackupError::BadArgument(format!("{uri} is not a mongodb:// URI")))?;
        let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(BackupError::NotSupported("credentials in the URI (authentication)".to_owned()));
        }
        if authority.contains(',') {
            return Err(BackupError::NotSupported("several hosts in the URI".to_owned()));
        }
        let (path, options) = tail.split_once('?').unwrap_or((tail, ""));
        if !options.is_empty() {
            return Err(BackupError::NotSupported(format!("URI options ({options})")));
        }
        if !path.is_empty() {
            return Err(BackupError::NotSupported(format!("a database in the URI ({path})")));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port.parse().map_err(|_| BackupError::BadArgument(format!("bad port in {uri}")))?;
                (host, port)
            }
            _ => (authority, 27017),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(BackupError::BadArgument(format!("no host in {uri}")));
        }
        Ok(Self { host: host.to_owned(), port })
    }
}

/// One connection to a server, for several commands in turn.
pub struct Connection {
    stream: TcpStream,
    target: String,
    next_request_id: i32,
}

impl Connection {
    /// Connects to `address`.
    ///
    /// # Errors
    /// Name resolution and connection errors.
    pub fn open(address: &ServerAddress) -> Result<Self, BackupError> {
        let target = format!("{}:{}", address.host, address.port);
        let io = |e: std::io::Error| BackupError::io(std::path::Path::new(&target), e);
        let socket = (address.host.as_str(), address.port)
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| BackupError::BadArgument(format!("{target} resolves to no address")))?;
        let stream = TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT).map_err(io)?;
        Ok(Self { stream, target, next_request_id: 1 })
    }

    /// Runs `command` (with `$db` set to `db`) and returns its reply.
    ///
    /// # Errors
    /// Connection and protocol errors; [`BackupError::Server`] when the reply has `ok: 0`.
    pub fn command(&mut self, db: &str, mut command: Document) -> Result<Document, BackupError> {
        let target = &self.target;
        let io = |e: std::io::Error| BackupError::io(std::path::Path::new(target), e);
        command.insert("$db", db);
        let body = DocumentBytes::try_from(&command).map_err(|e| BackupError::Internal(e.to_string()))?;
        let request = Message {
            header: Header { request_id: self.next_request_id, response_to: 0 },
            body: Body::Msg(OpMsg::new(body)),
            compressor: None,
        };
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let mut out = BytesMut::new();
        request.encode(&mut out).map_err(|e| BackupError::Internal(e.to_string()))?;
        self.stream.write_all(&out).map_err(io)?;
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).map_err(io)?;
        let total = usize::try_from(i32::from_le_bytes(length))
            .ok()
            .filter(|n| (16..=MAX_MESSAGE_SIZE).contains(n))
            .ok_or_else(|| BackupError::Internal(format!("{target} sent a reply of impossible length")))?;
        let mut frame = vec![0u8; total];
        frame.get_mut(..4).unwrap_or_default().copy_from_slice(&length);
        self.stream.read_exact(frame.get_mut(4..).unwrap_or_default()).map_err(io)?;
        let reply = Message::decode(Bytes::from(frame)).map_err(|e| BackupError::Internal(format!("{target}: {e}")))?;
        let Body::Msg(reply) = reply.body else {
            return Err(BackupError::Internal(format!("{target} did not answer with OP_MSG")));
        };
        let reply = RawDocumentBuf::from_bytes(reply.body.as_bytes().to_vec())
            .and_then(|raw| Document::try_from(raw.as_ref()))
            .map_err(|e| BackupError::Internal(format!("{target} sent a reply that does not parse: {e}")))?;
        let ok = match reply.get("ok") {
            Some(Bson::Double(n)) => *n == 1.0,
            Some(Bson::Int32(n)) => *n == 1,
            Some(Bson::Int64(n)) => *n == 1,
            _ => false,
        };
        if !ok {
            return Err(BackupError::Server {
                code: reply.get_i32("code").unwrap_or(0),
                code_name: reply.get_str("codeName").unwrap_or("").to_owned(),
                message: reply.get_str("errmsg").unwrap_or("").to_owned(),
            });
        }
        Ok(reply)
    }
}

/// Runs one `command` (with `$db` set to `db`) on the server at `address` over a connection
/// of its own and returns its reply.
///
/// # Errors
/// As [`Connection::open`] and [`Connection::command`].
pub fn run_command(address: &ServerAddress, db: &str, command: Document) -> Result<Document, BackupError> {
    Connection::open(address)?.command(db, command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_uri_takes_host_and_port_and_refuses_what_it_would_ignore() {
        let parsed = ServerAddress::parse("mongodb://localhost:27018").ok();
        assert_eq!(parsed, Some(ServerAddress { host: "localhost".to_owned(), port: 27018 }));
        let parsed = ServerAddress::parse("mongodb://db.example/").ok();
        assert_eq!(parsed, Some(ServerAddress { host: "db.example".to_owned(), port: 27017 }));
        assert!(matches!(ServerAddress::parse("mongodb://u:p@h:1"), Err(BackupError::NotSupported(_))));
        assert!(matches!(ServerAddress::parse("mongodb://h:1/?tls=true"), Err(BackupError::NotSupported(_))));
        assert!(matches!(ServerAddress::parse("mongodb://a:1,b:2"), Err(BackupError::NotSupported(_))));
        assert!(matches!(ServerAddress::parse("http://h"), Err(BackupError::BadArgument(_))));
    }
}
