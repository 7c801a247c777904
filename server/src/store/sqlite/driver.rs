//! SQLite's side of the shared data layer: binding [`Param`]s, reading columns, and running the
//! shared statements (each prepared once per connection, in SQLite's placeholder form).

use super::super::row::Columns;
use super::super::sql::{lite, Param};
use super::super::StoreResult;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql};

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Int(n) => ValueRef::Integer(*n),
            Param::Flag(b) => ValueRef::Integer((*b).into()),
            Param::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

impl Columns for Row<'_> {
    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.get(name)?)
    }

    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(self.get(name)?)
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.get(name)?)
    }

    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        Ok(self.get(name)?)
    }
}

/// Every row of a shared statement (its SQLite form prepared once per connection), decoded.
pub(super) fn query<T>(conn: &Connection, sql: &str, values: &[Param], mut decode: impl FnMut(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(&lite(sql))?;
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next()? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

/// The first row of a shared query, if any.
pub(super) fn first<T>(conn: &Connection, sql: &str, values: &[Param], decode: impl FnMut(&Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
    Ok(query(conn, sql, values, decode)?.into_iter().next())
}

/// Changed rows of a shared statement.
pub(super) fn execute(conn: &Connection, sql: &str, values: &[Param]) -> StoreResult<usize> {
    Ok(conn.prepare_cached(&lite(sql))?.execute(rusqlite::params_from_iter(values))?)
}

/// How many rows a shared statement returned: the changed rows of an update `RETURNING id`.
pub(super) fn returned(conn: &Connection, sql: &str, values: &[Param]) -> StoreResult<usize> {
    Ok(query(conn, sql, values, |_| Ok(()))?.len())
}

/// The one number a count returns.
pub(super) fn count(conn: &Connection, sql: &str, values: &[Param]) -> StoreResult<u64> {
    Ok(first(conn, sql, values, |r| Ok(r.get::<_, Option<i64>>(0)?))?.flatten().unwrap_or(0).max(0) as u64)
}

/// The first column of every row: ids, queue keys.
pub(super) fn ids(conn: &Connection, sql: &str, values: &[Param]) -> StoreResult<Vec<String>> {
    query(conn, sql, values, |r| Ok(r.get(0)?))
}
