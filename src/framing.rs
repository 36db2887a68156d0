//! Line framing for the wire protocol: the one place that turns bytes into JSON lines and back,
//! and enforces [`MAX_LINE_BYTES`].

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt},
    time::Instant,
};

/// Why no line could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("a line is longer than the limit")]
    TooLong,
    #[error("the line is not UTF-8")]
    NotUtf8,
    #[error("a line stayed unfinished too long")]
    Stalled,
    #[error("too many unfinished lines are held")]
    OverBudget,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The bytes of unfinished lines that several readers may hold together.
#[derive(Debug)]
pub(crate) struct LineBudget {
    held: AtomicUsize,
    limit: usize,
}

impl LineBudget {
    pub(crate) fn new(limit: usize) -> LineBudget {
        LineBudget {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    fn take(&self, bytes: usize) -> bool {
        let held = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if held > self.limit {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Reads newline-terminated lines up to a length limit ([`MAX_LINE_BYTES`] on the hub).
///
/// Unlike `AsyncBufReadExt::lines`, it never buffers more than the limit, and it is cancel safe:
/// a partial line lives in `self`, so `next_line` can sit in a `select!` next to other work. The
/// hub also bounds how long a line may stay unfinished ([`FrameReader::stalling_after`]) and
/// what all its connections' unfinished lines hold together ([`FrameReader::within`]).
pub(crate) struct FrameReader<R> {
    inner: R,
    line: Vec<u8>,
    limit: usize,
    /// When the unfinished line in `line` began.
    started: Option<Instant>,
    stall: Option<Duration>,
    budget: Option<Arc<LineBudget>>,
    /// What this reader holds of the budget now.
    reserved: usize,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// A reader that refuses lines longer than `limit` bytes.
    pub(crate) fn new(inner: R, limit: usize) -> Self {
        FrameReader {
            inner,
            line: Vec::new(),
            limit,
            started: None,
            stall: None,
            budget: None,
            reserved: 0,
        }
    }

    /// Fails with [`FrameError::Stalled`] when a line stays unfinished for `stall`.
    pub(crate) fn stalling_after(mut self, stall: Duration) -> Self {
        self.stall = Some(stall);
        self
    }

    /// Holds unfinished lines within `budget`, shared with other readers.
    pub(crate) fn within(mut self, budget: Arc<LineBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The next line without its `\n`, or `None` at end of stream. A partial last line without
    /// a newline is returned as a line.
    pub(crate) async fn next_line(&mut self) -> Result<Option<String>, FrameError> {
        loop {
            let available = match (self.started, self.stall) {
                (Some(started), Some(stall)) => {
                    tokio::time::timeout_at(started + stall, self.inner.fill_buf())
                        .await
                        .map_err(|_| FrameError::Stalled)??
                }
                _ => self.inner.fill_buf().await?,
            };
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
            if !complete {
                if let Some(budget) = &self.budget {
                    if !budget.take(chunk.len()) {
                        return Err(FrameError::OverBudget);
                    }
                    self.reserved += chunk.len();
                }
                self.started.get_or_insert_with(Instant::now);
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
        self.give_back_unfinished();
        let bytes = std::mem::take(&mut self.line);
        String::from_utf8(bytes).map_err(|_| FrameError::NotUtf8)
    }

    /// Returns what the unfinished line held to the budget: it is finished.
    fn give_back_unfinished(&mut self) {
        self.started = None;
        if let Some(budget) = &self.budget {
            budget.give_back(std::mem::take(&mut self.reserved));
        }
    }
}

impl<R> Drop for FrameReader<R> {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.reserved);
        }
    }
}

/// Serializes one message as a single line, newline included, ready for one `write_all`.
pub(crate) fn encode_line(message: &impl Serialize) -> Vec<u8> {
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
    async fn unfinished_lines_are_held_within_a_shared_budget() {
        let budget = Arc::new(LineBudget::new(10));
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(tokio::io::BufReader::new(reader), MAX_LINE_BYTES)
            .within(budget.clone());
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"12345678").await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(50), frames.next_line()).await;
        assert!(read.is_err(), "the line is not finished yet");
        assert_eq!(budget.held.load(Ordering::Relaxed), 8);
        writer.write_all(b"9\n").await.unwrap();
        assert_eq!(frames.next_line().await.unwrap().unwrap(), "123456789");
        assert_eq!(budget.held.load(Ordering::Relaxed), 0, "given back");
        writer.write_all(b"0123456789ab").await.unwrap();
        assert!(matches!(
            frames.next_line().await,
            Err(FrameError::OverBudget)
        ));
        drop(frames);
        assert_eq!(budget.held.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_left_unfinished_stalls() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(tokio::io::BufReader::new(reader), MAX_LINE_BYTES)
            .stalling_after(Duration::from_secs(10));
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"{\"id\":").await.unwrap();
        assert!(matches!(frames.next_line().await, Err(FrameError::Stalled)));
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
