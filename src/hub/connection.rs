//! One client connection: owns the socket and the framing.
//!
//! The connection reads request lines and answers them through the peer's outbox, and, in the
//! same task, writes whatever the outbox holds (responses and events). Reading and writing run
//! side by side, so a peer that does not read never stops the hub from reading it, and the
//! outbox's bound decides when such a peer is dropped.

use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use tokio::{
    io::{AsyncWriteExt, BufReader},
    sync::oneshot,
};
use tokio_util::sync::CancellationToken;

use crate::{
    ask::ConnId,
    errors::RelayError,
    framing::{FrameError, FrameReader},
    hub::{
        handle::Hub,
        handlers::{Session, handle_line},
        outbox::{Outbox, OutboxReceiver},
        texts,
    },
    protocol::{FromHub, MAX_LINE_BYTES},
};

/// How long a closing connection may take to hand its last queued lines to the peer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one connection until the peer leaves, the hub shuts down, or the peer is dropped.
pub async fn serve(stream: Stream, conn: ConnId, pid: u32, hub: Hub) {
    let (outbox, receiver) = Outbox::new();
    let session = Session::new(conn, pid, outbox);
    let (read_done, reading_ended) = oneshot::channel::<()>();
    let reader_closed = receiver.closed.clone();
    let reading = async {
        read_requests(&stream, &hub, session, reader_closed).await;
        drop(read_done);
    };
    // The writer normally stops once the reader is done and the outbox is drained; a peer that
    // stopped reading gets DRAIN_TIMEOUT to take its last lines.
    let writing = async {
        tokio::select! {
            _ = write_lines(&stream, receiver) => {}
            _ = async {
                let _ = reading_ended.await;
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } => {}
        }
    };
    tokio::join!(reading, writing);
}

async fn read_requests(
    stream: &Stream,
    hub: &Hub,
    mut session: Session,
    closed: CancellationToken,
) {
    let mut frames = FrameReader::new(BufReader::new(stream), MAX_LINE_BYTES);
    // One stop future for the life of the connection, rather than new waiters on every line.
    let shutdown = hub.shutdown_token().clone();
    let stop = async {
        tokio::select! {
            () = closed.cancelled() => {}
            () = shutdown.cancelled() => {}
        }
    };
    tokio::pin!(stop);
    loop {
        let frame = tokio::select! {
            _ = &mut stop => break,
            frame = frames.next_line() => frame,
        };
        match frame {
            Ok(Some(line)) => {
                let response = handle_line(hub, &mut session, &line);
                session.outbox.send(&response);
            }
            Ok(None) => break,
            Err(FrameError::TooLong) => {
                tracing::warn!(limit = MAX_LINE_BYTES, "bad_msg_line_too_long");
                session.outbox.send(&unaddressed(texts::line_too_long()));
                break;
            }
            Err(FrameError::NotUtf8) => {
                session.outbox.send(&unaddressed(texts::line_not_utf8()));
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!(error = %e, "connection_read_failed");
                break;
            }
        }
    }
    hub.disconnect(session.conn);
    // Dropping the session drops the last outbox handle, so the writer drains and stops.
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

async fn write_lines(stream: &Stream, outbox: OutboxReceiver) {
    let OutboxReceiver {
        mut lines,
        queued,
        closed,
    } = outbox;
    let kicked = closed.cancelled();
    tokio::pin!(kicked);
    let mut writer = stream;
    let mut batch = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut kicked => return,
            line = lines.recv() => line,
        };
        let Some(first) = next else { return };
        batch.clear();
        batch.extend_from_slice(&first);
        let mut count = 1;
        while batch.len() < MAX_BATCH_BYTES
            && let Ok(more) = lines.try_recv()
        {
            batch.extend_from_slice(&more);
            count += 1;
        }
        let written = tokio::select! {
            _ = &mut kicked => return,
            written = writer.write_all(&batch) => written,
        };
        if written.is_err() {
            return;
        }
        queued.written(batch.len(), count);
    }
}
