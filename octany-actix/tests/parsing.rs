//! Every documented shape of Octany's JSON parses (API.md sections 2, 5, 8),
//! from hand-written fixtures rather than from our own serializer.

use chrono::{DateTime, Utc};
use octany_actix::client::Page;
use octany_actix::model::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

fn data<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str::<Data<T>>(json)
        .expect("fixture parses")
        .data
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[test]
fn current_subscription_with_phone_false_and_unknown_fields() {
    let s: Subscription = data(include_str!("fixtures/subscription.json"));
    assert_eq!(s.id, SubscriptionId::new("76963688"));
    assert_eq!(s.customer_id.as_deref(), Some("5521093"));
    assert_eq!((s.price, s.vat, s.currency.as_str()), (9900, 2475, "sek"));
    assert_eq!(s.renews_at, Some(at("2026-06-25T09:29:51Z")));
    assert_eq!(s.ends_at, None);
    assert_eq!(s.reference_id.as_deref(), Some("user:42"));
    assert_eq!(s.status, SubscriptionStatus::Active);
    let product = s.product.as_ref().unwrap();
    assert_eq!(
        (product.id, product.billing_interval()),
        (ProductId(1225), Some("month"))
    );
    let method = s.billing_method.as_ref().unwrap();
    assert_eq!(method.kind, BillingMethodKind::Stripe);
    let person = method.person.as_ref().unwrap();
    assert_eq!(person.phone, None, "phone: false means no phone");
    assert_eq!(person.first_name.as_deref(), Some("Ada"));
    assert!(method.address.is_none() && method.company.is_none());
    assert_eq!(
        s.cancel_url.as_deref(),
        Some("https://app.octany.com/portal/cancel/abc")
    );
}

#[test]
fn older_envelope_string_ids_unknown_status_and_laravel_dates() {
    let s: Subscription = data(include_str!("fixtures/subscription_older.json"));
    assert_eq!(s.id.as_str(), "76963689");
    assert_eq!(s.price, 4900, "a numeric string is a number");
    assert_eq!(s.status, SubscriptionStatus::Unknown("paused".into()));
    assert_eq!(s.status.as_str(), "paused");
    assert_eq!(s.ends_at, Some(at("2026-07-01T00:00:00Z")));
    let product = s.product.unwrap();
    assert_eq!(product.id, ProductId(1226));
    assert_eq!(
        product.billing_interval(),
        Some("month"),
        "older copies put the interval in `type`"
    );
    let method = s.billing_method.unwrap();
    assert_eq!(method.kind, BillingMethodKind::Unknown("klarna".into()));
    assert_eq!(method.person.unwrap().phone.as_deref(), Some("46701234567"));
    assert_eq!(method.address.unwrap().city.as_deref(), Some("Stockholm"));
    assert_eq!(
        method.company.unwrap().vat_number.as_deref(),
        Some("SE556000000001")
    );
}

#[test]
fn current_pagination_spelling() {
    let page: Page<Subscription> =
        serde_json::from_str(include_str!("fixtures/subscriptions_page_current.json")).unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.pagination.per_page, Some(20));
    assert_eq!(page.pagination.current_page, Some(1));
    assert_eq!(page.pagination.total_pages, Some(3));
    assert!(matches!(page.pagination.next, Some(Some(ref url)) if url.ends_with("page=2")));
    assert!(page.has_next());
    assert_eq!(
        page.data[1].ends_at,
        Some(at("2026-06-30T22:00:00Z")),
        "offsets convert to UTC"
    );
}

#[test]
fn older_pagination_spelling_with_empty_links() {
    let page: Page<Subscription> =
        serde_json::from_str(include_str!("fixtures/subscriptions_page_older.json")).unwrap();
    assert_eq!(page.pagination.per_page, Some(20));
    assert_eq!(page.pagination.current_page, Some(2));
    assert_eq!(page.pagination.total_pages, Some(3));
    assert_eq!(page.pagination.next, None, "`links: []` says nothing");
    assert!(
        page.has_next(),
        "page 2 of 3 has a next page even without links"
    );
    assert_eq!(page.data[0].status, SubscriptionStatus::Trialing);
}

#[test]
fn last_page_stops_by_either_rule() {
    let last: Page<Subscription> = serde_json::from_str(
        r#"{"data":[{"id":1}],"pagination":{"current_page":3,"total_pages":3,"links":{"next":"x"}}}"#,
    )
    .unwrap();
    assert!(!last.has_next(), "current_page >= total_pages");
    let no_next: Page<Subscription> = serde_json::from_str(
        r#"{"data":[{"id":1}],"pagination":{"current_page":1,"total_pages":3,"links":{"next":null}}}"#,
    )
    .unwrap();
    assert!(!no_next.has_next(), "links.next absent");
}

#[test]
fn a_links_next_is_followed_without_page_counts() {
    let linked: Page<Subscription> = serde_json::from_str(
        r#"{"data":[{"id":1}],"pagination":{"count":1,"links":{"next":"https://api.octany.com/api/a/subscriptions?page=2"}}}"#,
    )
    .unwrap();
    assert!(linked.has_next(), "API.md: follow links.next");
    let silent: Page<Subscription> =
        serde_json::from_str(r#"{"data":[{"id":1}],"pagination":{"count":1}}"#).unwrap();
    assert!(!silent.has_next(), "no counts and no link: the only page");
}

#[test]
fn order_with_string_quantity() {
    let o: Order = data(include_str!("fixtures/order.json"));
    assert_eq!(o.id, OrderId::new("88120001"));
    assert_eq!((o.total, o.total_with_vat), (9900, 12375));
    assert_eq!(o.state, OrderState::Paid);
    assert_eq!(o.remote_id, None);
    assert_eq!(o.items.len(), 1);
    assert_eq!(o.items[0].quantity, 1);
    assert_eq!(o.items[0].product.as_ref().unwrap().id, ProductId(1225));
    let method = o.billing_method.clone().unwrap();
    assert_eq!(method.kind, BillingMethodKind::Swish);
    assert!(method.address.is_none(), "PHP's empty array is no address");
    assert!(o.charges(ProductId(1225), Some(12375), Some("Pro monthly")));
    assert!(!o.charges(ProductId(1225), Some(1), None));
    assert!(!o.charges(ProductId(9), None, None));
}

#[test]
fn order_with_unknown_state_and_numeric_quantity() {
    let o: Order = data(include_str!("fixtures/order_unknown_state.json"));
    assert_eq!(o.state, OrderState::Unknown("chargeback".into()));
    assert_eq!(o.remote_id.as_deref(), Some("ch_3PabcXYZ"));
    assert_eq!(o.items[0].quantity, 2);
}

#[test]
fn product_kinds() {
    let p: Product = data(include_str!("fixtures/product.json"));
    assert!(p.is_recurring_donation());
    assert_eq!(p.billing_interval(), Some("month"));
    let one_off: Product =
        serde_json::from_str(r#"{"id": 7, "name": "Add-on", "price": 500}"#).unwrap();
    assert_eq!(one_off.billing_interval(), None);
}

#[test]
fn every_documented_status_and_state_round_trips() {
    for status in SubscriptionStatus::KNOWN {
        let json = serde_json::to_string(status).unwrap();
        assert_eq!(
            &serde_json::from_str::<SubscriptionStatus>(&json).unwrap(),
            status
        );
    }
    assert_eq!(SubscriptionStatus::KNOWN.len(), 8);
    let names: Vec<&str> = SubscriptionStatus::KNOWN
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "active",
            "trialing",
            "pending",
            "future_start",
            "delayed",
            "unpaid",
            "cancelled",
            "expired"
        ]
    );
    for state in OrderState::KNOWN {
        let json = serde_json::to_string(state).unwrap();
        assert_eq!(&serde_json::from_str::<OrderState>(&json).unwrap(), state);
    }
}

#[test]
fn serialized_ids_and_times_look_like_octanys() {
    let s: Subscription = data(include_str!("fixtures/subscription.json"));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["id"], 76963688, "numeric ids go out as numbers");
    assert_eq!(json["renews_at"], "2026-06-25T09:29:51+00:00");
    let opaque = serde_json::to_value(SubscriptionId::new("3f2c9a1e")).unwrap();
    assert_eq!(opaque, "3f2c9a1e");
    let item =
        serde_json::to_value(&data::<Order>(include_str!("fixtures/order.json")).items[0]).unwrap();
    assert_eq!(
        item["quantity"], "1",
        "quantity goes out as a string, as Octany sends it"
    );
}
