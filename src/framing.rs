//! Line framing for the wire protocol: the one place that turns bytes into JSON lines and back,
//! and enforces [`MAX_LINE_BYTES`].

use std::io;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Why no line could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a line is longer than the limit")]
    TooLong,
    #[error("the line is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads newline-terminated lines up to a length limit ([`MAX_LINE_BYTES`] on the hub).
///
/// Unlike `AsyncBufReadExt::lines`, it never buffers more than the limit, and it is cancel safe:
/// a partial line lives in `self`, so `next_line` can sit in a `select!` next to other work.
pub struct FrameReader<R> {
    inner: R,
    line: Vec<u8>,
    limit: usize,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// A reader that refuses lines longer than `limit` bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        FrameReader {
            inner,
            line: Vec::new(),
            limit,
        }
    }

    /// The next line without its `\n`, or `None` at end of stream. A partial last line without
    /// a newline is returned as a line.
    pub async fn next_line(&mut self) -> Result<Option<String>, FrameError> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() {
                    return Ok(None);
                }
                return self.take_line().map(Some);
            }
            let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], true),
                None => (available, false),
            };
            if self.line.len() + chunk.len() > self.limit {
                return Err(FrameError::TooLong);
            }
            self.line.extend_from_slice(chunk);
            let consumed = chunk.len() + usize::from(complete);
            self.inner.consume(consumed);
            if complete {
                return self.take_line().map(Some);
            }
        }
    }

    fn take_line(&mut self) -> Result<String, FrameError> {
        let bytes = std::mem::take(&mut self.line);
        String::from_utf8(bytes).map_err(|_| FrameError::NotUtf8)
    }
}

/// Serializes one message as a single line, newline included, ready for one `write_all`.
pub fn encode_line(message: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).expect("wire messages always serialize");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_LINE_BYTES;

    #[tokio::test]
    async fn splits_lines_and_keeps_a_trailing_partial_line() {
        let mut reader = FrameReader::new(&b"{\"a\":1}\n\n{\"b\":2}"[..], MAX_LINE_BYTES);
        assert_eq!(
            reader.next_line().await.unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some(""));
        assert_eq!(
            reader.next_line().await.unwrap().as_deref(),
            Some("{\"b\":2}")
        );
        assert_eq!(reader.next_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn refuses_a_line_over_the_limit() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 1];
        input.push(b'\n');
        let mut reader = FrameReader::new(tokio::io::BufReader::new(&input[..]), MAX_LINE_BYTES);
        assert!(matches!(reader.next_line().await, Err(FrameError::TooLong)));
    }

    #[tokio::test]
    async fn accepts_a_line_at_the_limit() {
        let mut input = vec![b'x'; MAX_LINE_BYTES];
        input.push(b'\n');
        let mut reader = FrameReader::new(tokio::io::BufReader::new(&input[..]), MAX_LINE_BYTES);
        assert_eq!(
            reader.next_line().await.unwrap().unwrap().len(),
            MAX_LINE_BYTES
        );
    }
}
