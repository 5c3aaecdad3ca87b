//! Octany's webhooks (API.md section 8): signatures, the receiver and replay.

mod receiver;
pub mod signature;

pub(crate) use receiver::receive_http;
pub use receiver::{
    DEFAULT_BODY_LIMIT, Received, ReplayReport, WebhookError, WebhookReceiver, handle,
};
