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
    io::{AsyncRead, AsyncReadExt},
    net::unix::ReadHalf,
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
/// Unlike `AsyncBufReadExt::lines`, it holds at most the limit and one byte of a line, and it is
/// cancel safe:
/// a partial line lives in `self`, so `next_line` can sit in a `select!` next to other work. The
/// hub also bounds how long a line may stay unfinished ([`FrameReader::stalling_after`]) and
/// what all its connections' unfinished lines hold together ([`FrameReader::within`]).
///
/// It reads into a buffer of its own rather than through a `BufReader`: a line that arrived
/// whole (the usual case) is handed out as that buffer, without a copy, and a connection that
/// waits for its next line holds no buffer at all ([`LineSource::ready`] comes first). A hub
/// with a thousand idle peers would otherwise hold a thousand read buffers. Each read offers
/// [`READ_CHUNK`] bytes or more; a read that returns less tells tokio the socket is drained, so
/// the next wait goes straight to the poller instead of trying a read that can only fail with
/// `EAGAIN`.
pub(crate) struct FrameReader<R> {
    inner: R,
    /// Bytes read and not handed out yet: the start of the next line, and, when one read
    /// brought several lines, the lines after it.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    limit: usize,
    /// When the unfinished line in `buf` began.
    started: Option<Instant>,
    stall: Option<Duration>,
    budget: Option<Arc<LineBudget>>,
    /// What this reader holds of the budget now.
    reserved: usize,
}

/// The least room offered to one read: a relay line of a few hundred bytes fits several times.
const READ_CHUNK: usize = 4096;

/// What a [`FrameReader`] reads from: bytes, and a way to wait for them without a buffer, so
/// that a reader waiting for its next line holds none.
pub(crate) trait LineSource: AsyncRead + Unpin {
    /// Returns once a read would find bytes (or the end, or an error) rather than wait.
    fn ready(&self) -> impl Future<Output = io::Result<()>>;
}

/// A Unix socket's read half: the hub's and the hub client's.
impl LineSource for ReadHalf<'_> {
    async fn ready(&self) -> io::Result<()> {
        self.readable().await
    }
}

impl<R: LineSource> FrameReader<R> {
    /// A reader that refuses lines longer than `limit` bytes.
    pub(crate) fn new(inner: R, limit: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
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
            if let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                if end > self.limit {
                    return Err(FrameError::TooLong);
                }
                return self.take_line(end).map(Some);
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.limit {
                return Err(FrameError::TooLong);
            }
            if !self.buf.is_empty() {
                self.started.get_or_insert_with(Instant::now);
            }
            let read = match (self.started, self.stall) {
                (Some(started), Some(stall)) => {
                    tokio::time::timeout_at(started + stall, self.read_more())
                        .await
                        .map_err(|_| FrameError::Stalled)??
                }
                _ => self.read_more().await?,
            };
            if read == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let end = self.buf.len();
                return self.take_line(end).map(Some);
            }
            self.hold()?;
        }
    }

    /// Waits for bytes, then reads them into `buf`; the room for them is made only once they
    /// are there. A read brings no more than would take `buf` one byte past the limit, which
    /// is enough to tell a line too long.
    async fn read_more(&mut self) -> io::Result<usize> {
        self.inner.ready().await?;
        self.buf.reserve(READ_CHUNK);
        let room = (self.limit + 1).saturating_sub(self.buf.len()).max(1);
        (&mut self.inner)
            .take(room as u64)
            .read_buf(&mut self.buf)
            .await
    }

    /// Counts every byte `buf` holds against the budget: the start of a line awaited, and what a
    /// read brought behind a line's end, which waits there until the next line is asked for.
    fn hold(&mut self) -> Result<(), FrameError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let more = self.buf.len().saturating_sub(self.reserved);
        if more > 0 {
            if !budget.take(more) {
                return Err(FrameError::OverBudget);
            }
            self.reserved += more;
        }
        Ok(())
    }

    /// Hands out `buf[..end]` as a line and keeps what follows its newline (if any) for the
    /// next one. A buffer that holds exactly this line becomes the line itself.
    fn take_line(&mut self, end: usize) -> Result<String, FrameError> {
        let rest = if end < self.buf.len() {
            self.buf.split_off(end + 1)
        } else {
            Vec::new()
        };
        self.release(self.buf.len());
        let mut line = std::mem::replace(&mut self.buf, rest);
        line.truncate(end);
        self.scanned = 0;
        String::from_utf8(line).map_err(|_| FrameError::NotUtf8)
    }

    /// Returns to the budget what the `bytes` handed out held: their line is finished.
    fn release(&mut self, bytes: usize) {
        self.started = None;
        let bytes = bytes.min(self.reserved);
        self.reserved -= bytes;
        if let Some(budget) = &self.budget {
            budget.give_back(bytes);
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

    /// Bytes at hand: always ready.
    impl LineSource for &[u8] {
        async fn ready(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Ready only in that a read waits for bytes itself.
    impl LineSource for tokio::io::DuplexStream {
        async fn ready(&self) -> io::Result<()> {
            Ok(())
        }
    }

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
        let mut reader = FrameReader::new(&input[..], MAX_LINE_BYTES);
        assert!(matches!(reader.next_line().await, Err(FrameError::TooLong)));
    }

    #[tokio::test]
    async fn unfinished_lines_are_held_within_a_shared_budget() {
        let budget = Arc::new(LineBudget::new(10));
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(reader, MAX_LINE_BYTES).within(budget.clone());
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

    /// What a read brought behind a line's end waits in the reader, and counts against the
    /// budget until its own line is handed out.
    #[tokio::test]
    async fn bytes_behind_a_line_count_against_the_budget() {
        let budget = Arc::new(LineBudget::new(1024));
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(reader, MAX_LINE_BYTES).within(budget.clone());
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"ab\ncdef").await.unwrap();
        assert_eq!(frames.next_line().await.unwrap().unwrap(), "ab");
        assert_eq!(budget.held.load(Ordering::Relaxed), 4, "cdef waits");
        writer.write_all(b"\n").await.unwrap();
        assert_eq!(frames.next_line().await.unwrap().unwrap(), "cdef");
        assert_eq!(budget.held.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_left_unfinished_stalls() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut frames =
            FrameReader::new(reader, MAX_LINE_BYTES).stalling_after(Duration::from_secs(10));
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"{\"id\":").await.unwrap();
        assert!(matches!(frames.next_line().await, Err(FrameError::Stalled)));
    }

    #[tokio::test]
    async fn accepts_a_line_at_the_limit() {
        let mut input = vec![b'x'; MAX_LINE_BYTES];
        input.push(b'\n');
        let mut reader = FrameReader::new(&input[..], MAX_LINE_BYTES);
        assert_eq!(
            reader.next_line().await.unwrap().unwrap().len(),
            MAX_LINE_BYTES
        );
    }
}
