//! The sending side of one hub connection.
//!
//! Everything the hub writes to a peer (responses and events) goes through its outbox: a queue
//! drained by that connection's writer. Sending never waits, so a peer that stops reading cannot
//! stall the hub or anyone else. What bounds the queue:
//! - a peer is dropped for not reading, never for receiving a burst: its writer drops it when it
//!   takes no bytes for [`STALL`] while some wait, and its disconnect fails the asks pending on
//!   it with `peer_gone`;
//! - the hub stops reading a peer's requests while [`PAUSE_READING_BYTES`] of answers wait for
//!   it, so a peer cannot make the hub queue without bound by asking and not reading;
//! - asks to a peer with [`PEER_BUSY_BYTES`] unread, or while every outbox together holds
//!   [`HUB_UNREAD_BYTES`], are refused with `peer_busy` (answers and failure notices to asks
//!   already made are always queued: there are at most so many of those).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{framing::encode_line, protocol::FromHub};

/// How long a peer may take no bytes while some wait for it before it counts as not reading.
pub(super) const STALL: Duration = Duration::from_secs(15);

/// Unread bytes for one peer above which the hub stops reading its requests until it catches up.
pub(super) const PAUSE_READING_BYTES: usize = 8 * 1024 * 1024;

/// Unread bytes for one peer above which asks to it are refused with `peer_busy`.
pub(super) const PEER_BUSY_BYTES: usize = 16 * 1024 * 1024;

/// Unread bytes in every outbox together above which new asks are refused with `peer_busy`.
pub(super) const HUB_UNREAD_BYTES: usize = 256 * 1024 * 1024;

/// The unread bytes of every outbox of one hub together.
#[derive(Debug, Default)]
pub(crate) struct Unread {
    bytes: AtomicUsize,
}

impl Unread {
    pub(crate) fn total(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<Queued>,
    /// Cancelled to close the connection at once, without draining the queue.
    closed: CancellationToken,
}

/// What sits in one queue now.
#[derive(Debug)]
pub(crate) struct Queued {
    bytes: AtomicUsize,
    /// The most bytes that ever waited at once.
    peak: AtomicUsize,
    hub: Arc<Unread>,
    /// Signalled whenever the writer took some bytes.
    drained: Notify,
}

/// The connection's side of an outbox: the lines to write and the signal to stop.
pub(crate) struct OutboxReceiver {
    pub lines: mpsc::UnboundedReceiver<Vec<u8>>,
    pub queued: Arc<Queued>,
    pub closed: CancellationToken,
}

impl Queued {
    /// Called by the writer once it has written `bytes` bytes of queued lines.
    pub(crate) fn written(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.hub.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.drained.notify_waiters();
    }

    pub(crate) fn unread(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The most bytes that ever waited at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Resolves once at most `bytes` wait (at once if that is so now).
    pub(crate) async fn at_most(&self, bytes: usize) {
        loop {
            let drained = self.drained.notified();
            if self.unread() <= bytes {
                return;
            }
            drained.await;
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        // What was never written is no longer held.
        self.hub
            .bytes
            .fetch_sub(*self.bytes.get_mut(), Ordering::Relaxed);
    }
}

impl Outbox {
    /// An outbox whose unread bytes count towards `hub`'s.
    pub(crate) fn new(hub: Arc<Unread>) -> (Outbox, OutboxReceiver) {
        let (lines_tx, lines_rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let queued = Arc::new(Queued {
            bytes: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            hub,
            drained: Notify::new(),
        });
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

    /// Queues a message. Returns false when the connection is closing.
    pub(crate) fn send(&self, message: &FromHub) -> bool {
        self.send_line(encode_line(message))
    }

    /// Queues a line made already (with its newline). Returns false when the connection is
    /// closing.
    pub(crate) fn send_line(&self, line: Vec<u8>) -> bool {
        if self.closed.is_cancelled() {
            return false;
        }
        let bytes = line.len();
        if self.lines.send(line).is_err() {
            return false;
        }
        let now = self.queued.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.queued.peak.fetch_max(now, Ordering::Relaxed);
        self.queued.hub.bytes.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// How many bytes wait for the peer to read them.
    pub(crate) fn unread(&self) -> usize {
        self.queued.unread()
    }

    /// Resolves once at most `bytes` wait for the peer.
    pub(crate) async fn drained_to(&self, bytes: usize) {
        self.queued.at_most(bytes).await
    }
}
