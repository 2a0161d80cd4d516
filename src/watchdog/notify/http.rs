//! A small HTTP/1.1 client for the webhook: one request on a fresh
//! connection (`Connection: close`), and only the status line read back.
//! Reads are bounded, so a server that talks forever cannot fill memory.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most of an answer's head that is read.
const MAX_HEAD: usize = 16 * 1024;

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Status {
    pub code: u16,
    pub reason: String,
}

/// Writes `head` (ending in a blank line) and `body`, then reads the final
/// status line, skipping interim `1xx` answers.
pub(super) async fn exchange<S>(stream: &mut S, head: &str, body: &[u8]) -> io::Result<Status>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let status = parse_status_line(&buf[..end])?;
            if (100..200).contains(&status.code) {
                buf.drain(..end + 4);
                continue;
            }
            return Ok(status);
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("the answer's head is longer than 16 KiB"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // A server that closes right after its status line still said it.
            return match find(&buf, b"\n") {
                Some(end) => parse_status_line(&buf[..end]),
                None => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before an answer",
                )),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.1 200 OK` → 200 and `OK`.
fn parse_status_line(head: &[u8]) -> io::Result<Status> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/") && (100..600).contains(&code) => Ok(Status {
            code,
            reason: parts.next().unwrap_or_default().chars().take(200).collect(),
        }),
        _ => Err(invalid("the answer is not HTTP")),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(server_says: &'static [u8]) -> io::Result<Status> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            let _ = server.read(&mut req).await;
            server.write_all(server_says).await.unwrap();
        });
        let status = exchange(&mut client, "POST / HTTP/1.1\r\n\r\n", b"{}").await;
        server.await.unwrap();
        status
    }

    #[tokio::test]
    async fn the_final_status_follows_interim_answers() {
        let s = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nX: y\r\n\r\nbody")
            .await
            .unwrap();
        assert_eq!((s.code, s.reason.as_str()), (202, "Accepted"));
    }

    #[tokio::test]
    async fn something_else_than_http_is_an_error() {
        let e = answer(b"220 smtp.example.com ESMTP\r\n").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_bare_status_line_before_close_counts() {
        let s = answer(b"HTTP/1.0 503 Busy\n").await.unwrap();
        assert_eq!(s.code, 503);
    }
}
