//! One client connection: owns the socket and the framing.
//!
//! The connection reads request lines and answers them through the peer's outbox, and, in the
//! same task, writes whatever the outbox holds (responses and events). Reading and writing run
//! side by side, so a peer that does not read never stops the hub from reading it; the outbox's
//! rules (`hub::outbox`) decide when such a peer is dropped, and when its requests wait.
//!
//! What one connection may hold is bounded too: it must say hello within [`HELLO_TIMEOUT`] (or
//! be done by then: `status`, `peers`, a hook's take), and make room when too many newer
//! connections have not said hello either ([`Unregistered`]), a line may stay unfinished for
//! [`LINE_STALL`] at most, and every connection's unfinished lines together stay within the hub's
//! line budget.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use interprocess::local_socket::tokio::Stream;
use tokio::{
    io::AsyncWriteExt,
    net::{
        UnixStream,
        unix::{ReadHalf, WriteHalf},
    },
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    ask::ConnId,
    client::lock,
    errors::RelayError,
    framing::{FrameError, FrameReader},
    hub::{
        handle::Hub,
        handlers::{BadLine, Client, Handled, handle_line},
        outbox::{Outbox, OutboxReceiver, PAUSE_READING_BYTES, STALL},
        texts,
    },
    protocol::{FromHub, MAX_LINE_BYTES},
};

/// How long a closing connection may take to hand its last queued lines to the peer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection may go without saying hello.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one line may stay unfinished.
pub(super) const LINE_STALL: Duration = Duration::from_secs(10);

/// The connections that have not said hello yet, oldest first. Past a limit the oldest is closed
/// to make room: connections that never say hello can then neither take every file descriptor
/// nor keep a session that does say hello from getting in.
#[derive(Debug, Default)]
pub(super) struct Unregistered(Mutex<VecDeque<(ConnId, CancellationToken)>>);

impl Unregistered {
    /// Counts connection `conn` in. When `limit` connections are without hello already, the
    /// oldest of them is told to close ([`NotYetRegistered::crowded_out`]).
    pub(super) fn admit(self: &Arc<Self>, conn: ConnId, limit: usize) -> NotYetRegistered {
        let crowded_out = CancellationToken::new();
        let mut waiting = lock(&self.0);
        while waiting.len() >= limit.max(1) {
            let Some((_, oldest)) = waiting.pop_front() else {
                break;
            };
            oldest.cancel();
        }
        waiting.push_back((conn, crowded_out.clone()));
        NotYetRegistered {
            unregistered: Some(self.clone()),
            conn,
            crowded_out,
        }
    }
}

/// One connection's place in [`Unregistered`], given up when it says hello or closes.
pub(super) struct NotYetRegistered {
    unregistered: Option<Arc<Unregistered>>,
    conn: ConnId,
    /// Cancelled when newer connections took this one's place.
    crowded_out: CancellationToken,
}

impl NotYetRegistered {
    fn registered(&mut self) {
        if let Some(unregistered) = self.unregistered.take() {
            let mut waiting = lock(&unregistered.0);
            if let Some(at) = waiting.iter().position(|(conn, _)| *conn == self.conn) {
                waiting.remove(at);
            }
        }
    }
}

impl Drop for NotYetRegistered {
    fn drop(&mut self) {
        self.registered();
    }
}

/// Serves one connection until the peer leaves, the hub shuts down, or the peer is dropped.
pub(super) async fn serve(
    stream: Stream,
    conn: ConnId,
    pid: u32,
    hub: Hub,
    unregistered: NotYetRegistered,
) {
    let Stream::UdSocket(stream) = stream;
    let mut stream = UnixStream::from(stream);
    // tokio's own halves, not interprocess's `&Stream`: tokio notes a read that came back short
    // and waits for the poller next, where `&Stream` tries another read that fails with EAGAIN,
    // a wasted system call per line.
    let (read_half, write_half) = stream.split();
    let (outbox, receiver) = Outbox::new(hub.unread());
    let queued = receiver.queued.clone();
    let client = Client::new(conn, pid, outbox);
    let (read_done, reading_ended) = oneshot::channel::<()>();
    let reader_closed = receiver.closed.clone();
    let reading = async {
        read_requests(read_half, &hub, client, reader_closed, unregistered).await;
        drop(read_done);
    };
    // The writer normally stops once the reader is done and the outbox is drained; a peer that
    // stopped reading gets DRAIN_TIMEOUT to take its last lines.
    let writing = async {
        tokio::select! {
            _ = write_lines(write_half, receiver) => {}
            _ = async {
                let _ = reading_ended.await;
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } => {}
        }
    };
    tokio::join!(reading, writing);
    if queued.peak() > GIVE_BACK_AFTER {
        give_memory_back(&hub);
    }
}

/// What a connection must have held at once for its end to be worth giving memory back.
const GIVE_BACK_AFTER: usize = 1024 * 1024;

/// The most often memory is handed back: trimming walks the heap.
const GIVE_BACK_EVERY: Duration = Duration::from_secs(1);

/// When the hub last handed memory back, and whether a hand-back waits for the end of that
/// second: connections that held much often close together (slow readers dropped at the same
/// moment), and the last of them must be given back too, not only the first.
#[derive(Debug, Default)]
pub(super) struct GiveBack {
    last: Option<Instant>,
    pending: bool,
}

/// When to hand memory back for a connection that just closed.
#[derive(Debug, PartialEq)]
enum Trim {
    Now,
    /// Once a second has passed since the last time.
    At(Instant),
    /// A hand-back already waits, and will come after this connection's end.
    Covered,
}

impl GiveBack {
    /// What to do for a connection that held much and closed at `now`.
    fn wanted(&mut self, now: Instant) -> Trim {
        match self.last {
            Some(last) if now < last + GIVE_BACK_EVERY => {
                if self.pending {
                    Trim::Covered
                } else {
                    self.pending = true;
                    Trim::At(last + GIVE_BACK_EVERY)
                }
            }
            _ => {
                self.last = Some(now);
                Trim::Now
            }
        }
    }

    /// The hand-back that [`GiveBack::wanted`] put off runs at `now`.
    fn done_later(&mut self, now: Instant) {
        self.pending = false;
        self.last = Some(now);
    }
}

/// Hands freed memory back to the system, now or at the end of the second since the last time.
/// A slow reader can make the hub hold megabytes for a while; once it is gone, the allocator keeps
/// the freed pages unless asked, and the hub's resident size would stay at its peak.
fn give_memory_back(hub: &Hub) {
    let wanted = lock(hub.give_back()).wanted(Instant::now());
    match wanted {
        Trim::Now => trim(),
        Trim::At(at) => {
            let hub = hub.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                lock(hub.give_back()).done_later(Instant::now());
                trim();
            });
        }
        Trim::Covered => {}
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory at the top of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn read_requests(
    stream: ReadHalf<'_>,
    hub: &Hub,
    mut client: Client,
    closed: CancellationToken,
    mut unregistered: NotYetRegistered,
) {
    let mut frames = FrameReader::new(stream, MAX_LINE_BYTES)
        .stalling_after(LINE_STALL)
        .within(hub.line_budget());
    // One stop future for the life of the connection, rather than new waiters on every line.
    let shutdown = hub.shutdown_token().clone();
    let stop = async {
        tokio::select! {
            () = closed.cancelled() => {}
            () = shutdown.cancelled() => {}
        }
    };
    tokio::pin!(stop);
    let hello_by = tokio::time::sleep_until(Instant::now() + HELLO_TIMEOUT);
    tokio::pin!(hello_by);
    let crowded_out = unregistered.crowded_out.clone().cancelled_owned();
    tokio::pin!(crowded_out);
    loop {
        // A peer that asks and does not read its answers waits until it has read them.
        if client.outbox.unread() > PAUSE_READING_BYTES {
            tokio::select! {
                _ = &mut stop => break,
                () = client.outbox.drained_to(PAUSE_READING_BYTES) => {}
            }
        }
        let frame = tokio::select! {
            _ = &mut stop => break,
            () = &mut hello_by, if !client.introduced() => {
                tracing::info!(conn = client.conn.0, peer_pid = client.pid, "connection_closed_no_hello");
                break;
            }
            () = &mut crowded_out, if !client.introduced() => {
                tracing::warn!(conn = client.conn.0, peer_pid = client.pid, "connection_closed_crowded_out");
                client.outbox.send(&unaddressed(texts::too_many_unregistered()));
                break;
            }
            frame = frames.next_line() => frame,
        };
        match frame {
            Ok(Some(line)) => {
                let handled = handle_line(hub, &mut client, &line);
                if client.introduced() {
                    unregistered.registered();
                }
                match handled {
                    Handled::Now(response) => {
                        client.outbox.send_line(response);
                    }
                    Handled::Later(sending) => {
                        tokio::spawn(sending);
                    }
                }
            }
            Ok(None) => break,
            Err(FrameError::TooLong) => {
                client.bad_line(BadLine::TooLong, MAX_LINE_BYTES);
                client.outbox.send(&unaddressed(texts::line_too_long()));
                break;
            }
            Err(FrameError::NotUtf8) => {
                client.bad_line(BadLine::NotUtf8, 0);
                client.outbox.send(&unaddressed(texts::line_not_utf8()));
            }
            Err(FrameError::Stalled) => {
                client.bad_line(BadLine::Stalled, 0);
                client
                    .outbox
                    .send(&unaddressed(texts::line_stalled(LINE_STALL)));
                break;
            }
            Err(FrameError::OverBudget) => {
                client.bad_line(BadLine::OverBudget, 0);
                client.outbox.send(&unaddressed(texts::lines_over_budget()));
                break;
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!(error = %e, "connection_read_failed");
                break;
            }
        }
    }
    client.closed();
    hub.disconnect(client.conn);
    // Dropping the client drops the last outbox handle, so the writer drains and stops.
}

/// The most bytes gathered into one write: lines that queued up while a write was in flight go
/// out together, so a burst (a broadcast's fan-out, many failures at once) costs few syscalls.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// An error that answers no request: the line it is about could not be read as one.
fn unaddressed(error: RelayError) -> FromHub {
    FromHub::Err {
        id: None,
        code: error.code,
        message: error.message,
    }
}

async fn write_lines(mut writer: WriteHalf<'_>, outbox: OutboxReceiver) {
    let OutboxReceiver {
        mut lines,
        queued,
        closed,
    } = outbox;
    let kicked = closed.cancelled();
    tokio::pin!(kicked);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut kicked => return,
            line = lines.recv() => line,
        };
        let Some(first) = next else { return };
        let batch = gather(first, &mut lines);
        let mut written = 0;
        while written < batch.len() {
            // A peer that takes no bytes for STALL while some wait has stopped reading.
            let wrote = tokio::select! {
                _ = &mut kicked => return,
                wrote = tokio::time::timeout(STALL, writer.write(&batch[written..])) => wrote,
            };
            match wrote {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    written += n;
                    queued.written(n);
                }
                Err(_) => {
                    tracing::warn!(queued_bytes = queued.unread(), "peer_dropped_not_reading");
                    closed.cancel();
                    return;
                }
            }
        }
    }
}

/// What to write at once: `first`, and the lines queued behind it up to [`MAX_BATCH_BYTES`]. The
/// batch is `first`'s own buffer, not a copy: a peer that does not read holds the hub to one
/// copy of the line its writer waits on (the queue counts it once).
fn gather(first: Vec<u8>, lines: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<u8> {
    let mut batch = first;
    while batch.len() < MAX_BATCH_BYTES
        && let Ok(more) = lines.try_recv()
    {
        batch.extend_from_slice(&more);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line waiting for a peer that does not read is held once, in the batch being written,
    /// not also copied into it; lines queued behind a small one go out with it.
    #[test]
    fn a_batch_is_its_first_line_and_what_fits_behind_it() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let big = vec![b'x'; MAX_BATCH_BYTES * 2];
        let at = big.as_ptr();
        tx.send(b"behind\n".to_vec()).unwrap();
        let batch = gather(big, &mut rx);
        assert_eq!(batch.as_ptr(), at, "written from its own buffer");
        assert_eq!(batch.len(), MAX_BATCH_BYTES * 2, "full: nothing gathered");

        let batch = gather(b"first\n".to_vec(), &mut rx);
        assert_eq!(batch, b"first\nbehind\n");
        assert!(rx.try_recv().is_err());
    }

    /// Connections that close within a second of a hand-back get one more at the end of that
    /// second, so that memory freed by the last of them is given back too.
    #[test]
    fn a_hand_back_put_off_by_the_limit_comes_at_the_end_of_the_second() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut give_back = GiveBack::default();
        assert_eq!(give_back.wanted(t0), Trim::Now);
        assert_eq!(
            give_back.wanted(t0 + ms(10)),
            Trim::At(t0 + GIVE_BACK_EVERY)
        );
        assert_eq!(give_back.wanted(t0 + ms(900)), Trim::Covered);
        give_back.done_later(t0 + ms(1000));
        assert_eq!(give_back.wanted(t0 + ms(1500)), Trim::At(t0 + ms(2000)));
        give_back.done_later(t0 + ms(2000));
        assert_eq!(give_back.wanted(t0 + ms(3000)), Trim::Now);
    }
}
