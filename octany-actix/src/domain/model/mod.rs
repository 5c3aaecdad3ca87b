//! Octany's resources as Rust types (API.md sections 5, 6 and 8).
//!
//! Parsing is as lenient as Octany is: unknown fields are ignored, unknown
//! statuses and states are kept as [`SubscriptionStatus::Unknown`] and
//! friends, ids parse from a number or a string, `person.phone` may be
//! `false`, an item's `quantity` may be a string.

pub(crate) mod lenient;

mod billable_ref;
mod billing_method;
mod entitlement;
mod order;
mod product;
mod status;
mod subscription;
mod webhook;

pub use billable_ref::BillableRef;
pub use billing_method::{Address, BillingMethod, BillingMethodKind, Company, Person};
pub(crate) use entitlement::access_reason;
pub use entitlement::{AccessPolicy, Entitlement};
pub(crate) use lenient::format_timestamp;
pub use order::{Order, OrderId, OrderItem, OrderState};
pub(crate) use product::ProductGroup;
pub use product::{Product, ProductId};
pub use status::SubscriptionStatus;
pub use subscription::{Subscription, SubscriptionId};
pub(crate) use webhook::{EventName, WebhookEnvelope, WebhookEvent};
