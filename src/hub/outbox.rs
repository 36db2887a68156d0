//! The sending side of one hub connection.
//!
//! Everything the hub writes to a peer (responses and events) goes through its outbox: a queue
//! drained by that connection's writer. Sending never waits, so a peer that stops reading cannot
//! stall the hub or anyone else. The queue is bounded by bytes and by count rather than by a
//! small count alone, so that a burst a healthy peer will read (the failures of 300 asks at once,
//! say) fits, while a peer that has stopped reading is found out: when its queue overflows the
//! outbox closes the connection, the hub drops the peer, and the asks pending on it fail for
//! their callers with `peer_gone`.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{framing::encode_line, protocol::FromHub};

/// How many bytes may wait for a peer before the peer counts as stuck.
pub const OUTBOX_MAX_BYTES: usize = 16 * 1024 * 1024;

/// How many lines may wait for a peer before the peer counts as stuck.
pub const OUTBOX_MAX_LINES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Outbox {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<Queued>,
    /// Cancelled to close the connection at once, without draining the queue.
    closed: CancellationToken,
}

/// What sits in the queue now.
#[derive(Debug, Default)]
pub struct Queued {
    bytes: AtomicUsize,
    lines: AtomicUsize,
}

/// The connection's side of an outbox: the lines to write and the signal to stop.
pub struct OutboxReceiver {
    pub lines: mpsc::UnboundedReceiver<Vec<u8>>,
    pub queued: Arc<Queued>,
    pub closed: CancellationToken,
}

impl Queued {
    /// Called by the writer once it has written `lines` lines of `bytes` bytes in all.
    pub fn written(&self, bytes: usize, lines: usize) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.lines.fetch_sub(lines, Ordering::Relaxed);
    }
}

impl Outbox {
    pub fn new() -> (Outbox, OutboxReceiver) {
        let (lines_tx, lines_rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let queued = Arc::new(Queued::default());
        let outbox = Outbox {
            lines: lines_tx,
            queued: queued.clone(),
            closed: closed.clone(),
        };
        let receiver = OutboxReceiver {
            lines: lines_rx,
            queued,
            closed,
        };
        (outbox, receiver)
    }

    /// Queues a message. Returns false when it could not be queued: the connection is closing,
    /// or its queue overflowed and the connection has now been told to close.
    pub fn send(&self, message: &FromHub) -> bool {
        if self.closed.is_cancelled() {
            return false;
        }
        let line = encode_line(message);
        let bytes = self.queued.bytes.fetch_add(line.len(), Ordering::Relaxed) + line.len();
        let lines = self.queued.lines.fetch_add(1, Ordering::Relaxed) + 1;
        if bytes > OUTBOX_MAX_BYTES || lines > OUTBOX_MAX_LINES {
            tracing::warn!(
                queued_bytes = bytes,
                queued_lines = lines,
                "peer_dropped_not_reading"
            );
            self.close();
            return false;
        }
        self.lines.send(line).is_ok()
    }

    /// Tells the connection to close now, without draining its queue.
    pub fn close(&self) {
        self.closed.cancel();
    }
}
