//! Helpers for octany-actix's cross-crate and database integration tests.
//!
//! [`db_test!`] writes one test per backend: SQLite always; PostgreSQL when
//! `OCTANY_TEST_POSTGRES_URL` is set; MySQL/MariaDB when
//! `OCTANY_TEST_MYSQL_URL` is set. A backend without a URL is compiled as an
//! ignored test, so `cargo test` reports it as skipped. Each test gets a
//! database (or schema) of its own, so tests run in parallel.
//!
//! ```text
//! octany_actix_tests::db_test!(async fn it_works(db: TestDb) {
//!     assert!(db.ping().await.is_ok());
//! });
//! ```

use std::future::Future;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

pub use sea_orm;

/// The database servers the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh schema on the server at `OCTANY_TEST_POSTGRES_URL`.
    Postgres,
    /// A fresh database on the server at `OCTANY_TEST_MYSQL_URL`.
    MySql,
}

impl Backend {
    fn url_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("OCTANY_TEST_POSTGRES_URL"),
            Backend::MySql => Some("OCTANY_TEST_MYSQL_URL"),
        }
    }
}

/// A database of one test's own, dropped when the test has passed.
#[derive(Debug)]
pub struct TestDb {
    /// The connection.
    pub conn: DatabaseConnection,
    /// Which backend it is.
    pub backend: Backend,
    cleanup: Option<(DatabaseConnection, String)>,
    /// How `conn` was made, for [`TestDb::app_connection`] (a server's).
    options: Option<ConnectOptions>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        octany_actix::install_crypto_provider();
        let name = format!("octany_t_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                TestDb {
                    conn: connect(sqlite_options(url)).await,
                    backend,
                    cleanup: None,
                    options: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let url = server_url(backend);
                let admin = connect(ConnectOptions::new(url.clone())).await;
                exec(&admin, &format!("CREATE SCHEMA {name}")).await;
                let mut options = ConnectOptions::new(url);
                options.set_schema_search_path(name.clone());
                TestDb {
                    conn: connect(options.clone()).await,
                    backend,
                    cleanup: Some((admin, format!("DROP SCHEMA {name} CASCADE"))),
                    options: Some(options),
                    _dir: None,
                }
            }
            Backend::MySql => {
                let url = server_url(backend);
                let admin = connect(ConnectOptions::new(url.clone())).await;
                exec(&admin, &format!("CREATE DATABASE {name}")).await;
                let mut own = url::Url::parse(&url).expect("OCTANY_TEST_MYSQL_URL is a URL");
                own.set_path(&format!("/{name}"));
                let options = ConnectOptions::new(own.to_string());
                TestDb {
                    conn: connect(options.clone()).await,
                    backend,
                    cleanup: Some((admin, format!("DROP DATABASE {name}"))),
                    options: Some(options),
                    _dir: None,
                }
            }
        }
    }

    /// A fresh database with octany-actix's migrations applied.
    pub async fn migrated(backend: Backend) -> TestDb {
        let db = TestDb::new(backend).await;
        use octany_actix_migrations::MigratorTrait;
        octany_actix_migrations::Migrator::up(&db.conn, None)
            .await
            .expect("migrations apply");
        db
    }

    /// A connection for an app served by its own workers (an
    /// `HttpServer`): on a database server, a pool of its own, so that
    /// connections opened on the workers' runtimes die with that app and
    /// are never handed to the next app started on this database (they
    /// fail with "a Tokio context … is being shut down"). SQLite's
    /// connections run on threads of their own: the same pool.
    pub async fn app_connection(&self) -> DatabaseConnection {
        match &self.options {
            Some(options) => connect(options.clone()).await,
            None => self.conn.clone(),
        }
    }

    /// The sea-orm backend of the connection.
    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Drops the database (or schema).
    pub async fn drop_database(self) {
        self.conn.close_by_ref().await.ok();
        if let Some((admin, statement)) = &self.cleanup {
            exec(admin, statement).await;
            admin.close_by_ref().await.ok();
        }
    }
}

/// SQLite as it should run in production: write-ahead log, `synchronous =
/// NORMAL` (durable across crashes of the app; a power loss may lose the last
/// commits), and a busy timeout for concurrent writers.
pub fn sqlite_options(url: String) -> ConnectOptions {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let mut options = ConnectOptions::new(url);
    options.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
    });
    options
}

fn server_url(backend: Backend) -> String {
    let var = backend.url_var().expect("a server backend");
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} was set when the tests were built but is not set now: set it again, or rebuild"
        )
    })
}

async fn connect(mut options: ConnectOptions) -> DatabaseConnection {
    options
        .max_connections(5)
        .min_connections(0)
        .sqlx_logging(false);
    let url = options.get_url().to_owned();
    Database::connect(options).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test database ({e}); is the server at {url} up?")
    })
}

async fn exec(conn: &DatabaseConnection, sql: &str) {
    conn.execute_raw(Statement::from_string(
        conn.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
}

/// Runs `test` on a fresh migrated database of `backend`, then drops it.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    let db = TestDb::migrated(backend).await;
    test(db).await.drop_database().await;
}

/// One test per backend; see the crate docs. The body receives a migrated
/// [`TestDb`] and must give it back at the end, so it can be dropped.
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident : TestDb) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::TestDb) -> $crate::TestDb $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run($crate::Backend::Sqlite, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(octany_postgres), ignore = "OCTANY_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                $crate::run($crate::Backend::Postgres, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(octany_mysql), ignore = "OCTANY_TEST_MYSQL_URL is not set")]
            async fn mysql() {
                $crate::run($crate::Backend::MySql, body).await
            }
        }
    };
}

/// This process's resident memory in KiB (from `/proc/self/status`; 0
/// where there is none), for the benchmarks' memory figures.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub mod app;
pub mod harness;
pub mod http;
