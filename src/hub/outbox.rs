//! The sending side of one hub connection.
//!
//! Everything the hub writes to a peer (responses and events) goes through its outbox: a bounded
//! queue drained by that connection's writer. Sending never waits, so a peer that stops reading
//! cannot stall the hub or anyone else: when its queue is full the outbox closes the connection,
//! the hub drops the peer, and the asks pending on it fail for their callers with `peer_gone`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::{framing::encode_line, protocol::FromHub};

/// How many lines may wait for a peer before the peer counts as stuck.
pub const OUTBOX_CAPACITY: usize = 256;

#[derive(Debug, Clone)]
pub struct Outbox {
    lines: mpsc::Sender<Vec<u8>>,
    closed: Arc<watch::Sender<bool>>,
}

/// The connection's side of an outbox: the lines to write and the signal to stop.
pub struct OutboxReceiver {
    pub lines: mpsc::Receiver<Vec<u8>>,
    pub closed: watch::Receiver<bool>,
}

impl Outbox {
    pub fn new() -> (Outbox, OutboxReceiver) {
        let (lines_tx, lines_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (closed_tx, closed_rx) = watch::channel(false);
        let outbox = Outbox {
            lines: lines_tx,
            closed: Arc::new(closed_tx),
        };
        (
            outbox,
            OutboxReceiver {
                lines: lines_rx,
                closed: closed_rx,
            },
        )
    }

    /// Queues a message. Returns false when it could not be queued: the connection is closing,
    /// or its queue was full and the connection has now been told to close.
    pub fn send(&self, message: &FromHub) -> bool {
        match self.lines.try_send(encode_line(message)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(queued = OUTBOX_CAPACITY, "peer_dropped_not_reading");
                self.close();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Tells the connection to close now, without draining its queue.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}
