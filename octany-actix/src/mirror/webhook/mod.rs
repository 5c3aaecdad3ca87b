//! Octany's webhooks (API.md section 8): signatures, the receiver and replay.

pub(crate) mod receiver;
pub(crate) mod signature;

pub use receiver::{Received, WebhookError, WebhookReceiver};
pub(crate) use signature::SIGNATURE_HEADER;
