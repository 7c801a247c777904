//! PostgreSQL's side of the shared data layer: its errors as the store's, binding [`Param`]s as
//! the column's own types, and reading columns.

use super::super::row::Columns;
use super::super::sql::Param;
use super::super::{StoreError, StoreResult};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Row;

/// An error and what it says it came from, `a: b: c` — a driver's own text alone is often just
/// "db error", with the server's message in its source.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return StoreError::Exists("that row".into());
        }
        if e.code() == Some(&SqlState::DISK_FULL) {
            return StoreError::Full;
        }
        let going_away = [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW, SqlState::CONNECTION_FAILURE];
        // The connection itself failed: closed, refused, reset, timed out.
        let text = e.to_string();
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let connection = e.is_closed() || io || text.starts_with("error connecting") || text.starts_with("timeout");
        if connection || e.code().is_some_and(|c| going_away.contains(c)) {
            return StoreError::Unavailable(format!("postgres: {}", with_sources(&e)));
        }
        StoreError::Database(format!("postgres: {}", with_sources(&e)))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            // Every connection busy, or none can be made now (the database is away).
            other => StoreError::Unavailable(format!("postgres pool: {}", with_sources(&other))),
        }
    }
}

/// Values as the driver takes them.
pub(super) fn bind(values: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// A value bound as the column's own type: an integer narrowed to `INTEGER` or `SMALLINT` where
/// the column is one (PostgreSQL's binary protocol takes no other width).
impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        fn checked<T: ToSql>(value: T, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            if !T::accepts(ty) {
                return Err(format!("a {} value cannot be bound as {ty}", std::any::type_name::<T>()).into());
            }
            value.to_sql(ty, out)
        }
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Text(s) => checked(s.as_str(), ty, out),
            Param::Int(n) if *ty == Type::INT4 => checked(i32::try_from(*n)?, ty, out),
            Param::Int(n) if *ty == Type::INT2 => checked(i16::try_from(*n)?, ty, out),
            Param::Int(n) => checked(*n, ty, out),
            Param::Flag(b) => checked(*b, ty, out),
            Param::Bytes(b) => checked(b.as_slice(), ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Columns for Row {
    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(name)?)
    }

    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        let ty = self.columns().iter().find(|c| c.name() == name).map(|c| c.type_().clone());
        Ok(match ty {
            Some(Type::INT4) => self.try_get::<_, Option<i32>>(name)?.map(i64::from),
            Some(Type::INT2) => self.try_get::<_, Option<i16>>(name)?.map(i64::from),
            _ => self.try_get(name)?,
        })
    }

    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.try_get(name)?)
    }

    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn errors_say_what_they_came_from() {
        let e = Layer("db error", Some(Box::new(Layer("FATAL: the database system is shutting down", None))));
        assert_eq!(with_sources(&e), "db error: FATAL: the database system is shutting down");
        // A source the error already quotes is not said twice.
        let e = Layer("timeout: connect", Some(Box::new(Layer("connect", None))));
        assert_eq!(with_sources(&e), "timeout: connect");
    }
}
