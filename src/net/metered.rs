//! A stream wrapper that counts the bytes crossing the socket (`physicalBytesIn/Out`) and
//! notes when the first bytes of a request arrived (the operation's `read` phase).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::state::counters::{NetworkStats, add};

/// Counts bytes read and written through `inner` into the server's network stats.
pub struct Metered<'a, S> {
    inner: S,
    network: &'a NetworkStats,
    /// When bytes first arrived since the last [`Metered::take_first_byte`].
    first_byte: Option<Instant>,
}

impl<'a, S> Metered<'a, S> {
    /// Wraps `inner`, counting into `network`.
    pub fn new(inner: S, network: &'a NetworkStats) -> Self {
        Self { inner, network, first_byte: None }
    }

    /// When the bytes of the message just decoded began to arrive (`None` when they came with
    /// the previous message's read); starts the next message's watch.
    pub fn take_first_byte(&mut self) -> Option<Instant> {
        self.first_byte.take()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<'_, S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 && self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        add(&self.network.physical_bytes_in, read);
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll {
            add(&self.network.physical_bytes_out, written);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
