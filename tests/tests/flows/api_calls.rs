//! The API-call log: each exchange with Octany, for the billable it was
//! made for, written off the request path, pruned by age, never the key.

use octany_actix::rows::ApiCall;
use octany_actix_tests::harness::Logs;
use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};

use super::*;

/// Waits (bounded) until the log holds at least `n` lines for `billable`:
/// the writer is a task of its own, so its rows arrive after the answer.
pub(super) async fn logged(
    octany: &octany_actix::Octany,
    billable: &str,
    n: usize,
) -> Vec<ApiCall> {
    let billable = BillableRef::parse(billable).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let calls = octany.api_calls(&billable, 100).await.unwrap();
            if calls.len() >= n {
                return calls;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} call(s) for {billable} were never logged"))
}

/// Every text the table holds, one string per row.
async fn every_row(db: &octany_actix_tests::TestDb) -> Vec<String> {
    db.conn
        .query_all_raw(Statement::from_string(
            db.db_backend(),
            "SELECT method, path, billable_ref, error FROM octany_api_calls".to_owned(),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            ["method", "path", "billable_ref", "error"]
                .iter()
                .map(|c| {
                    row.try_get::<Option<String>>("", c)
                        .unwrap()
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The log lines (INFO and up) of this whole test binary from the first
/// call on: a global subscriber, as an app has (a subscriber scoped to the
/// test's thread can miss lines while other tests start and end theirs).
pub(super) fn binary_logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("no other test of this binary sets a global subscriber");
        logs
    })
}

db_test!(
    async fn each_call_to_octany_is_logged_for_its_billable_and_never_the_key(db: TestDb) {
        let logs = binary_logs();
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        // A checkout asks Octany for the buyer's subscriptions first.
        let checkout = call(&app, "GET", "/billing/checkout/pro-monthly", Some(3), true).await;
        assert_eq!(checkout.status, 303);
        let calls = logged(&octany, "user:3", 1).await;
        let first = calls.last().unwrap();
        assert_eq!(first.method, "GET");
        assert!(first.path.starts_with("subscription"), "{first:?}");
        assert_eq!((first.status, first.attempt), (Some(200), 1));
        assert_eq!(first.billable.as_deref(), Some("user:3"));
        assert!(first.error.is_none());
        // Failed calls are logged with Octany's status and why, each
        // attempt of a retried call on a line of its own.
        fake.set_faults(Faults {
            api_error_rate: 1.0,
            ..Faults::none()
        });
        let failed = octany.billing(&TestUser::new(4)).sync().await;
        assert!(failed.is_err(), "{failed:?}");
        fake.set_faults(Faults::none());
        let calls = logged(&octany, "user:4", 2).await;
        assert!(
            calls
                .iter()
                .all(|c| c.status.is_some_and(|s| s >= 500) && c.error.is_some()),
            "{calls:?}"
        );
        let mut attempts: Vec<u32> = calls.iter().map(|c| c.attempt).collect();
        attempts.sort_unstable();
        assert_eq!(attempts[..2], [1, 2], "{calls:?}");
        // Another billable's log holds none of these.
        assert!(
            octany
                .api_calls(&BillableRef::parse("user:5").unwrap(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // The key is in no row and no log line.
        let key = fake.api_key();
        let rows = every_row(&db).await;
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| !r.contains(&key)), "{rows:?}");
        let text = logs.text();
        assert!(
            text.contains("retrying Octany request"),
            "the failed requests were logged"
        );
        assert!(!text.contains(&key), "the key reached a log line");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_api_call_log_is_pruned_by_age_and_can_be_off(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        call(&app, "GET", "/billing/checkout/pro-monthly", Some(3), true).await;
        let before = logged(&octany, "user:3", 1).await.len();
        // Thirty-one days on, a prune of thirty deletes them; a newer one stays.
        fake.advance(Duration::from_secs(31 * 86_400));
        call(&app, "GET", "/billing/checkout/pro-monthly", Some(6), true).await;
        logged(&octany, "user:6", 1).await;
        let pruned = octany
            .operator("ops@example.com", "monthly prune")
            .unwrap()
            .prune(Duration::from_secs(30 * 86_400))
            .await
            .unwrap();
        assert_eq!(pruned.api_calls, before as u64);
        let user3 = BillableRef::parse("user:3").unwrap();
        assert!(octany.api_calls(&user3, 10).await.unwrap().is_empty());
        let user6 = BillableRef::parse("user:6").unwrap();
        assert_eq!(octany.api_calls(&user6, 10).await.unwrap().len(), 1);

        // With the log off, a second instance's calls are not written (the
        // first instance's next call is, and is waited for).
        let quiet = octany_actix_tests::app::builder(&db, &fake, Duration::from_secs(5))
            .api_call_log(false)
            .build()
            .unwrap();
        let quiet_app = octany_actix_tests::serving!(quiet);
        let answer = call(
            &quiet_app,
            "GET",
            "/billing/checkout/pro-monthly",
            Some(7),
            true,
        )
        .await;
        assert_eq!(answer.status, 303);
        call(&app, "GET", "/billing/checkout/pro-monthly", Some(8), true).await;
        logged(&octany, "user:8", 1).await;
        let user7 = BillableRef::parse("user:7").unwrap();
        assert!(octany.api_calls(&user7, 10).await.unwrap().is_empty());
        fake.stop().await;
        db
    }
);
