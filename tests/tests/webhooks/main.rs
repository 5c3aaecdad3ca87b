//! The webhook receiver on every backend: each event applied, dedupe under
//! concurrency, ordering, signatures, limits and replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, test as actix_test};
use octany_actix::Octany;
use octany_actix::entity::{order, product, subscription, webhook_delivery};
use octany_actix::model::ProductId;
use octany_actix::sync::{BillingEvent, Listeners};
use octany_actix::webhook::{Received, WebhookError};
use octany_actix_tests::app::TestUser;
use octany_actix_tests::harness::*;
use octany_actix_tests::sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use octany_actix_tests::{TestDb, db_test};
use serde_json::json;

mod groups;
mod signatures;
mod writes;

async fn count<E>(db: &TestDb) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(&db.conn).await.unwrap()
}

/// Renames a table (to make applying fail, and to mend it).
async fn rename(h: &Harness, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");

    h.db.conn
        .execute_raw(Statement::from_string(h.db.db_backend(), sql))
        .await
        .unwrap();
}

async fn deliver(h: &Harness, envelope: &serde_json::Value) -> Result<Received, WebhookError> {
    let (body, signature) = signed(envelope);
    h.receiver.receive(Some(&signature), &body).await
}

/// Listeners counting the billing events that `kind` picks.
fn counting(kind: fn(&BillingEvent) -> bool) -> (Arc<AtomicUsize>, Listeners) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let listeners = Listeners::new().on(
        octany_actix::sync::ListenerName::new("count"),
        move |event| {
            let seen = seen.clone();
            async move {
                if kind(&event.event) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }
        },
    );
    (count, listeners)
}

/// Stores `count` active subscriptions, ids from `first`, for `user:0`,
/// `user:1`, …, each by a `subscription.created` delivery (ids from
/// `first * 10`) dated `at`.
async fn store_active(h: &Harness, first: u64, count: u64, at: chrono::DateTime<chrono::Utc>) {
    for n in 0..count {
        let sub = subscription_json(first + n, &format!("user:{n}"), "active", None);
        deliver(
            h,
            &envelope(first * 10 + n, "subscription.created", at, sub),
        )
        .await
        .unwrap();
    }
}

/// Each of `bodies` (a body and its signature) received by `receiver` at
/// once; their outcomes, in order.
async fn receive_all(
    receiver: &octany_actix::engine::WebhookReceiver,
    bodies: &[(Vec<u8>, String)],
) -> Vec<Result<Received, WebhookError>> {
    let attempts = bodies
        .iter()
        .map(|(body, signature)| receiver.receive(Some(signature), body));
    futures_util::future::join_all(attempts).await
}

/// How many outcomes were applied and how many duplicates.
fn tally(outcomes: &[Result<Received, WebhookError>]) -> (usize, usize) {
    let n = |r: Received| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(x) if *x == r))
            .count()
    };
    (n(Received::Applied), n(Received::Duplicate))
}

/// Asserts that `deliveries` are stored, each recorded processed.
async fn all_processed(h: &Harness, deliveries: u64) {
    assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, deliveries);
    let unprocessed = webhook_delivery::Entity::find()
        .all(&h.db.conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.processed_at.is_none())
        .count();
    assert_eq!(unprocessed, 0, "every delivery recorded processed");
}

db_test!(
    async fn every_event_type_is_applied(db: TestDb) {
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        let sub = subscription_json(76963688, "user:42", "active", None);
        assert_eq!(
            deliver(&h, &envelope(1, "subscription.created", t, sub.clone()))
                .await
                .unwrap(),
            Received::Applied
        );
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status.as_str(), row.billable_ref.as_deref()),
            ("active", Some("user:42"))
        );
        assert_eq!(
            (row.price, row.vat, row.product_id),
            (9900, 2475, Some(ProductId(1225)))
        );
        assert_eq!(row.billing_method_type.as_deref(), Some("stripe"));
        assert_eq!(
            row.cancel_url.as_deref(),
            Some("https://app.octany.com/portal/cancel/abc")
        );
        assert_eq!(row.renews_at, Some(at("2026-06-25T09:29:51Z")));

        let mut swapped = sub.clone();
        swapped["product"]["id"] = json!(1226);
        swapped["price"] = json!(99000);
        deliver(
            &h,
            &envelope(
                2,
                "subscription.updated",
                t + chrono::Duration::seconds(1),
                swapped,
            ),
        )
        .await
        .unwrap();
        let mut renewed = sub.clone();
        renewed["renews_at"] = json!("2026-07-25T09:29:51+00:00");
        deliver(
            &h,
            &envelope(
                3,
                "subscription.renewed",
                t + chrono::Duration::seconds(2),
                renewed,
            ),
        )
        .await
        .unwrap();
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.product_id, row.renews_at),
            (Some(ProductId(1225)), Some(at("2026-07-25T09:29:51Z")))
        );
        let cancelled = subscription_json(
            76963688,
            "user:42",
            "cancelled",
            Some("2026-07-25T09:29:51+00:00"),
        );
        deliver(
            &h,
            &envelope(
                4,
                "subscription.cancelled",
                t + chrono::Duration::seconds(3),
                cancelled,
            ),
        )
        .await
        .unwrap();
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status.as_str(), row.renews_at, row.ends_at),
            ("cancelled", None, Some(at("2026-07-25T09:29:51Z")))
        );

        deliver(
            &h,
            &envelope(
                5,
                "order.confirmed",
                t,
                order_json(88120001, "user:42", "confirmed"),
            ),
        )
        .await
        .unwrap();
        deliver(
            &h,
            &envelope(
                6,
                "order.paid",
                t + chrono::Duration::seconds(1),
                order_json(88120001, "user:42", "paid"),
            ),
        )
        .await
        .unwrap();
        let o = order::Entity::find_by_id("88120001")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                o.state.as_str(),
                o.total_with_vat,
                o.billable_ref.as_deref()
            ),
            ("paid", 12375, Some("user:42"))
        );

        let p = json!({"id": 1225, "name": "Pro", "type": "subscription", "interval": "month", "price": 10900, "currency": "sek", "vat_rate": 2500});
        deliver(&h, &envelope(7, "product.updated", t, p.clone()))
            .await
            .unwrap();
        assert_eq!(
            product::Entity::find_by_id(ProductId(1225))
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap()
                .price,
            10900
        );
        deliver(
            &h,
            &envelope(8, "product.deleted", t + chrono::Duration::seconds(1), p),
        )
        .await
        .unwrap();
        assert!(
            product::Entity::find_by_id(ProductId(1225))
                .one(&h.db.conn)
                .await
                .unwrap()
                .is_none()
        );

        let group = json!({"id": 3, "name": "Pro", "products": []});
        assert_eq!(
            deliver(&h, &envelope(9, "product-group.updated", t, group.clone()))
                .await
                .unwrap(),
            Received::Applied
        );
        assert_eq!(
            deliver(&h, &envelope(10, "product-group.deleted", t, group))
                .await
                .unwrap(),
            Received::Applied
        );
        assert_eq!(
            deliver(&h, &envelope(11, "test.hook", t, json!({"hello": "world"})))
                .await
                .unwrap(),
            Received::Applied
        );
        // An unknown event: stored and acknowledged.
        assert_eq!(
            deliver(&h, &envelope(12, "customer.merged", t, json!({"from": 1})))
                .await
                .unwrap(),
            Received::Stored
        );
        let stored = webhook_delivery::Entity::find_by_id("12")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.event, "customer.merged");
        assert!(stored.processed_at.is_some());
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 12);
        h.finish().await
    }
);

db_test!(
    async fn the_same_delivery_fifty_times_at_once_is_applied_once(db: TestDb) {
        let (applied, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionStarted { .. }));
        let h = Harness::with_listeners(db, listeners).await;
        let (body, signature) = signed(&envelope(
            77,
            "subscription.created",
            at("2026-05-25T09:29:51Z"),
            subscription_json(1, "user:1", "active", None),
        ));
        let attempts = (0..50).map(|_| h.receiver.receive(Some(&signature), &body));
        let outcomes = futures_util::future::join_all(attempts).await;
        assert_eq!(tally(&outcomes), (1, 49), "{outcomes:?}");
        assert_eq!(
            applied.load(Ordering::SeqCst),
            1,
            "the start was delivered once"
        );
        assert_eq!(count::<subscription::Entity>(&h.db).await, 1);
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 1);
        h.finish().await
    }
);

db_test!(
    async fn created_updated_cancelled_in_every_order_end_cancelled(db: TestDb) {
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        let mut updated = subscription_json(0, "", "active", None);
        updated["product"]["id"] = json!(1226);
        let events = [
            (
                "subscription.created",
                subscription_json(0, "", "active", None),
                0,
            ),
            ("subscription.updated", updated, 60),
            (
                "subscription.cancelled",
                subscription_json(0, "", "cancelled", Some("2026-06-25T09:29:51+00:00")),
                120,
            ),
        ];
        let orders: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for (n, order) in orders.iter().enumerate() {
            let id = 500 + n as u64;
            for (k, &i) in order.iter().enumerate() {
                let (name, data, offset) = &events[i];
                let mut data = data.clone();
                data["id"] = json!(id);
                data["reference_id"] = json!(format!("user:{n}"));
                let delivery = id * 10 + k as u64;
                deliver(
                    &h,
                    &envelope(delivery, name, t + chrono::Duration::seconds(*offset), data),
                )
                .await
                .unwrap();
            }
            let row = subscription::Entity::find_by_id(id.to_string())
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.status, "cancelled", "order {order:?}");
            assert_eq!(
                row.product_id,
                Some(ProductId(1225)),
                "the cancelled payload's product, order {order:?}"
            );
            assert_eq!(
                row.sync_mark,
                (t + chrono::Duration::seconds(120)).timestamp_micros()
            );
        }
        h.finish().await
    }
);
