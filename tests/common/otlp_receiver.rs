//! A small OTLP/HTTP receiver: it reads each export request of a kept-alive connection,
//! decodes it with OpenTelemetry's own protobuf types, hands it to the caller and answers with
//! OTLP's empty success. `tests/tracing.rs` keeps the spans; the load bench's `--otlp-sink`
//! counts them (it includes this file by path).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

/// One export: the request's path, its body's size and what it decoded to (`None` for a
/// body that is not an OTLP trace export).
pub struct Export {
    pub path: String,
    pub bytes: usize,
    pub request: Option<ExportTraceServiceRequest>,
}

/// Listens on a free loopback port and serves each connection on its own thread, calling
/// `on_export` for every export; returns the port.
pub fn start(on_export: impl Fn(Export) + Clone + Send + 'static) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let on_export = on_export.clone();
            std::thread::spawn(move || serve(stream, &on_export));
        }
    });
    Ok(port)
}

/// Reads one connection's requests until it closes or sends one that cannot be read.
fn serve(stream: TcpStream, on_export: &impl Fn(Export)) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let mut length = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = ExportTraceServiceRequest::decode(body.as_slice()).ok();
        on_export(Export { path, bytes: length, request });
        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
