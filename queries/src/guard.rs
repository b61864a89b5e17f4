//! The read-only SQL guard: what `tunnelwatch query` (and any HTTP query endpoint) may run.
//!
//! Allowed: exactly one `SELECT`/`WITH`/`VALUES` query (without `SELECT … INTO`), `EXPLAIN` of
//! such a query, `SHOW TABLES`/`SHOW COLUMNS`, `DESCRIBE table`. Everything else is refused
//! before planning, with the statement kind named: DDL, DML, `COPY … TO`, `CREATE EXTERNAL
//! TABLE`, `SET`/`RESET`, transactions.
//!
//! Defence in depth: the engine also plans with DataFusion's `SQLOptions` that forbid DDL, DML
//! and statements, registers no file-reading table functions, and keeps DataFusion's URL tables
//! (`SELECT * FROM '/etc/passwd'`) disabled.

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::error::StoreError;

/// `s` as an SQL string literal (`'it''s'`), for the values code puts into its own queries.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Checks that `sql` is a single read-only statement.
pub fn check(sql: &str) -> Result<(), StoreError> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|e| StoreError::Refused(format!("cannot parse SQL: {e}")))?;
    match statements.len() {
        0 => return Err(StoreError::Refused("empty statement".into())),
        1 => {}
        n => {
            return Err(StoreError::Refused(format!(
                "{n} statements; run one statement at a time"
            )));
        }
    }
    allowed(&statements[0])
}

fn refuse(what: &str) -> StoreError {
    StoreError::Refused(format!(
        "{what} is not allowed: queries are read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)"
    ))
}

fn allowed(stmt: &DfStatement) -> Result<(), StoreError> {
    match stmt {
        DfStatement::Statement(s) => allowed_sql(s),
        DfStatement::Explain(e) => allowed(&e.statement),
        DfStatement::CopyTo(_) => Err(refuse("COPY … TO")),
        DfStatement::CreateExternalTable(_) => Err(refuse("CREATE EXTERNAL TABLE")),
        DfStatement::Reset(_) => Err(refuse("RESET")),
    }
}

fn allowed_sql(stmt: &Statement) -> Result<(), StoreError> {
    match stmt {
        Statement::Query(q) => {
            if let SetExpr::Select(select) = q.body.as_ref()
                && select.into.is_some()
            {
                return Err(refuse("SELECT … INTO"));
            }
            Ok(())
        }
        Statement::Explain { statement, .. } => allowed_sql(statement),
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. } => Ok(()),
        other => {
            // Name the statement by its first keywords.
            let text = other.to_string();
            let head: Vec<&str> = text.split_whitespace().take(2).collect();
            Err(refuse(&head.join(" ").to_uppercase()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_statements_pass() {
        for sql in [
            "SELECT 1",
            "select count(*) from tunnel_activity where severity = 'error'",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "EXPLAIN SELECT * FROM bgp_events",
            "EXPLAIN ANALYZE SELECT * FROM bgp_events",
            "SHOW TABLES",
            "SHOW COLUMNS FROM tunnel_activity",
            "DESCRIBE tunnel_activity",
            "VALUES (1), (2)",
            "SELECT 1;",
        ] {
            check(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn writes_and_file_access_are_refused() {
        for (sql, named) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("INSERT INTO tunnel_activity VALUES (1)", "INSERT INTO"),
            ("DELETE FROM tunnel_activity", "DELETE FROM"),
            ("UPDATE tunnel_activity SET severity = 'info'", "UPDATE"),
            ("DROP TABLE tunnel_activity", "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("SELECT 1 INTO t", "INTO"),
            ("SELECT 1; DROP TABLE x", "2 statements"),
            ("", "empty"),
        ] {
            let err = check(sql).expect_err(sql).to_string();
            assert!(err.contains(named), "{sql}: {err}");
        }
    }
}

#[cfg(test)]
mod literal_tests {
    #[test]
    fn quotes_are_doubled() {
        assert_eq!(super::sql_literal("vpn-1"), "'vpn-1'");
        assert_eq!(super::sql_literal("x' OR '1'='1"), "'x'' OR ''1''=''1'");
    }
}
