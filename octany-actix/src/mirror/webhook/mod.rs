//! Octany's webhooks (API.md section 8): signatures, the receiver and replay.

mod receiver;
pub(crate) mod signature;

pub use receiver::{Received, ReplayReport, WebhookError, WebhookReceiver};
pub(crate) use signature::SIGNATURE_HEADER;
