//! Octany's webhooks (API.md section 8): signatures, the receiver, listeners
//! and replay.

mod listeners;
mod receiver;
pub mod signature;

pub use listeners::{Delivered, ListenerError, Listeners};
pub(crate) use receiver::receive_http;
pub use receiver::{
    DEFAULT_BODY_LIMIT, Received, ReplayReport, WebhookError, WebhookReceiver, handle,
};
