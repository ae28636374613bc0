//! The read-model tables, described once: the DDL of both backends, the
//! upserts and the dumps come from these descriptions.
//!
//! The tables are created here rather than by migrations because a
//! rebuild creates a second copy of a projection's tables beside the live
//! one (suffix `__next`) and swaps them in by renaming; SQLite cannot
//! copy a table's definition, so the definition must live in code. Read
//! models are disposable: a change of [`SCHEMA_VERSION`] rebuilds them
//! from the log instead of migrating them. Index names carry a generation
//! number, since an index keeps its name when its table is renamed.

use projections::ProjectionName;

use super::db::Backend;

/// Bump when a table below changes; stored per projection, and a stored
/// version that differs makes `open` recreate that projection's tables
/// empty (the runner then fills them from the log).
pub const SCHEMA_VERSION: i64 = 6;

/// Tables that earlier schema versions had and this one does not: opening
/// the read models drops them (and a rebuild's copy of them).
///
/// `rm_audit_subjects` (version 2 and before) held the subjects of each
/// audit entry, one row per (subject, position): a copy of the rows of
/// the log's `event_tags` that name subjects. The audit lookup by subject
/// now reads `event_tags` itself.
pub(crate) const RETIRED: &[&str] = &["rm_audit_subjects"];

/// The suffix of the tables a rebuild fills before the swap.
pub(crate) const SHADOW: &str = "__next";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    OptInt,
    Text,
    OptText,
}

#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static [&'static str],
    /// (name part, columns, partial-index condition)
    pub indexes: &'static [(&'static str, &'static str, Option<&'static str>)],
    /// Whether writing a page finds rows through `indexes` (a side table
    /// cleared by a column its key does not lead with); a rebuild then
    /// creates them with the table instead of after filling it.
    pub indexes_serve_writes: bool,
    /// Whether writing a page finds rows by the primary key: lookups and
    /// upserts of a main table, side rows cleared by the column the key
    /// leads with. When not (the audit trail, side tables cleared through
    /// a secondary index), a rebuild on PostgreSQL adds the key after
    /// filling the table: one sort instead of a b-tree kept in order row
    /// by row. On SQLite a table is built on its key (`WITHOUT ROWID`,
    /// or the rowid itself), which must exist from the start; a unique
    /// index added later instead was measured no faster there.
    pub key_serves_writes: bool,
}

impl Table {
    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(name, _)| *name).collect()
    }
}

use Kind::{Int, OptInt, OptText, Text};

pub(crate) const AUDIT: Table = Table {
    name: "rm_audit",
    columns: &[
        ("position", Int),
        ("event_id", Text),
        ("stream", Text),
        ("event_type", Text),
        ("occurred_at", Int),
        ("recorded_at", Int),
        ("actor", Text),
        ("source_channel", OptText),
        ("correlation_id", OptText),
        ("causation_id", OptText),
        ("summary", Text),
        ("reason", OptText),
        ("subjects", Text),
    ],
    key: &["position"],
    indexes: &[
        ("actor", "actor, position", None),
        ("type", "event_type, position", None),
        ("occurred", "occurred_at, position", None),
    ],
    indexes_serve_writes: false,
    key_serves_writes: false,
};

pub(crate) const RESOURCES: Table = Table {
    name: "rm_resources",
    columns: &[
        ("subject", Text),
        ("kind", Text),
        ("workspace", OptText),
        ("account", OptText),
        ("parent", OptText),
        ("derived_from", OptText),
        ("external_account", OptText),
        ("scopes", Text),
        ("registered_at", Int),
        ("disconnected_at", OptInt),
        ("tasks_pending", Int),
        ("erased_at", OptInt),
        ("retained_basis", OptText),
        ("retained_until", OptInt),
        ("state", Text),
        ("since", Int),
        ("position", Int),
    ],
    key: &["subject"],
    // Retentions by end date: the sweep that erases what they kept.
    indexes: &[(
        "retained",
        "retained_until, subject",
        Some("state = 'retained'"),
    )],
    indexes_serve_writes: false,
    key_serves_writes: true,
};

pub(crate) const RESOURCE_SCOPES: Table = Table {
    name: "rm_resource_scopes",
    columns: &[("scope", Text), ("subject", Text)],
    key: &["scope", "subject"],
    indexes: &[("subject", "subject, scope", None)],
    indexes_serve_writes: true,
    key_serves_writes: false,
};

pub(crate) const HOLDS: Table = Table {
    name: "rm_holds",
    columns: &[
        ("hold", Text),
        ("scope", Text),
        ("kind", Text),
        ("matter", Text),
        ("reason", Text),
        ("placed_by", Text),
        ("placed_at", Int),
        ("placed_position", Int),
        ("lifted_by", OptText),
        ("lifted_at", OptInt),
        ("lift_reason", OptText),
        ("lifted_position", OptInt),
    ],
    key: &["hold"],
    indexes: &[
        ("active", "scope", Some("lifted_at IS NULL")),
        ("placed", "placed_position", None),
    ],
    indexes_serve_writes: false,
    key_serves_writes: true,
};

pub(crate) const REQUESTS: Table = Table {
    name: "rm_requests",
    columns: &[
        ("request", Text),
        ("scope", Text),
        ("channel", Text),
        ("policy", Text),
        ("requested_by", Text),
        ("recorded_by", OptText),
        ("received_at", Int),
        ("original_due_at", Int),
        ("due_at", Int),
        ("extension_reason", OptText),
        ("verified", Int),
        ("state", Text),
        ("blocked_by", Text),
        ("blocked_since", OptInt),
        ("blocked_seconds", Int),
        ("tasks_total", Int),
        ("tasks_done", Int),
        ("retained", Int),
        ("refusal_code", OptText),
        ("refusal_reason", OptText),
        ("refused_at", OptInt),
        ("completed_at", OptInt),
        ("residual_copies_purged_by", OptInt),
        ("confirmation_code", OptText),
        ("receipt_confirmed_at", OptInt),
        ("asked_policy", OptText),
        ("updated_at", Int),
        ("position", Int),
    ],
    key: &["request"],
    indexes: &[
        ("received", "received_at, request", None),
        (
            "code",
            "confirmation_code",
            Some("confirmation_code IS NOT NULL"),
        ),
        (
            "open",
            "due_at, request",
            Some("state IN ('awaiting-verification', 'in-progress', 'blocked')"),
        ),
        (
            "receipt_pending",
            "policy, received_at, request",
            Some("receipt_confirmed_at IS NULL"),
        ),
        (
            "receipt_pending_asked",
            "asked_policy, received_at, request",
            Some("receipt_confirmed_at IS NULL AND asked_policy IS NOT NULL"),
        ),
        ("scope", "scope", None),
    ],
    indexes_serve_writes: false,
    key_serves_writes: true,
};

pub(crate) const REQUEST_HOLDS: Table = Table {
    name: "rm_request_holds",
    columns: &[("hold", Text), ("request", Text)],
    key: &["hold", "request"],
    indexes: &[("request", "request, hold", None)],
    indexes_serve_writes: true,
    key_serves_writes: false,
};

pub(crate) const TASKS: Table = Table {
    name: "rm_tasks",
    columns: &[
        ("task", Text),
        ("request", Text),
        ("step", Text),
        ("target", Text),
        ("workspace", OptText),
        ("covered_by", Text),
        ("state", Text),
        ("lease_holder", OptText),
        ("lease_until", OptInt),
        ("attempts", Int),
        ("next_attempt_at", OptInt),
        ("last_error", OptText),
        ("released_at", Int),
        ("released_position", Int),
        ("completed_at", OptInt),
        ("completed_by", OptText),
        ("position", Int),
    ],
    key: &["task"],
    indexes: &[
        ("open", "released_position", Some("state <> 'completed'")),
        ("request", "request", None),
        ("target", "target", None),
    ],
    indexes_serve_writes: false,
    key_serves_writes: true,
};

pub(crate) const TASK_SCOPES: Table = Table {
    name: "rm_task_scopes",
    columns: &[("task", Text), ("scope", Text)],
    key: &["task", "scope"],
    indexes: &[("scope", "scope, task", None)],
    indexes_serve_writes: false,
    key_serves_writes: true,
};

/// The tables each projection owns, its main table first.
pub(crate) fn tables(name: ProjectionName) -> &'static [Table] {
    const AUDIT_TABLES: &[Table] = &[AUDIT];
    const RESOURCE_TABLES: &[Table] = &[RESOURCES, RESOURCE_SCOPES];
    const REQUEST_TABLES: &[Table] = &[REQUESTS, REQUEST_HOLDS];
    const HOLD_TABLES: &[Table] = &[HOLDS];
    const TASK_TABLES: &[Table] = &[TASKS, TASK_SCOPES];
    match name {
        ProjectionName::Audit => AUDIT_TABLES,
        ProjectionName::Resources => RESOURCE_TABLES,
        ProjectionName::Requests => REQUEST_TABLES,
        ProjectionName::Holds => HOLD_TABLES,
        ProjectionName::Tasks => TASK_TABLES,
    }
}

/// CREATE statements for one table under `suffix` with index names of
/// `generation`: the table, then its secondary indexes.
pub(crate) fn create(
    backend: Backend,
    table: &Table,
    suffix: &str,
    generation: i64,
) -> Vec<String> {
    let mut statements = vec![create_table(backend, table, suffix, generation, Key::Now)];
    statements.extend(create_indexes(table, suffix, generation));
    statements
}

/// Whether [`create_table`] makes the primary key with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Now,
    /// Added by [`add_primary_key`] (PostgreSQL only).
    Later,
}

/// The CREATE TABLE statement of one table under `suffix`, its primary
/// key named after `generation` unless `key` leaves it for later, without
/// its secondary indexes.
pub(crate) fn create_table(
    backend: Backend,
    table: &Table,
    suffix: &str,
    generation: i64,
    key: Key,
) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| {
            let ty = match (backend, kind) {
                (Backend::Sqlite, Int) => "INTEGER NOT NULL",
                (Backend::Sqlite, OptInt) => "INTEGER",
                (Backend::Postgres, Int) => "BIGINT NOT NULL",
                (Backend::Postgres, OptInt) => "BIGINT",
                (_, Text) => "TEXT NOT NULL",
                (_, OptText) => "TEXT",
            };
            format!("{name} {ty}")
        })
        .collect();
    let rowid = match backend {
        // Text and composite keys: the key is the table, no second b-tree.
        Backend::Sqlite if table.key != ["position"] => " WITHOUT ROWID",
        _ => "",
    };
    let key = match key {
        Key::Now => format!(", {}", primary_key(table, generation)),
        Key::Later => String::new(),
    };
    format!(
        "CREATE TABLE {}{suffix} ({}{key}){rowid}",
        table.name,
        columns.join(", ")
    )
}

fn primary_key(table: &Table, generation: i64) -> String {
    format!(
        "CONSTRAINT {}_g{generation}_pk PRIMARY KEY ({})",
        table.name,
        table.key.join(", ")
    )
}

/// The ALTER TABLE statement that adds the primary key [`create_table`]
/// left for later (PostgreSQL).
pub(crate) fn add_primary_key(table: &Table, suffix: &str, generation: i64) -> String {
    format!(
        "ALTER TABLE {}{suffix} ADD {}",
        table.name,
        primary_key(table, generation)
    )
}

/// The CREATE INDEX statements of one table's secondary indexes. A
/// rebuild runs them after filling its tables (unless the writes need
/// them, see [`Table::indexes_serve_writes`]): one sort per index costs
/// less than keeping every index in order row by row.
pub(crate) fn create_indexes(table: &Table, suffix: &str, generation: i64) -> Vec<String> {
    table
        .indexes
        .iter()
        .map(|(part, columns, condition)| {
            let mut sql = format!(
                "CREATE INDEX {}_g{generation}_{part} ON {}{suffix} ({columns})",
                table.name, table.name
            );
            if let Some(condition) = condition {
                sql.push_str(&format!(" WHERE {condition}"));
            }
            sql
        })
        .collect()
}

pub(crate) fn drop_if_exists(table: &Table, suffix: &str) -> String {
    format!("DROP TABLE IF EXISTS {}{suffix}", table.name)
}
