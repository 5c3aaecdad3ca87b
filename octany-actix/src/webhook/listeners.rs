//! Host code that runs after a delivery's state is committed.
//!
//! A listener error (or panic) is logged and recorded on the delivery row;
//! it never undoes the state, and [`replay`](super::WebhookReceiver::replay_failed)
//! runs the listeners again.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::model::{
    EventName, Order, Product, ProductGroup, Subscription, WebhookEnvelope, WebhookEvent,
};

/// What a listener may fail with.
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// A delivery whose state is committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The envelope as received.
    pub envelope: WebhookEnvelope,
    /// Its event, parsed.
    pub event: WebhookEvent,
}

type Handler =
    Arc<dyn Fn(Arc<Delivered>) -> BoxFuture<'static, Result<(), ListenerError>> + Send + Sync>;

/// The listeners of a [`WebhookReceiver`](super::WebhookReceiver).
///
/// ```
/// use octany_actix::webhook::Listeners;
/// let listeners = Listeners::new()
///     .on_subscription_cancelled(|subscription| async move {
///         println!("{} cancelled, ends {:?}", subscription.id, subscription.ends_at);
///         Ok(())
///     })
///     .on_any(|delivered| async move {
///         println!("received {}", delivered.envelope.name);
///         Ok(())
///     });
/// # let _ = listeners;
/// ```
#[derive(Clone, Default)]
pub struct Listeners {
    entries: Vec<(Option<EventName>, Handler)>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("count", &self.entries.len())
            .finish()
    }
}

macro_rules! typed_listener {
    ($(#[$doc:meta])* $method:ident, $variant:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $method<F, Fut>(self, listener: F) -> Self
        where
            F: Fn($ty) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<(), ListenerError>> + Send + 'static,
        {
            let listener = Arc::new(listener);
            self.push(Some(EventName::$variant), move |delivered: Arc<Delivered>| {
                let listener = listener.clone();
                async move {
                    match &delivered.event {
                        WebhookEvent::$variant(value) => listener(value.clone()).await,
                        _ => Ok(()),
                    }
                }
            })
        }
    };
}

impl Listeners {
    /// No listeners.
    pub fn new() -> Self {
        Self::default()
    }

    fn push<F, Fut>(mut self, name: Option<EventName>, handler: F) -> Self
    where
        F: Fn(Arc<Delivered>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ListenerError>> + Send + 'static,
    {
        self.entries
            .push((name, Arc::new(move |d| handler(d).boxed())));
        self
    }

    /// Runs for every delivery, known event or not, with the raw envelope.
    pub fn on_any<F, Fut>(self, listener: F) -> Self
    where
        F: Fn(Arc<Delivered>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ListenerError>> + Send + 'static,
    {
        self.push(None, listener)
    }

    typed_listener!(
        /// `subscription.created`.
        on_subscription_created, SubscriptionCreated, Subscription
    );
    typed_listener!(
        /// `subscription.updated`.
        on_subscription_updated, SubscriptionUpdated, Subscription
    );
    typed_listener!(
        /// `subscription.renewed`.
        on_subscription_renewed, SubscriptionRenewed, Subscription
    );
    typed_listener!(
        /// `subscription.cancelled`.
        on_subscription_cancelled, SubscriptionCancelled, Subscription
    );
    typed_listener!(
        /// `order.confirmed`.
        on_order_confirmed, OrderConfirmed, Order
    );
    typed_listener!(
        /// `order.paid`.
        on_order_paid, OrderPaid, Order
    );
    typed_listener!(
        /// `product.updated`.
        on_product_updated, ProductUpdated, Product
    );
    typed_listener!(
        /// `product.deleted`.
        on_product_deleted, ProductDeleted, Product
    );
    typed_listener!(
        /// `product-group.updated`.
        on_product_group_updated, ProductGroupUpdated, ProductGroup
    );
    typed_listener!(
        /// `product-group.deleted`.
        on_product_group_deleted, ProductGroupDeleted, ProductGroup
    );
    typed_listener!(
        /// `test.hook`, with whatever it carried.
        on_test_hook, TestHook, serde_json::Value
    );

    /// Runs every listener for `delivered`, one after another; returns the
    /// failures (errors and panics) as text.
    pub(crate) async fn run(&self, delivered: Arc<Delivered>) -> Vec<String> {
        let name = delivered.envelope.event_name();
        let mut failures = Vec::new();
        for (filter, handler) in &self.entries {
            if filter.as_ref().is_some_and(|f| *f != name) {
                continue;
            }
            match AssertUnwindSafe(handler(delivered.clone()))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failures.push(error.to_string()),
                Err(_) => failures.push("the listener panicked".to_owned()),
            }
        }
        failures
    }
}
