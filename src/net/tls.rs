//! Telling a TLS client from a plain one on a shared port. The certificates and the acceptor
//! are `state::tls`'s.

use tokio::net::TcpStream;

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether the client opened with a TLS handshake, judged from its first byte without
/// consuming it (how mongod serves plain and TLS clients on one port).
///
/// # Errors
/// The socket's error, or `UnexpectedEof` when the client closed before sending anything.
pub async fn starts_with_tls(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(first[0] == TLS_HANDSHAKE_RECORD),
    }
}
