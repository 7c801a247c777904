//! What the tests share, one module per kind of helper.

mod faults;
mod leaks;
mod load;
mod postgres;
mod process;
mod server;
mod stand_in;

pub use faults::*;
pub use leaks::*;
pub use load::*;
pub use postgres::*;
pub use process::*;
pub use server::*;
pub use stand_in::*;

pub const SERVICE: &str = "svc-test";
pub const OWNER: &str = "owner-test";
pub const SECRET: &str = "sk-test-5ecr3t/+=";

/// Where a test server keeps its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A file in the server's data directory.
    Sqlite,
    /// A fresh database on the test command's PostgreSQL (`SKAPI_TEST_POSTGRES`).
    Postgres,
}

impl Engine {
    /// The server's `database` setting (`None` = SQLite in its data directory).
    pub fn database(self) -> Option<String> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some(blocking(fresh_postgres_database)),
        }
    }
}

/// Runs store work from a test body: the PostgreSQL client blocks, which an async worker
/// thread may only do inside `block_in_place`.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Makes tests of the module's `async fn name(engine: Engine)` functions: `sqlite::name` for
/// each one listed, and `postgres::name` for those under `both` — the engine in the test's name.
/// `name: 4` gives the test's runtime four worker threads.
macro_rules! engine_tests {
    (both: [$($both:ident $(: $both_threads:literal)?),* $(,)?] $(, sqlite: [$($lite:ident $(: $lite_threads:literal)?),* $(,)?])? $(,)?) => {
        mod sqlite {
            $($crate::support::engine_tests!(@test Sqlite $both $($both_threads)?);)*
            $($($crate::support::engine_tests!(@test Sqlite $lite $($lite_threads)?);)*)?
        }
        mod postgres {
            $($crate::support::engine_tests!(@test Postgres $both $($both_threads)?);)*
        }
    };
    (@test $engine:ident $name:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            super::$name($crate::support::Engine::$engine).await
        }
    };
    (@test $engine:ident $name:ident $threads:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
        async fn $name() {
            super::$name($crate::support::Engine::$engine).await
        }
    };
}
pub(crate) use engine_tests;
