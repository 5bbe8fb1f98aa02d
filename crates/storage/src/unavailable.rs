//! Which database errors mean "the database is unavailable" (wait and try
//! again, however long it takes) rather than "this work is wrong" (ADR 0023).

use sea_orm::{sqlx, DbErr, RuntimeErr};

/// Whether `e` says the database cannot be reached or cannot serve now: no
/// connection from the pool, a broken or refused connection, the server
/// shutting down or starting, too many connections, out of disk or
/// memory, a serialisation failure or deadlock, a busy or locked SQLite
/// file.
pub fn is_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => match r {
            RuntimeErr::SqlxError(s) => sqlx_unavailable(s),
            RuntimeErr::Internal(text) => text_says_unavailable(text),
        },
        _ => false,
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            let postgres = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some();
            d.code().is_some_and(|c| if postgres { sqlstate_unavailable(&c) } else { sqlite_unavailable(&c) })
        }
        other => text_says_unavailable(&other.to_string()),
    }
}

/// SQLite's (extended) result codes of an unavailable database: the primary
/// code is the low byte.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|n| {
        matches!(
            n & 0xff,
            5 /* BUSY */ | 6 /* LOCKED */ | 7 /* NOMEM */ | 10 /* IOERR */ | 13 /* FULL */ | 14 /* CANTOPEN */
        )
    })
}

/// PostgreSQL's SQLSTATEs of an unavailable database.
fn sqlstate_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full, out of memory)
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code.starts_with("58") // system error (I/O)
        || matches!(
            code,
            "40001" // serialization_failure
            | "40P01" // deadlock_detected
            | "55P03" // lock_not_available
            | "57014" // query_canceled (statement timeout)
            | "25006" // read_only_sql_transaction (a standby after failover)
        )
}

fn text_says_unavailable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "broken pipe",
        "timed out",
        "pool closed",
        "database is locked",
        "database is busy",
        "terminating connection",
        "the database system is",
        "no route to host",
        "unexpected eof",
    ]
    .iter()
    .any(|needle| t.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;

    #[test]
    fn classification_table() {
        let rt = |s: sqlx::Error| DbErr::Query(RuntimeErr::SqlxError(s));
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cases: Vec<(&str, DbErr, bool)> = vec![
            ("pool timeout", DbErr::ConnectionAcquire(ConnAcquireErr::Timeout), true),
            ("pool connection closed", DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed), true),
            ("io", rt(sqlx::Error::Io(io())), true),
            ("connect io", DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Io(io()))), true),
            ("sqlx pool timed out", rt(sqlx::Error::PoolTimedOut), true),
            ("protocol", rt(sqlx::Error::Protocol("unexpected message".into())), true),
            ("row not found", rt(sqlx::Error::RowNotFound), false),
            ("internal text", DbErr::Query(RuntimeErr::Internal("connection refused".into())), true),
            ("internal other", DbErr::Query(RuntimeErr::Internal("column x".into())), false),
            ("record not found", DbErr::RecordNotFound("x".into()), false),
            ("custom", DbErr::Custom("bad".into()), false),
            ("type", DbErr::Type("bad".into()), false),
        ];
        for (what, e, want) in cases {
            assert_eq!(is_unavailable(&e), want, "{what}: {e}");
        }
        for (code, want) in [("5", true), ("517", true), ("6", true), ("10", true), ("19", false), ("2067", false)] {
            assert_eq!(sqlite_unavailable(code), want, "SQLite {code}");
        }
        for (code, want) in [
            ("08006", true),
            ("08001", true),
            ("57P01", true),
            ("57P03", true),
            ("53300", true),
            ("40001", true),
            ("40P01", true),
            ("25006", true),
            ("23505", false), // unique violation: the work is wrong, not the database
            ("22P02", false), // invalid text representation
            ("42P01", false), // undefined table
        ] {
            assert_eq!(sqlstate_unavailable(code), want, "SQLSTATE {code}");
        }
    }
}
