//! One account against everyone's budget: a flood of one billable's
//! checkouts asks Octany once, and leaves other billables their turn.

use super::*;

db_test!(
    async fn forty_checkouts_of_one_account_at_once_ask_octany_once(db: TestDb) {
        let (fake, _octany, app) = started!(db, Duration::from_secs(5));
        // Octany answers slowly, so the checkouts overlap the first one's
        // question to it.
        fake.set_faults(Faults {
            api_latency_ms: 300,
            ..Faults::none()
        });
        let before = fake.api_requests().total();
        let answers = join_all(
            (0..40).map(|_| call(&app, "GET", "/billing/checkout/pro-monthly", Some(3), true)),
        )
        .await;
        assert!(
            answers.iter().all(|a| a.status == 303),
            "every one is sent to the checkout: {:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        let asked = fake.api_requests().total() - before;
        assert!(
            (1..=3).contains(&asked),
            "{asked} requests to Octany for 40 identical checkouts (at most 3: later ones may start after the first has answered)"
        );
        fake.stop().await;
        db
    }
);
