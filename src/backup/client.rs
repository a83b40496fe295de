//! A tiny synchronous MongoDB client for the command line: commands over one TCP connection
//! (TLS when the URI asks, see [`super::client_tls`]), framed with the server's own wire
//! crate, authenticated with SCRAM when the URI carries credentials. It understands
//! `mongodb://[user:password@]host[:port][/db]` with the options `authSource`,
//! `authMechanism` (SCRAM-SHA-256, SCRAM-SHA-1), `tls`/`ssl`, `tlsCAFile` and
//! `tlsCertificateKeyFile`; every other URI option is refused with "not supported yet"
//! rather than ignored.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf, doc};
use bytes::{Bytes, BytesMut};
use monarch_wire::{Body, DocumentBytes, Header, MAX_MESSAGE_SIZE, Message, OpMsg};

use super::client_tls::{TlsOptions, TlsStream};
use super::error::BackupError;
use crate::auth::scram::{ClientConversation, Mechanism, ScramError};

/// How long connecting may take, and each step of setting the connection up (the TLS
/// handshake, the first `hello`, the login): a server that never answers, or a plain server
/// asked for TLS, fails the tool instead of hanging it. Commands after that have no limit (a
/// backup takes as long as it takes).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server address taken from a `mongodb://` URI, with the credentials to log in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Host name or IP address.
    pub host: String,
    /// Port (27017 when the URI has none).
    pub port: u16,
    /// Who to authenticate as, when the URI names a user.
    pub credential: Option<Credential>,
    /// TLS, when the URI asks for it.
    pub tls: Option<TlsOptions>,
}

/// A user to authenticate as.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// The database the user is defined in (`authSource`, else the URI's database, else
    /// `admin`).
    pub source: String,
    /// The mechanism (`authMechanism`); `None`: the server's choice among the SCRAMs, as
    /// drivers negotiate it.
    pub mechanism: Option<Mechanism>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("user", &self.user).field("source", &self.source).finish_non_exhaustive()
    }
}

impl ServerAddress {
    /// Parses `uri`.
    ///
    /// # Errors
    /// [`BackupError::BadArgument`] for what is not a `mongodb://` URI, or a bad option value;
    /// [`BackupError::NotSupported`] for `mongodb+srv://`, several hosts, and options other
    /// than `authSource`, `authMechanism`, `tls`, `ssl`, `tlsCAFile` and
    /// `tlsCertificateKeyFile`: this client would not honour them.
    pub fn parse(uri: &str) -> Result<Self, BackupError> {
        if uri.starts_with("mongodb+srv://") {
            return Err(BackupError::NotSupported("a mongodb+srv:// URI".to_owned()));
        }
        let rest = uri
            .strip_prefix("mongodb://")
            .ok_or_else(|| BackupError::BadArgument(format!("{uri} is not a mongodb:// URI")))?;
        let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let (user_info, hosts) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => (Some(user_info), hosts),
            None => (None, authority),
        };
        if hosts.contains(',') {
            return Err(BackupError::NotSupported("several hosts in the URI".to_owned()));
        }
        let (path, options) = tail.split_once('?').unwrap_or((tail, ""));
        let (mut source, mut mechanism) = (None, None);
        let (mut tls, mut tls_options) = (None, TlsOptions::default());
        for option in options.split('&').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("tls" | "ssl", value)) => {
                    let on = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(BackupError::BadArgument(format!("{option}: true or false"))),
                    };
                    if tls.is_some_and(|t| t != on) {
                        return Err(BackupError::BadArgument(format!("{uri}: tls and ssl disagree")));
                    }
                    tls = Some(on);
                }
                Some(("tlsCAFile", value)) => tls_options.ca_file = Some(percent_decode(value)?.into()),
                Some(("tlsCertificateKeyFile", value)) => {
                    tls_options.certificate_key_file = Some(percent_decode(value)?.into());
                }
                Some(("authSource", value)) => source = Some(percent_decode(value)?),
                Some(("authMechanism", value)) => {
                    mechanism = Some(Mechanism::from_name(value).ok_or_else(|| {
                        BackupError::NotSupported(format!("authMechanism={value} (SCRAM-SHA-256 and SCRAM-SHA-1 are)"))
                    })?);
                }
                _ => return Err(BackupError::NotSupported(format!("the URI option {option}"))),
            }
        }
        let credential = match user_info {
            None if source.is_some() || mechanism.is_some() => {
                return Err(BackupError::BadArgument(format!("{uri}: authSource and authMechanism need a user")));
            }
            None => None,
            Some(user_info) => {
                let (user, password) = user_info.split_once(':').ok_or_else(|| {
                    BackupError::BadArgument("the URI names a user without a password (user:password@)".to_owned())
                })?;
                let database = percent_decode(path)?;
                Some(Credential {
                    user: percent_decode(user)?,
                    password: percent_decode(password)?,
                    source: source.unwrap_or(if database.is_empty() { "admin".to_owned() } else { database }),
                    mechanism,
                })
            }
        };
        let (host, port) = match hosts.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || hosts.starts_with('[') => {
                let port = port.parse().map_err(|_| BackupError::BadArgument(format!("bad port in {uri}")))?;
                (host, port)
            }
            _ => (hosts, 27017),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(BackupError::BadArgument(format!("no host in {uri}")));
        }
        // As drivers: a TLS file option turns TLS on, and contradicts tls=false.
        let files = tls_options != TlsOptions::default();
        let tls = match tls {
            Some(false) if files => {
                return Err(BackupError::BadArgument(format!("{uri}: TLS file options with tls=false")));
            }
            Some(on) => on,
            None => files,
        };
        Ok(Self { host: host.to_owned(), port, credential, tls: tls.then_some(tls_options) })
    }
}

/// A URI component with its `%XX` escapes decoded (user names and passwords carry `@`, `:`
/// and `/` that way).
fn percent_decode(text: &str) -> Result<String, BackupError> {
    super::layout::percent_decode(text)
        .ok_or_else(|| BackupError::BadArgument(format!("bad percent escape in {text:?}")))
}

/// The bytes to and from a server.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read(buffer),
            Self::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write(bytes),
            Self::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(stream) => stream.flush(),
            Self::Tls(stream) => stream.flush(),
        }
    }
}

/// One connection to a server, for several commands in turn.
pub struct Connection {
    stream: Stream,
    target: String,
    next_request_id: i32,
}

impl Connection {
    /// Connects to `address`, with TLS and a login when it asks for them.
    ///
    /// # Errors
    /// Name resolution, connection, TLS and login errors; a peer that does not answer
    /// `hello` within [`SETUP_TIMEOUT`].
    pub fn open(address: &ServerAddress) -> Result<Self, BackupError> {
        let target = format!("{}:{}", address.host, address.port);
        let io = |e: std::io::Error| BackupError::io(std::path::Path::new(&target), e);
        let socket = (address.host.as_str(), address.port)
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| BackupError::BadArgument(format!("{target} resolves to no address")))?;
        let tcp = TcpStream::connect_timeout(&socket, SETUP_TIMEOUT).map_err(io)?;
        let limit = |tcp: &TcpStream, timeout: Option<Duration>| {
            tcp.set_read_timeout(timeout).and_then(|()| tcp.set_write_timeout(timeout))
        };
        limit(&tcp, Some(SETUP_TIMEOUT)).map_err(io)?;
        let stream = match &address.tls {
            Some(options) => {
                let mut tls = super::client_tls::connect(tcp, &address.host, options)?;
                super::client_tls::handshake(&mut tls).map_err(io)?;
                Stream::Tls(Box::new(tls))
            }
            None => Stream::Plain(tcp),
        };
        let mut connection = Self { stream, target: target.clone(), next_request_id: 1 };
        // As drivers: a first `hello` shows the peer is a server that answers, and tells which
        // SCRAMs the user has.
        let mut hello = doc! { "hello": 1 };
        if let Some(credential) = &address.credential {
            hello.insert("saslSupportedMechs", format!("{}.{}", credential.source, credential.user));
        }
        let hello = connection.command("admin", hello)?;
        if let Some(credential) = &address.credential {
            connection.authenticate(credential, &hello)?;
        }
        let tcp = match &connection.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        };
        limit(tcp, None).map_err(io)?;
        Ok(connection)
    }

    /// Logs in as `credential` with SCRAM (`saslStart`, `saslContinue`), checking the
    /// server's signature too; `hello` is the server's answer to the first `hello`, which
    /// named the user's mechanisms.
    fn authenticate(&mut self, credential: &Credential, hello: &Document) -> Result<(), BackupError> {
        let mechanism = credential.mechanism.unwrap_or_else(|| {
            // As drivers: SHA-256 unless the user has only SHA-1.
            let offered =
                hello.get_array("saslSupportedMechs").map(|m| m.iter().any(|m| m.as_str() == Some("SCRAM-SHA-256")));
            if offered.unwrap_or(true) { Mechanism::Sha256 } else { Mechanism::Sha1 }
        });
        let failed = |e: ScramError| BackupError::Server {
            code: 18,
            code_name: "AuthenticationFailed".to_owned(),
            message: format!("SCRAM with {}: {e}", mechanism.name()),
        };
        let (conversation, first) =
            ClientConversation::start(mechanism, &credential.user, &credential.password).map_err(failed)?;
        let payload =
            |bytes: Vec<u8>| Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes });
        let reply = self.command(
            &credential.source,
            doc! { "saslStart": 1, "mechanism": mechanism.name(), "payload": payload(first), "options": { "skipEmptyExchange": true } },
        )?;
        let server_first = reply_payload(&reply)?;
        let last = conversation.respond(&server_first).map_err(failed)?;
        let id = reply.get("conversationId").cloned().unwrap_or(Bson::Int32(1));
        let reply = self.command(
            &credential.source,
            doc! { "saslContinue": 1, "conversationId": id.clone(), "payload": payload(last.message.clone()) },
        )?;
        last.check_server_final(&reply_payload(&reply)?).map_err(failed)?;
        if !reply.get_bool("done").unwrap_or(false) {
            self.command(
                &credential.source,
                doc! { "saslContinue": 1, "conversationId": id, "payload": payload(Vec::new()) },
            )?;
        }
        Ok(())
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
        self.stream.write_all(&out).and_then(|()| self.stream.flush()).map_err(io)?;
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

impl Connection {
    /// Hands every document of the cursor `reply` opened (a `find`, `listCollections` or
    /// `listIndexes` run on `db`) to `each` in order, fetching the later batches with
    /// `getMore` (`batch_size` documents each, when given); returns how many there were.
    ///
    /// # Errors
    /// The server's errors, a reply that is not a cursor's, and `each`'s errors.
    pub fn drain_cursor(
        &mut self,
        db: &str,
        mut reply: Document,
        batch_size: Option<i32>,
        each: &mut dyn FnMut(Document) -> Result<(), BackupError>,
    ) -> Result<u64, BackupError> {
        let target = self.target.clone();
        let protocol = |what: &str| BackupError::Internal(format!("{target} sent {what}"));
        let mut count = 0u64;
        loop {
            let Some(Bson::Document(mut cursor)) = reply.remove("cursor") else {
                return Err(protocol("a reply without a cursor"));
            };
            let batch = cursor.remove("firstBatch").or_else(|| cursor.remove("nextBatch"));
            let Some(Bson::Array(batch)) = batch else { return Err(protocol("a cursor without a batch")) };
            for document in batch {
                let Bson::Document(document) = document else { return Err(protocol("a batch of non-documents")) };
                each(document)?;
                count += 1;
            }
            let id = cursor.get_i64("id").map_err(|_| protocol("a cursor without an id"))?;
            if id == 0 {
                return Ok(count);
            }
            // The cursor's namespace names the collection getMore wants (`db.$cmd.listCollections`
            // for a listing).
            let ns = cursor.get_str("ns").map_err(|_| protocol("a cursor without a namespace"))?;
            let collection = ns.split_once('.').map_or(ns, |(_, collection)| collection).to_owned();
            let mut get_more = doc! { "getMore": id, "collection": collection };
            if let Some(batch_size) = batch_size {
                get_more.insert("batchSize", batch_size);
            }
            reply = self.command(db, get_more)?;
        }
    }
}

/// The SASL payload of a `saslStart` or `saslContinue` reply.
fn reply_payload(reply: &Document) -> Result<Vec<u8>, BackupError> {
    match reply.get("payload") {
        Some(Bson::Binary(binary)) => Ok(binary.bytes.clone()),
        _ => Err(BackupError::Internal("the server sent a SASL reply without a payload".to_owned())),
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
        assert_eq!(
            parsed,
            Some(ServerAddress { host: "localhost".to_owned(), port: 27018, credential: None, tls: None })
        );
        let parsed = ServerAddress::parse("mongodb://db.example/").ok();
        assert_eq!(
            parsed,
            Some(ServerAddress { host: "db.example".to_owned(), port: 27017, credential: None, tls: None })
        );
        let parsed = ServerAddress::parse("mongodb://u%40x:p%3Aw%2F@h:1/app?authMechanism=SCRAM-SHA-1").ok();
        let credential = parsed.and_then(|p| p.credential);
        assert_eq!(
            credential,
            Some(Credential {
                user: "u@x".to_owned(),
                password: "p:w/".to_owned(),
                source: "app".to_owned(),
                mechanism: Some(Mechanism::Sha1)
            })
        );
        let parsed = ServerAddress::parse("mongodb://u:p@h/app?authSource=other").ok();
        assert_eq!(parsed.and_then(|p| p.credential).map(|c| c.source), Some("other".to_owned()));
        let parsed = ServerAddress::parse("mongodb://u:p@h").ok();
        assert_eq!(parsed.and_then(|p| p.credential).map(|c| c.source), Some("admin".to_owned()));
        assert!(matches!(ServerAddress::parse("mongodb://u@h"), Err(BackupError::BadArgument(_))));
        assert!(matches!(ServerAddress::parse("mongodb://h/?authSource=x"), Err(BackupError::BadArgument(_))));
        assert!(matches!(
            ServerAddress::parse("mongodb://u:p@h/?authMechanism=PLAIN"),
            Err(BackupError::NotSupported(_))
        ));
        assert!(matches!(ServerAddress::parse("mongodb://u:%zz@h"), Err(BackupError::BadArgument(_))));
        let tls = |uri: &str| ServerAddress::parse(uri).map(|a| a.tls);
        assert_eq!(tls("mongodb://h:1/?tls=true").ok(), Some(Some(TlsOptions::default())));
        assert_eq!(tls("mongodb://h:1/?ssl=false").ok(), Some(None));
        let ca = TlsOptions { ca_file: Some("/a b.pem".into()), certificate_key_file: None };
        assert_eq!(tls("mongodb://h/?tlsCAFile=/a%20b.pem").ok(), Some(Some(ca)));
        assert!(matches!(tls("mongodb://h/?tls=false&tlsCAFile=/a"), Err(BackupError::BadArgument(_))));
        assert!(matches!(tls("mongodb://h/?tls=true&ssl=false"), Err(BackupError::BadArgument(_))));
        assert!(matches!(tls("mongodb://h/?tls=yes"), Err(BackupError::BadArgument(_))));
        assert!(matches!(ServerAddress::parse("mongodb://h/?tlsInsecure=true"), Err(BackupError::NotSupported(_))));
        assert!(matches!(ServerAddress::parse("mongodb://a:1,b:2"), Err(BackupError::NotSupported(_))));
        assert!(matches!(ServerAddress::parse("http://h"), Err(BackupError::BadArgument(_))));
    }
}
