//! Derive macros for `octany-actix`.
