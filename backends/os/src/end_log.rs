//! One log line for a finished connection, at a level that matches how unusual its end was.

use concurrence_core::{Address, EndReason};

/// Logs `connection ended` with the peer and the reason: session errors and stalls at `info`,
/// socket errors at `warn`, orderly ends at `trace`, the rest (resets, timeouts) at `debug`.
pub fn log_end(peer: &Address, reason: Option<&EndReason>) {
    match reason {
        None => {}
        Some(reason @ (EndReason::Session(_) | EndReason::Stalled)) => {
            tracing::info!(%peer, %reason, "connection ended");
        }
        Some(reason @ EndReason::Io(_)) => tracing::warn!(%peer, %reason, "connection ended"),
        Some(reason) if reason.is_graceful() => {
            tracing::trace!(%peer, %reason, "connection ended");
        }
        Some(reason) => tracing::debug!(%peer, %reason, "connection ended"),
    }
}
