//! Termination signals, shared by the hub and the channel.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on SIGTERM or SIGINT (what Claude Code sends its MCP servers on exit). Never
/// resolves if the handlers cannot be installed; stdin EOF still ends a channel then.
pub async fn termination() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
