//! After the checkout: trials, future starts, one-off orders, renewals, failing cards, cancels, swaps and charges.

use super::*;

#[tokio::test]
async fn a_trial_is_charged_when_it_ends() {
    let (fake, hooks) = fake_with_hooks().await;
    let sub = fake
        .checkout(1225, &buyer("user:1"), CheckoutOutcome::Trial)
        .unwrap()
        .subscription
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    assert_eq!(
        sub.renews_at.unwrap().to_rfc3339(),
        "2026-01-15T00:00:00+00:00",
        "14 trial days"
    );
    assert!(sub.on_trial(&fake.clock()));
    assert!(fake.orders().is_empty(), "nothing charged during the trial");
    fake.advance_days(14);
    let after = fake.subscription(&sub.id).unwrap();
    assert_eq!(after.status, SubscriptionStatus::Active);
    assert_eq!(
        after.renews_at.unwrap().to_rfc3339(),
        "2026-02-15T00:00:00+00:00"
    );
    assert_eq!(fake.orders().len(), 1);
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["subscription.created", "subscription.updated", "order.paid"]
    );
    // A product without trial days refuses the trial.
    let refused = fake
        .checkout(1227, &buyer("user:2"), CheckoutOutcome::Trial)
        .unwrap_err();
    assert!(matches!(
        refused,
        Refusal::Invalid {
            field: "outcome",
            ..
        }
    ));
}

#[tokio::test]
async fn a_future_start_begins_on_its_date() {
    let (fake, hooks) = fake_with_hooks().await;
    let mut params = buyer("user:1");
    params.start_date = Some("2026-01-20T00:00:00Z".parse().unwrap());
    let sub = fake
        .checkout(1227, &params, CheckoutOutcome::FutureStart)
        .unwrap()
        .subscription
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::FutureStart);
    assert!(!sub.is_paying(&fake.clock()));
    fake.advance_days(18);
    assert_eq!(
        fake.subscription(&sub.id).unwrap().status,
        SubscriptionStatus::FutureStart
    );
    fake.advance_days(1);
    let started = fake.subscription(&sub.id).unwrap();
    assert_eq!(started.status, SubscriptionStatus::Active);
    assert_eq!(
        started.renews_at.unwrap().to_rfc3339(),
        "2026-02-20T00:00:00+00:00"
    );
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["subscription.created", "subscription.updated", "order.paid"]
    );
}

#[tokio::test]
async fn a_one_off_product_makes_an_order_only() {
    let (fake, hooks) = fake_with_hooks().await;
    let response = http()
        .post(checkout_path(
            &fake,
            1400,
            "https://app.example/thanks?sub={subscriptionId}",
        ))
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://app.example/thanks?sub="
    );
    assert!(fake.subscriptions().is_empty());
    let orders = fake.orders();
    assert_eq!(
        (
            orders.len(),
            orders[0].state.clone(),
            orders[0].reference_id.as_deref()
        ),
        (1, OrderState::Paid, Some("user:42"))
    );
    fake.settled().await;
    assert_eq!(event_names(&hooks).await, ["order.confirmed", "order.paid"]);
}

#[tokio::test]
async fn renewals_at_renews_at() {
    let (fake, hooks) = fake_with_hooks().await;
    let id = SubscriptionId::new(subscribe(&fake, "user:1"));
    fake.settled().await;
    let before = received(&hooks).await.len();
    fake.advance_months(3);
    let sub = fake.subscription(&id).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(
        sub.renews_at.unwrap().to_rfc3339(),
        "2026-05-01T00:00:00+00:00"
    );
    let orders = fake.orders();
    assert_eq!(orders.len(), 4, "the first payment and three renewals");
    assert!(
        orders
            .iter()
            .all(|o| o.state == OrderState::Paid && o.remote_id.is_some())
    );
    fake.settled().await;
    let renewals: Vec<String> = event_names(&hooks).await.into_iter().skip(before).collect();
    assert_eq!(renewals, ["subscription.renewed", "order.paid"].repeat(3));
    let events = received(&hooks).await;
    assert_eq!(
        events.last().unwrap().envelope["created_at"],
        "2026-04-01T00:00:00+00:00",
        "each at its due time"
    );
}

#[tokio::test]
async fn a_failing_card_goes_delayed_then_unpaid() {
    let (fake, hooks) = fake_with_hooks().await;
    let id = SubscriptionId::new(subscribe(&fake, "user:1"));
    fake.set_card_failing(&id, true).unwrap();
    fake.settled().await;
    let before = received(&hooks).await.len();
    fake.advance_months(1);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Delayed
    );
    fake.advance_days(1); // retry 1 fails
    fake.advance_days(3); // retry 2 fails
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Delayed
    );
    fake.advance_days(5); // retry 3 fails: given up
    let sub = fake.subscription(&id).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Unpaid);
    let record = fake.subscription_records().pop().unwrap();
    assert_eq!(
        record.lapsed_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-02-01T00:00:00+00:00"),
        "access lapsed at the failed renewal"
    );
    assert_eq!(
        (sub.renews_at, sub.ends_at.map(|t| t.to_rfc3339())),
        (None, Some("2026-02-10T00:00:00+00:00".into()))
    );
    assert!(sub.has_ended(&fake.clock()));
    let failed = fake
        .orders()
        .iter()
        .filter(|o| o.state == OrderState::Failed)
        .count();
    assert_eq!(failed, 4, "the renewal and three retries");
    fake.settled().await;
    let changes: Vec<String> = event_names(&hooks).await.into_iter().skip(before).collect();
    assert_eq!(
        changes,
        ["subscription.updated", "subscription.updated"],
        "to delayed, to unpaid"
    );
    let last = received(&hooks).await.pop().unwrap();
    assert_eq!(last.envelope["data"]["status"], "unpaid");
}

#[tokio::test]
async fn a_delayed_renewal_recovers_when_the_card_is_fixed() {
    let (fake, hooks) = fake_with_hooks().await;
    let id = SubscriptionId::new(subscribe(&fake, "user:1"));
    fake.set_card_failing(&id, true).unwrap();
    fake.advance_months(1);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Delayed
    );
    fake.set_card_failing(&id, false).unwrap();
    fake.advance_days(1);
    let sub = fake.subscription(&id).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(
        sub.renews_at.unwrap().to_rfc3339(),
        "2026-03-01T00:00:00+00:00",
        "the period is not shifted"
    );
    fake.settled().await;
    let names = event_names(&hooks).await;
    assert_eq!(
        &names[names.len() - 3..],
        ["subscription.updated", "subscription.renewed", "order.paid"]
    );
}

#[tokio::test]
async fn cancelled_runs_to_its_end_then_expires() {
    let (fake, hooks) = fake_with_hooks().await;
    let id = subscribe(&fake, "user:1");
    fake.advance_days(10);
    let (status, _) = api(&fake, "POST", &format!("subscription/{id}/cancel"), None).await;
    assert_eq!(status, 200);
    let id = SubscriptionId::new(id);
    let sub = fake.subscription(&id).unwrap();
    assert!(sub.on_grace_period(&fake.clock()));
    fake.advance_days(20);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Cancelled,
        "until 2026-02-01"
    );
    fake.advance_days(2);
    let sub = fake.subscription(&id).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Expired);
    assert_eq!(fake.orders().len(), 1, "no renewal after cancelling");
    fake.settled().await;
    let names = event_names(&hooks).await;
    assert_eq!(
        &names[3..],
        ["subscription.cancelled", "subscription.updated"]
    );
    let expired = received(&hooks).await.pop().unwrap();
    assert_eq!(expired.envelope["created_at"], "2026-02-01T00:00:00+00:00");
    assert_eq!(expired.envelope["data"]["status"], "expired");
}

#[tokio::test]
async fn swap_and_one_off_charges_emit_their_events() {
    let (fake, hooks) = fake_with_hooks().await;
    let id = subscribe(&fake, "user:1");
    api(
        &fake,
        "POST",
        &format!("subscription/{id}/product"),
        Some(json!({"product_id": 1226})),
    )
    .await;
    api(
        &fake,
        "POST",
        &format!("subscription/{id}/order"),
        Some(json!({"product_id": 1400})),
    )
    .await;
    fake.settled().await;
    let events = received(&hooks).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(&names[3..], ["subscription.updated", "order.paid"]);
    assert_eq!(events[3].envelope["data"]["product"]["id"], 1226);
    assert_eq!(events[3].envelope["data"]["price"], 99000);
    // A yearly product now renews a year after the last renewal date.
    fake.advance_months(1);
    assert_eq!(
        fake.orders().len(),
        3,
        "the month already paid renews at the new price"
    );
}

#[tokio::test]
async fn the_clock_can_be_set_and_moved_from_outside() {
    let fake = fake().await;
    let id = SubscriptionId::new(subscribe(&fake, "user:1"));
    // Moving the shared clock directly: the fake catches up on its next use.
    fake.clock()
        .advance(std::time::Duration::from_secs(40 * 86_400));
    assert_eq!(
        fake.subscription(&id)
            .unwrap()
            .renews_at
            .unwrap()
            .to_rfc3339(),
        "2026-03-01T00:00:00+00:00"
    );
    fake.set_now("2026-06-15T00:00:00Z".parse().unwrap());
    assert_eq!(fake.orders().len(), 6);
    fake.add_product(FakeProduct::recurring(3000, "Weekly", 100, "week"));
    assert_eq!(
        api(&fake, "GET", "product/3000", None).await.1["data"]["interval"],
        "week"
    );
}
