//! Streaming exports of the audit trail as CSV or JSON Lines: a cursor
//! that reads one keyset page at a time, so an export of any size holds
//! one page in memory.

use std::collections::BTreeSet;

use commands::log::rfc3339_micros;
use projections::csv::{json_line, record};
use projections::rows::AuditEntry;
use projections::ReadModelError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::query::AuditQuery;
use super::ReadModels;

/// Entries read per page of an export.
pub const EXPORT_PAGE_ROWS: usize = 1_000;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

const CSV_HEADER: &[&str] = &[
    "position",
    "occurred_at",
    "recorded_at",
    "actor",
    "event_type",
    "summary",
    "reason",
    "subjects",
    "event_id",
    "stream",
    "source_channel",
    "correlation_id",
    "causation_id",
];

fn csv_cells(e: &AuditEntry) -> Vec<String> {
    vec![
        e.position.to_string(),
        rfc3339_micros(e.occurred_at),
        rfc3339_micros(e.recorded_at),
        e.actor.clone(),
        e.event_type.clone(),
        e.summary.clone(),
        e.reason.clone().unwrap_or_default(),
        e.subjects.join(" "),
        e.event_id.to_string(),
        e.stream.clone(),
        e.source_channel.clone().unwrap_or_default(),
        e.correlation_id.map(|u| u.to_string()).unwrap_or_default(),
        e.causation_id.map(|u| u.to_string()).unwrap_or_default(),
    ]
}

/// A pull cursor over an audit export: each [`AuditExport::next_chunk`]
/// returns the bytes of one page (the CSV header comes with the first),
/// `None` at the end. The HTTP layer turns it into a streamed body.
#[derive(Debug)]
pub struct AuditExport {
    models: ReadModels,
    query: AuditQuery,
    format: ExportFormat,
    started: bool,
    done: bool,
    rows: u64,
}

impl AuditExport {
    /// Entries exported so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next page as bytes, or `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ReadModelError> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            if self.format == ExportFormat::Csv {
                out.push_str(&record(CSV_HEADER));
            }
        }
        let page = self.models.audit(&self.query).await?;
        for entry in &page.entries {
            match self.format {
                ExportFormat::Csv => out.push_str(&record(&csv_cells(entry))),
                ExportFormat::JsonLines => out.push_str(&json_line(entry)),
            }
        }
        self.rows += page.entries.len() as u64;
        match page.next_after {
            Some(after) => self.query.after = after,
            None => self.done = true,
        }
        Ok(Some(out.into_bytes()))
    }

    /// Writes the whole export to `out`, one page at a time.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        mut self,
        out: &mut W,
    ) -> Result<u64, ReadModelError> {
        while let Some(chunk) = self.next_chunk().await? {
            out.write_all(&chunk)
                .await
                .map_err(|e| ReadModelError::Unavailable(format!("writing the export: {e}")))?;
        }
        out.flush()
            .await
            .map_err(|e| ReadModelError::Unavailable(format!("writing the export: {e}")))?;
        Ok(self.rows)
    }
}

impl ReadModels {
    /// An export of the audit entries `query` selects (its `limit` is
    /// ignored: pages of [`EXPORT_PAGE_ROWS`]).
    pub fn export_audit(&self, query: AuditQuery, format: ExportFormat) -> AuditExport {
        AuditExport {
            models: self.clone(),
            query: AuditQuery {
                limit: EXPORT_PAGE_ROWS,
                ..query
            },
            format,
            started: false,
            done: false,
            rows: 0,
        }
    }

    /// Every row of every read model, for tests and `lethe projections
    /// dump`: compare an incremental run with a rebuild. Holds the whole
    /// dump in memory.
    pub async fn dump(&self) -> Result<projections::dump::ReadModelDump, ReadModelError> {
        use super::codec;
        let mut conn = self.conn().await?;
        let mut exec = conn.exec();
        let audit = exec
            .fetch_all("SELECT * FROM rm_audit ORDER BY position", vec![])
            .await?
            .iter()
            .map(codec::audit_from)
            .collect::<Result<Vec<_>, _>>()?;
        // An entry's subjects must be those under which the audit lookup
        // finds it: the subject tags the log's tag index holds for it.
        let indexed: BTreeSet<(i64, String)> = exec
            .fetch_all(
                "SELECT t.position AS position, t.tag AS tag \
                 FROM event_tags t JOIN rm_audit a ON a.position = t.position",
                vec![],
            )
            .await?
            .iter()
            .map(|row| Ok((row.int("position")?, row.text("tag")?)))
            .collect::<Result<Vec<_>, ReadModelError>>()?
            .into_iter()
            .filter(|(_, tag)| projections::audit::is_subject(tag))
            .collect();
        let named: BTreeSet<(i64, String)> = audit
            .iter()
            .flat_map(|e| {
                let position = super::db::int(e.position);
                e.subjects.iter().map(move |s| (position, s.clone()))
            })
            .collect();
        if let Some((position, subject)) = indexed.symmetric_difference(&named).next() {
            return Err(ReadModelError::Corrupt(format!(
                "the audit entry at position {position} and the log's tag index disagree \
                 about subject {subject}"
            )));
        }
        let resources = exec
            .fetch_all("SELECT * FROM rm_resources ORDER BY subject", vec![])
            .await?
            .iter()
            .map(codec::resource_from)
            .collect::<Result<Vec<_>, _>>()?;
        let requests = exec
            .fetch_all("SELECT * FROM rm_requests ORDER BY request", vec![])
            .await?
            .iter()
            .map(codec::request_from)
            .collect::<Result<Vec<_>, _>>()?;
        let holds = exec
            .fetch_all("SELECT * FROM rm_holds ORDER BY hold", vec![])
            .await?
            .iter()
            .map(codec::hold_from)
            .collect::<Result<Vec<_>, _>>()?;
        let tasks = exec
            .fetch_all("SELECT * FROM rm_tasks ORDER BY task", vec![])
            .await?
            .iter()
            .map(codec::task_from)
            .collect::<Result<Vec<_>, _>>()?;
        for (table, key, list_len) in [
            (
                "rm_resource_scopes",
                "subject",
                resources.iter().map(|r| r.scopes.len()).sum::<usize>(),
            ),
            (
                "rm_task_scopes",
                "task",
                tasks.iter().map(|t| t.covered_by.len()).sum::<usize>(),
            ),
            (
                "rm_request_holds",
                "request",
                requests.iter().map(|q| q.blocked_by.len()).sum::<usize>(),
            ),
        ] {
            let n = exec
                .fetch_optional(&format!("SELECT COUNT({key}) AS n FROM {table}"), vec![])
                .await?
                .map(|r| r.int("n"))
                .transpose()?
                .unwrap_or(0);
            if usize::try_from(n).ok() != Some(list_len) {
                return Err(ReadModelError::Corrupt(format!(
                    "{table} has {n} rows, the rows list {list_len}"
                )));
            }
        }
        Ok(projections::dump::ReadModelDump {
            audit,
            resources,
            requests,
            holds,
            tasks,
        }
        .sorted())
    }
}
