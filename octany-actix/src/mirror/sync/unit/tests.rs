//! The unit of work against a real PostgreSQL server, when
//! `OCTANY_TEST_POSTGRES_URL` names one (CI sets it): two writers that
//! touch the same rows in opposite orders.

use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    Statement, TransactionTrait,
};

use super::{Batch, Unit};
use crate::client::OctanyClient;
use crate::domain::config::OctanyConfig;
use crate::domain::model::Subscription;
use crate::mirror::sync::apply::{Mark, subscription_data, subscription_row};
use crate::mirror::sync::events::Origin;
use crate::mirror::sync::{SyncOptions, Syncer};

/// A schema of its own on the server `OCTANY_TEST_POSTGRES_URL` names,
/// migrated, and the connection that created it (to drop it); `None` when
/// the variable is not set.
async fn postgres() -> Option<(DatabaseConnection, DatabaseConnection, String)> {
    use octany_actix_migrations::MigratorTrait;
    let url = std::env::var("OCTANY_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())?;
    let admin = Database::connect(url.as_str())
        .await
        .expect("the server is up");
    let schema = format!("octany_unit_{}", std::process::id());
    admin
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let mut options = ConnectOptions::new(url);
    options
        .set_schema_search_path(schema.clone())
        .max_connections(4)
        .sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    octany_actix_migrations::Migrator::up(&db, None)
        .await
        .unwrap();
    Some((db, admin, schema))
}

fn subscription(id: u64) -> Subscription {
    serde_json::from_value(serde_json::json!({
        "id": id, "customer_id": 5521093, "price": 9900, "vat": 2475, "currency": "sek",
        "renews_at": "2026-06-25T09:29:51+00:00", "ends_at": null,
        "reference_id": format!("user:{id}"), "reference_name": null, "status": "active",
        "product": {"id": 1225, "name": "Pro monthly", "type": "subscription", "interval": "month",
                    "price": 9900, "currency": "sek", "vat_rate": 2500},
        "billing_method": null
    }))
    .expect("a subscription as API.md shapes it")
}

/// A poll that observed `ids`' subscriptions, in that order.
fn unit(ids: &[u64], mark: Mark) -> Unit {
    Unit {
        batch: Batch::default()
            .subscriptions(ids.iter().map(|id| subscription(*id)).collect(), mark),
        origin: Origin::Poll,
        delivery: None,
    }
}

async fn pid(txn: &impl ConnectionTrait) -> i32 {
    txn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT pg_backend_pid() AS pid",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "pid")
    .unwrap()
}

/// Until the server shows `waiter` waiting for a lock `holder` holds.
async fn until_blocked(db: &DatabaseConnection, waiter: i32, holder: i32) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let blocked = db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT $2 = ANY(pg_blocking_pids($1)) AS blocked",
                    [waiter.into(), holder.into()],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<bool>("", "blocked")
                .unwrap();
            if blocked {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("backend {waiter} waits for backend {holder}"));
}

/// Two units of work that write the same two new subscriptions in
/// opposite orders (as two groups of webhook deliveries may, in the order
/// they arrived) do not deadlock: the first to start holds what both
/// touch until it commits, and the second waits at its start. Without the
/// backend's lock, A writes 7001 and waits for 7002 (which a third
/// transaction holds), B writes 7003 and waits for 7001 (A's), and once
/// the third lets go, A waits for 7003 (B's): PostgreSQL breaks the
/// deadlock by failing one of them (`40P01`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_crossing_the_same_rows_do_not_deadlock() {
    let Some((db, admin, schema)) = postgres().await else {
        eprintln!("OCTANY_TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let config = OctanyConfig::new("8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1", "key").unwrap();
    let syncer = Syncer::with_options(
        db.clone(),
        OctanyClient::new(config).unwrap(),
        SyncOptions::default(),
    );
    let now = chrono::Utc::now();
    let mark = Mark::of(Some(now));
    // The third transaction: another writer's uncommitted insert of 7002.
    let other = db.begin().await.unwrap();
    let held = subscription(7002);
    subscription_row(&held, subscription_data(&held), mark.0, now)
        .insert(&other)
        .await
        .unwrap();
    let other_pid = pid(&other).await;
    let write = |ids: &'static [u64]| {
        let (syncer, db) = (syncer.clone(), db.clone());
        let (pid_tx, pid_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let txn = db.begin().await?;
            pid_tx.send(pid(&txn).await).unwrap();
            let unit = unit(ids, mark);
            syncer.write(&txn, &[&unit]).await?;
            txn.commit().await
        });
        (task, pid_rx)
    };
    let (a, a_pid) = write(&[7001, 7002, 7003]);
    let a_pid = a_pid.await.unwrap();
    until_blocked(&db, a_pid, other_pid).await;
    let (b, b_pid) = write(&[7003, 7001]);
    let b_pid = b_pid.await.unwrap();
    until_blocked(&db, b_pid, a_pid).await;
    other.rollback().await.unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let rows: Vec<String> = {
        use crate::mirror::entity::subscription;
        use sea_orm::{EntityTrait, QueryOrder};
        subscription::Entity::find()
            .order_by_asc(subscription::Column::Id)
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect()
    };
    admin
        .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    assert!(a.is_ok() && b.is_ok(), "A: {a:?}, B: {b:?}");
    assert_eq!(rows, ["7001", "7002", "7003"]);
}
