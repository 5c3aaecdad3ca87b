//! The database matrix works: a table created, written and read back on
//! every configured backend, in a database of the test's own.

use octany_actix_tests::db_test;
use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};

db_test!(
    async fn round_trip(db: TestDb) {
        let backend = db.db_backend();
        let run = |sql: &str| Statement::from_string(backend, sql.to_owned());
        db.conn
            .execute_raw(run(
                "CREATE TABLE smoke (id INTEGER PRIMARY KEY, note VARCHAR(32) NOT NULL)",
            ))
            .await
            .unwrap();
        db.conn
            .execute_raw(run(
                "INSERT INTO smoke (id, note) VALUES (1, 'hej'), (2, 'då')",
            ))
            .await
            .unwrap();
        let rows = db
            .conn
            .query_all_raw(run("SELECT note FROM smoke ORDER BY id"))
            .await
            .unwrap();
        let notes: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("", "note").unwrap())
            .collect();
        assert_eq!(notes, ["hej", "då"]);
        db
    }
);

db_test!(
    async fn each_test_has_its_own_database(db: TestDb) {
        let backend = db.db_backend();
        // The table of the test above is not visible here.
        let err = db
            .conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT note FROM smoke".to_owned(),
            ))
            .await;
        assert!(err.is_err(), "a fresh database has no table `smoke`");
        db
    }
);
