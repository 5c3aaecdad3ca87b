//! Octany's webhooks: signatures (API.md section 8).

pub mod signature;
