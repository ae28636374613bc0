//! `lethe verify`: re-walk the hash chain from the first event.

use std::collections::BTreeSet;

use commands::log::{verify_chain, ChainBreak, Position, RecordedEvent, StoreError, GENESIS_HASH};

use super::row::RawEvent;
use super::{Backend, Store};

/// Events read per page while verifying, so memory stays bounded however
/// long the log is.
pub const VERIFY_PAGE_EVENTS: usize = 1_000;

/// What an intact log looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of events, which is also the head position.
    pub events: u64,
    /// The hash of the last event (the genesis hash for an empty log).
    /// Writing it down elsewhere lets a later verify prove that the log
    /// was not truncated or rewritten wholesale.
    pub head_hash: [u8; 32],
    /// Forgets the log records whose second step is missing. Not a break
    /// of the chain, but a promise not yet kept.
    pub unfinished_forgets: UnfinishedForgets,
}

/// `SubjectForgotten` events whose subject has no tombstone in the key
/// table: its key is live (its values still read), or, for a subject
/// that never had a key, values sealed for it later would get one. The
/// process stopped between the event and the key table, or the key table
/// failed. `lethe forget --due` finishes them; `lethe serve` does in its
/// hourly sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnfinishedForgets {
    pub count: u64,
    /// The position of the first of them.
    pub first: Option<Position>,
}

/// The unfinished forgets up to `head`: one scan of the log's
/// `SubjectForgotten` events against the key table, which lives in the
/// same database (a forget's stream is `subject-` and the key's owner).
async fn unfinished_forgets(
    backend: &Backend,
    head: Position,
) -> Result<UnfinishedForgets, StoreError> {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT), MIN(e.position) FROM events e \
         WHERE e.event_type = 'SubjectForgotten' AND e.position <= $1 \
         AND NOT {}",
        crate::keys::tombstone_for_forget("e.stream")
    );
    let head = i64::try_from(head).unwrap_or(i64::MAX);
    let unavailable =
        |e: sqlx::Error| StoreError::Unavailable(format!("checking the recorded forgets: {e}"));
    let (count, first): (i64, Option<i64>) = match backend {
        Backend::Sqlite(pool) => sqlx::query_as(&sql).bind(head).fetch_one(pool).await,
        Backend::Postgres(pool) => sqlx::query_as(&sql).bind(head).fetch_one(pool).await,
    }
    .map_err(unavailable)?;
    Ok(UnfinishedForgets {
        count: u64::try_from(count).unwrap_or(0),
        first: first.and_then(|p| Position::try_from(p).ok()),
    })
}

/// Why verify did not say "intact".
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log was altered: an event was changed, removed or moved, or an
    /// index disagrees with the events. Nothing is repaired; an operator
    /// compares the named position with backups.
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    /// The store could not be read. Retry when it is reachable; this says
    /// nothing about the log's integrity.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows the walk from position 1 does not meet, and what they would do
/// if left alone: an event below position 1 (a stream read would serve
/// it to decisions), a tag index row with no event (a conditional append
/// would fail on it for good), an idempotency key that does not describe an append of the log (a
/// retried append would be answered with positions that are not its
/// own; named by the key's first position). Events
/// appended while verify runs lie past the head it walked to, so nothing
/// an append makes is looked for: an append writes an event, its tag
/// rows and the log's head in one transaction.
async fn strays(backend: &Backend) -> Result<Option<ChainBreak>, StoreError> {
    const BELOW_ONE: &str = "SELECT MIN(position) FROM events WHERE position < 1";
    const TAG_WITHOUT_EVENT: &str = "SELECT MIN(t.position) FROM event_tags t \
         LEFT JOIN events e ON e.position = t.position WHERE e.position IS NULL";
    const KEY_WITHOUT_APPEND: &str = "SELECT MIN(k.first_position) FROM idempotency_keys k \
         LEFT JOIN events e ON e.position = k.last_position \
         WHERE e.position IS NULL OR e.append_first <> k.first_position \
         OR e.append_last <> k.last_position OR e.stream_version <> k.stream_version";
    macro_rules! first {
        ($pool:expr, $sql:expr) => {{
            sqlx::query_scalar::<_, Option<i64>>($sql)
                .fetch_one($pool)
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!("verifying the rows outside the chain: {e}"))
                })?
        }};
    }
    let found = match backend {
        Backend::Sqlite(pool) => [
            first!(pool, BELOW_ONE),
            first!(pool, TAG_WITHOUT_EVENT),
            first!(pool, KEY_WITHOUT_APPEND),
        ],
        Backend::Postgres(pool) => [
            first!(pool, BELOW_ONE),
            first!(pool, TAG_WITHOUT_EVENT),
            first!(pool, KEY_WITHOUT_APPEND),
        ],
    };
    let reasons = [
        "an event is stored at a position below 1",
        "the tag index has a row with no event",
        "an idempotency key names an append the log does not hold",
    ];
    Ok(found
        .into_iter()
        .zip(reasons)
        .find_map(|(position, reason)| {
            position.map(|position| ChainBreak {
                position: Position::try_from(position).unwrap_or(0),
                reason: reason.to_owned(),
            })
        }))
}

/// The first (position, tag) of `expected` that the tag index lacks.
async fn missing_tag_row(
    backend: &Backend,
    expected: &[(Position, &str)],
) -> Result<Option<(i64, String)>, StoreError> {
    match backend {
        Backend::Sqlite(pool) => super::sqlite::missing_tag_row(pool, expected).await,
        Backend::Postgres(pool) => super::postgres::missing_tag_row(pool, expected).await,
    }
}

/// The first tag index row up to `until` that its event does not carry.
async fn foreign_tag_row(
    backend: &Backend,
    until: Position,
) -> Result<Option<(i64, String)>, StoreError> {
    match backend {
        Backend::Sqlite(pool) => super::sqlite::foreign_tag_row(pool, until).await,
        Backend::Postgres(pool) => super::postgres::foreign_tag_row(pool, until).await,
    }
}

fn tag_disagreement((position, tag): (i64, String)) -> ChainBreak {
    ChainBreak {
        position: Position::try_from(position).unwrap_or(0),
        reason: format!("the tag index disagrees with the event about tag {tag}"),
    }
}

/// The stored event expected at `next`, decoded and checked against the
/// hash before it; with the hash and position the walk moves on to.
fn link(
    raw: RawEvent,
    previous: [u8; 32],
    next: Position,
) -> Result<(RecordedEvent, ([u8; 32], Position)), ChainBreak> {
    if raw.position() != next {
        return Err(ChainBreak {
            position: next,
            reason: format!("found position {} instead", raw.position()),
        });
    }
    let event = raw.decode().map_err(|reason| ChainBreak {
        position: next,
        reason,
    })?;
    let moved = verify_chain(std::iter::once(&event), previous, next)?;
    Ok((event, moved))
}

/// The walk's first break, or an earlier tag index row that no event
/// carries: the first bad position either way.
async fn first_break(backend: &Backend, found: ChainBreak) -> Result<ChainBreak, StoreError> {
    if found.position <= 1 {
        return Ok(found);
    }
    Ok(match foreign_tag_row(backend, found.position - 1).await? {
        Some(row) => tag_disagreement(row),
        None => found,
    })
}

/// Walks the whole chain in pages of [`VERIFY_PAGE_EVENTS`]. Besides the
/// hashes, it checks that every stored text column is exactly what was
/// hashed, that the tag index matches the events (the append condition
/// relies on it) and that the head the log records is its last stored
/// event (which catches a truncated tail).
///
/// The tag index is checked in two halves, so that the time stays linear
/// in the log's length: each page's tags are looked up by the index's own
/// key, and at the end one count says whether the index holds any row
/// besides them. Only if it does, or the walk finds a break or a missing
/// row, is the index read whole: one pass against the events' stored
/// tags names the first row no event carries, if it comes first.
pub async fn verify(store: &Store) -> Result<VerifyReport, VerifyError> {
    verify_with_progress(store, |_| {}).await
}

/// [`verify`], calling `progress` with the last position walked after
/// every page, so that a long walk can be followed.
pub async fn verify_with_progress(
    store: &Store,
    mut progress: impl FnMut(Position),
) -> Result<VerifyReport, VerifyError> {
    let backend = &store.backend;
    let mut previous = GENESIS_HASH;
    let mut next: Position = 1;
    let mut tag_rows: u64 = 0;
    loop {
        let page = backend.raw_page(next - 1, VERIFY_PAGE_EVENTS).await?;
        if page.is_empty() {
            break;
        }
        let mut events = Vec::with_capacity(page.len());
        let mut broken = None;
        for raw in page {
            match link(raw, previous, next) {
                Ok((event, moved)) => {
                    (previous, next) = moved;
                    events.push(event);
                }
                Err(chain_break) => {
                    broken = Some(chain_break);
                    break;
                }
            }
        }
        let expected: BTreeSet<(Position, &str)> = events
            .iter()
            .flat_map(|event| event.tags.iter().map(|tag| (event.position, tag.as_str())))
            .collect();
        tag_rows += expected.len() as u64;
        let expected: Vec<_> = expected.into_iter().collect();
        if let Some(row) = missing_tag_row(backend, &expected).await? {
            return Err(first_break(backend, tag_disagreement(row)).await?.into());
        }
        if let Some(found) = broken {
            return Err(first_break(backend, found).await?.into());
        }
        progress(next - 1);
    }
    let walked = next - 1;
    let stored_rows = match backend {
        Backend::Sqlite(pool) => super::sqlite::tag_row_count(pool, walked).await?,
        Backend::Postgres(pool) => super::postgres::tag_row_count(pool, walked).await?,
    };
    if stored_rows != tag_rows {
        let found = foreign_tag_row(backend, walked).await?;
        return Err(match found {
            Some(row) => tag_disagreement(row),
            // Every tag of every event is in the index and no row lacks
            // its event's tag, yet the counts differ: the two tables of
            // SQLite's index, or the stored tags, say more than the walk.
            None => ChainBreak {
                position: walked,
                reason: format!(
                    "the tag index holds {stored_rows} rows up to here for {tag_rows} tags of \
                     the events"
                ),
            },
        }
        .into());
    }
    if let Some(chain_break) = strays(&store.backend).await? {
        return Err(chain_break.into());
    }
    let (recorded, stored) = match &store.backend {
        Backend::Sqlite(pool) => super::sqlite::recorded_head(pool).await?,
        Backend::Postgres(pool) => super::postgres::recorded_head(pool).await?,
    };
    if recorded != Some(stored) {
        let (position, reason) = match recorded {
            None => (next, "the log's head record is missing".to_owned()),
            Some(recorded) if recorded > stored => (
                next,
                format!(
                    "the log records its head at {recorded} but its last stored event is at \
                     {stored}: events are missing at the end of the log"
                ),
            ),
            // The first event past the record.
            Some(recorded) => (
                Position::try_from(recorded + 1).unwrap_or(0),
                format!(
                    "the log records its head at {recorded} but stores events up to {stored}: \
                     events were added without an append"
                ),
            ),
        };
        return Err(ChainBreak { position, reason }.into());
    }
    Ok(VerifyReport {
        events: next - 1,
        head_hash: previous,
        unfinished_forgets: unfinished_forgets(&store.backend, next - 1).await?,
    })
}
