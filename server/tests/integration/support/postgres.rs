//! PostgreSQL for tests: fresh databases on the test command's server (`SKAPI_TEST_POSTGRES`),
//! and a private server a test may stop and start without touching anyone else's.

use std::process::{Command, Stdio};

/// A fresh database on the test PostgreSQL (`SKAPI_TEST_POSTGRES`). Blocking: call it outside
/// the async runtime.
pub fn fresh_postgres_database() -> String {
    // A PostgreSQL test without its database fails: it is never counted as passed.
    let base = std::env::var("SKAPI_TEST_POSTGRES").expect("SKAPI_TEST_POSTGRES is not set (scripts/test.sh starts a PostgreSQL and sets it)");
    fresh_database_on(&base)
}

/// A fresh database on the server at `base` (a URL naming any database of it).
pub fn fresh_database_on(base: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The PID comes first: scripts/postgres.sh drops the database once this process has ended.
    let name = format!("skapi_test_{}_{}_{n}", std::process::id(), skapi_server::clock::now_ms());
    let mut admin = postgres::Client::connect(base, postgres::NoTls).expect("the test PostgreSQL is reachable");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

/// A PostgreSQL server of this test's own (Debian's, as `scripts/postgres.sh` installs it), in a
/// temporary directory on a free port; stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    /// Makes the cluster and starts it. Blocking.
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL (scripts/postgres.sh installs it)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("Debian's PostgreSQL (scripts/postgres.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user.
        assert!(Command::new("chown").arg("postgres").arg(dir.path()).status().unwrap().success(), "chown postgres");
        let postgres = PrivatePostgres { dir, port, bin };
        postgres.run("initdb", "--auth=trust --username=postgres");
        postgres.start_again();
        postgres
    }

    /// A URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m mode` (`fast`, `immediate`).
    pub fn stop(&self, mode: &str) {
        self.run("pg_ctl", &format!("-w stop -m {mode}"));
    }

    /// `pg_ctl start` on the same port.
    pub fn start_again(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", self.port, self.dir.path().display());
        self.run("pg_ctl", &format!("-w -l '{}/log' -o \"{options}\" start", self.dir.path().display()));
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.try_run("pg_ctl", "status")
    }

    fn run(&self, program: &str, args: &str) {
        assert!(self.try_run(program, args), "{program} {args}");
    }

    /// `program -D dir args` as the `postgres` user; whether it succeeded.
    fn try_run(&self, program: &str, args: &str) -> bool {
        let command = format!("{} -D '{}' {args}", self.bin.join(program).display(), self.dir.path().display());
        Command::new("su").args(["postgres", "-c", &command]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.is_running() {
            self.try_run("pg_ctl", "-w stop -m immediate");
        }
    }
}
