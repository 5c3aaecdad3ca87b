//! What the reconcile and the operator's tools do: abandoned checkouts, overdue renewals, backfill, migrations, the lapse windows.

use super::*;

db_test!(
    async fn old_pending_checkouts_are_abandoned_by_the_reconcile(db: TestDb) {
        let h = Harness::new(db).await;
        let intent_id = pending_checkout(&h, 6, 1227).await;
        assert_eq!(h.syncer.reconcile().await.unwrap().abandoned, 0);
        h.fake.advance_days(2);
        assert_eq!(h.syncer.reconcile().await.unwrap().abandoned, 1);
        let intent = checkout::Entity::find_by_id(intent_id.as_str())
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(intent.status, checkout::CheckoutStatus::Abandoned);
        h.finish().await
    }
);

db_test!(
    async fn an_overdue_renewal_stops_access_until_a_sync_confirms_it(db: TestDb) {
        let h = Harness::new(db).await;
        let id = h
            .fake
            .checkout(1225, &buyer("user:4"), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap()
            .id
            .to_string();
        h.syncer
            .sync_billable_subscriptions(&BillableRef::new("user", "4"))
            .await
            .unwrap();
        let clock = h.syncer.clock().clone();
        h.fake.advance_days(31 + 1);
        assert!(
            row(&h, &id)
                .await
                .has_access(clock.as_ref(), AccessPolicy::default()),
            "within the 2-day grace"
        );
        h.fake.advance_days(2);
        let stale = row(&h, &id).await;
        assert!(
            stale.is_paying(clock.as_ref()),
            "by Octany's rule alone it still looks paid"
        );
        assert!(
            !stale.has_access(clock.as_ref(), AccessPolicy::default()),
            "but no renewal was seen"
        );
        h.syncer
            .sync_billable_subscriptions(&BillableRef::new("user", "4"))
            .await
            .unwrap();
        assert!(
            row(&h, &id)
                .await
                .has_access(clock.as_ref(), AccessPolicy::default()),
            "the sync confirmed the renewal"
        );
        h.finish().await
    }
);

db_test!(
    async fn backfill_walks_every_page_and_resumes(db: TestDb) {
        let h = Harness::new(db).await;
        for i in 0..45 {
            h.fake
                .checkout(1227, &buyer(&format!("user:{i}")), CheckoutOutcome::Succeed)
                .unwrap();
        }
        let mut pages = Vec::new();
        let done = h
            .syncer
            .backfill(
                BackfillOptions {
                    start_page: 2,
                    ..BackfillOptions::default()
                },
                |p| pages.push((p.page, p.next_page)),
            )
            .await
            .unwrap();
        assert_eq!(pages, [(2, Some(3)), (3, None)], "resumed from page 2");
        assert_eq!(done.subscriptions, 25);
        assert_eq!(
            subscription::Entity::find()
                .count(&h.db.conn)
                .await
                .unwrap(),
            25
        );
        assert_eq!(
            product::Entity::find().count(&h.db.conn).await.unwrap(),
            6,
            "the product cache too"
        );
        let all = h
            .syncer
            .backfill(BackfillOptions::default(), |_| {})
            .await
            .unwrap();
        assert_eq!((all.subscriptions, all.total_pages), (45, Some(3)));
        assert_eq!(
            subscription::Entity::find()
                .count(&h.db.conn)
                .await
                .unwrap(),
            45
        );
        h.finish().await
    }
);

db_test!(
    async fn migrations_go_down_and_up_again(db: TestDb) {
        use octany_actix_migrations::{Migrator, MigratorTrait};
        Migrator::down(&db.conn, None).await.unwrap();
        assert!(
            subscription::Entity::find().count(&db.conn).await.is_err(),
            "tables dropped"
        );
        assert!(
            octany_actix::entity::event::Entity::find()
                .count(&db.conn)
                .await
                .is_err(),
            "the outbox dropped"
        );
        Migrator::up(&db.conn, None).await.unwrap();
        assert_eq!(
            subscription::Entity::find().count(&db.conn).await.unwrap(),
            0
        );
        let statuses = Migrator::get_migration_with_status(&db.conn).await.unwrap();
        assert_eq!(statuses.len(), 15);
        assert_eq!(
            octany_actix::entity::event::Entity::find()
                .count(&db.conn)
                .await
                .unwrap(),
            0,
            "the outbox is back too"
        );
        db
    }
);

db_test!(
    async fn the_lapse_and_abandon_windows_are_set_on_the_builder(db: TestDb) {
        let h = Harness::new(db).await;
        let octany = octany_actix::Octany::builder(
            h.fake.config().with_webhook_secret(SECRET),
            h.db.conn.clone(),
        )
        .public_base_url("http://localhost:8080")
        .clock(h.fake.app_clock())
        .checkouts_lapse_after(std::time::Duration::from_secs(300))
        .abandon_checkouts_after(std::time::Duration::from_secs(600))
        .build()
        .unwrap();
        let opened = pending_checkout(&h, 8, 1227).await;
        let returned = pending_checkout(&h, 9, 1227).await;
        // The buyer of `returned` came back through the success URL, as the success page records it.
        checkout::Entity::update_many()
            .col_expr(
                checkout::Column::Status,
                octany_actix_tests::sea_orm::sea_query::Expr::value(
                    checkout::CheckoutStatus::Awaiting,
                ),
            )
            .filter(checkout::Column::Id.eq(returned.as_str()))
            .exec(&h.db.conn)
            .await
            .unwrap();
        let status = |id: String| {
            let conn = h.db.conn.clone();
            async move {
                checkout::Entity::find_by_id(id.as_str())
                    .one(&conn)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
            }
        };
        h.fake.advance(std::time::Duration::from_secs(299));
        assert_eq!(octany.syncer().reconcile().await.unwrap().abandoned, 0);
        h.fake.advance(std::time::Duration::from_secs(2));
        assert_eq!(octany.syncer().reconcile().await.unwrap().abandoned, 1);
        assert_eq!(
            status(opened).await,
            checkout::CheckoutStatus::Abandoned,
            "lapsed"
        );
        assert_eq!(
            status(returned.clone()).await,
            checkout::CheckoutStatus::Awaiting
        );
        h.fake.advance(std::time::Duration::from_secs(300));
        assert_eq!(octany.syncer().reconcile().await.unwrap().abandoned, 1);
        assert_eq!(status(returned).await, checkout::CheckoutStatus::Abandoned);
        h.finish().await
    }
);
