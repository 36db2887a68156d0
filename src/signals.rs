//! Termination signals, shared by the hub, the channel and the command line.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT (what Claude Code sends its MCP servers on exit), caught from the moment
/// this is made: until then they have their default effect, and one that arrives between two
/// waits is kept for the next.
pub(crate) struct Termination {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Termination {
    /// Installs the handlers. Must run inside a tokio runtime.
    pub(crate) fn catch() -> Termination {
        Termination {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Installs the handlers, or says why one could not be. Must run inside a tokio runtime.
    pub(crate) fn try_catch() -> io::Result<Termination> {
        Ok(Termination {
            term: Some(signal(SignalKind::terminate())?),
            int: Some(signal(SignalKind::interrupt())?),
        })
    }

    /// Resolves on the next SIGTERM or SIGINT; never, for a signal whose handler could not be
    /// installed (stdin EOF still ends a channel then).
    pub(crate) async fn recv(&mut self) {
        let Termination { term, int } = self;
        tokio::select! {
            () = next(term) => {}
            () = next(int) => {}
        }
    }
}

async fn next(signal: &mut Option<Signal>) {
    if let Some(signal) = signal
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

/// Resolves on the first SIGTERM or SIGINT from now on.
pub(crate) async fn termination() {
    Termination::catch().recv().await
}
