//! Schema migrations of both engines: versioned SQL files (`server/migrations/<engine>/`),
//! applied in order, each once, each in the transaction that records it. The runner's rule is
//! written once ([`to_apply`]); an engine says how it records what it applied (SQLite:
//! `PRAGMA user_version`; PostgreSQL: a `schema_migrations` table, locked while one instance
//! migrates).

use super::{StoreError, StoreResult};

pub const SQLITE: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../migrations/sqlite/0002_queue_indexes.sql"),
    include_str!("../../migrations/sqlite/0003_services.sql"),
    include_str!("../../migrations/sqlite/0004_leases.sql"),
    include_str!("../../migrations/sqlite/0005_streams.sql"),
    include_str!("../../migrations/sqlite/0006_claims.sql"),
    include_str!("../../migrations/sqlite/0007_unfinished_indexes.sql"),
    include_str!("../../migrations/sqlite/0008_started.sql"),
    include_str!("../../migrations/sqlite/0009_forwarding.sql"),
    include_str!("../../migrations/sqlite/0010_request_schema.sql"),
    include_str!("../../migrations/sqlite/0011_quotas.sql"),
    include_str!("../../migrations/sqlite/0012_token_budgets.sql"),
];

pub const POSTGRES: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_leases.sql"),
    include_str!("../../migrations/postgres/0003_streams.sql"),
    include_str!("../../migrations/postgres/0004_claims.sql"),
    include_str!("../../migrations/postgres/0005_unfinished_indexes.sql"),
    include_str!("../../migrations/postgres/0006_started.sql"),
    include_str!("../../migrations/postgres/0007_forwarding.sql"),
    include_str!("../../migrations/postgres/0008_request_schema.sql"),
    include_str!("../../migrations/postgres/0009_quotas.sql"),
    include_str!("../../migrations/postgres/0010_token_budgets.sql"),
];

/// The migrations of `all` still to apply once `applied` of them are, each with the version
/// it makes the schema (from 1). A database newer than this server is refused, untouched.
pub fn to_apply<'a>(applied: usize, all: &'a [&'a str]) -> StoreResult<impl Iterator<Item = (usize, &'a str)>> {
    if applied > all.len() {
        return Err(StoreError::Corrupt(format!("database schema version {applied} is newer than this server knows ({})", all.len())));
    }
    Ok(all.iter().copied().enumerate().skip(applied).map(|(i, sql)| (i + 1, sql)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_missing_is_applied_and_a_newer_schema_is_refused() {
        let all = ["a", "b", "c"];
        assert_eq!(to_apply(0, &all).unwrap().collect::<Vec<_>>(), [(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(to_apply(2, &all).unwrap().collect::<Vec<_>>(), [(3, "c")]);
        assert_eq!(to_apply(3, &all).unwrap().count(), 0);
        assert!(matches!(to_apply(4, &all).map(|m| m.count()), Err(StoreError::Corrupt(_))));
    }
}
