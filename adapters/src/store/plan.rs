//! The decisions of one group-commit batch, kept free of SQL so that both
//! backends decide exactly alike.
//!
//! The writer reads, inside its transaction and under the cross-process
//! lock, everything the batch's requests could conflict with (see
//! [`Wanted`]), then [`plan`] walks the requests in arrival order as if
//! each were appended alone: a request sees the events accepted before it
//! in the same batch. A request that fails gets its own error and takes no
//! position, so the others still commit gap-free.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use commands::log::{
    chain_hash, stored_bytes_of, truncate_micros, AppendRequest, Appended, ExpectedVersion,
    Position, StoreError, StoredHeader, Tag,
};
use uuid::Uuid;

/// What the writer must look up before it can decide a batch.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    pub idempotency_keys: Vec<String>,
    pub event_ids: Vec<Uuid>,
    pub streams: Vec<String>,
    pub tags: Vec<String>,
}

impl Wanted {
    pub(crate) fn of(batch: &[&AppendRequest]) -> Self {
        let mut keys = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut streams = BTreeSet::new();
        let mut tags = BTreeSet::new();
        for request in batch {
            if let Some(key) = &request.idempotency_key {
                keys.insert(key.clone());
            }
            ids.extend(request.events.iter().map(|event| event.event_id));
            streams.insert(request.stream.as_str().to_owned());
            if let Some(condition) = &request.condition {
                tags.extend(condition.tags.iter().map(|tag| tag.as_str().to_owned()));
            }
        }
        Self {
            idempotency_keys: keys.into_iter().collect(),
            event_ids: ids.into_iter().collect(),
            streams: streams.into_iter().collect(),
            tags: tags.into_iter().collect(),
        }
    }
}

/// The committed state that the batch's requests are checked against.
#[derive(Debug)]
pub(crate) struct Lookups {
    pub head: Position,
    pub head_hash: [u8; 32],
    /// True when the maps below were read for everything [`Wanted`] names,
    /// so an absent entry means "does not exist". False when they hold
    /// only what the writer remembers ([`Memory`]): the plan then assumes
    /// the rest as the requests expect it, lists the assumptions in
    /// [`Plan::assumed`], and the insert must check them.
    pub complete: bool,
    /// Earlier appends by idempotency key.
    pub idempotency_keys: HashMap<String, Appended>,
    /// Earlier appends by the id of any of their events.
    pub event_ids: HashMap<Uuid, Appended>,
    /// Current version of each stream (absent: the stream does not exist).
    pub streams: HashMap<String, u64>,
    /// Highest position carrying each tag (absent: no event has it).
    pub tag_max: HashMap<String, Position>,
}

/// The columns of one planned event, borrowed from its request.
#[derive(Debug)]
pub(crate) struct PlannedEvent<'a> {
    /// Every column but the texts and the hash.
    pub header: StoredHeader<'a>,
    pub tags: &'a [Tag],
    pub hash: [u8; 32],
}

/// One event ready to be inserted, with its payload, metadata and tags
/// already in the exact text that is stored and hashed (serialised once).
#[derive(Debug)]
pub(crate) struct Row<'a> {
    pub event: PlannedEvent<'a>,
    pub payload: String,
    pub metadata: String,
    pub tags: String,
    pub append_first: Position,
    pub append_last: Position,
}

/// What happened to one request of the batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done(Result<Appended, StoreError>),
    /// An already committed event carries one of `tags` after `after`.
    /// Which one is looked up only on this (rare) path, so that the
    /// common path needs no per-request queries.
    CommittedConflict {
        tags: Vec<Tag>,
        after: Position,
    },
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub outcomes: Vec<Outcome>,
    pub rows: Vec<Row<'a>>,
    /// (tag, position), each tag once per event.
    pub tag_rows: Vec<(String, Position)>,
    /// Final version of every stream the batch wrote to.
    pub streams: Vec<(String, u64)>,
    pub idempotency_keys: Vec<(String, Appended)>,
    /// The head after the batch commits, and its hash.
    pub head: Position,
    pub head_hash: [u8; 32],
    /// What the plan took for granted without looking (only when the
    /// lookups were not complete).
    pub assumed: Assumed,
    /// A request was refused (its stream's version, or a condition that
    /// an event earlier in the batch fails) on lookups that were not
    /// complete. Those do not hold earlier idempotency keys and event
    /// ids, and the unique keys that check them see only inserted rows:
    /// the retry of a committed append would be refused instead of
    /// answered with its first result. Decide such a batch afresh on
    /// complete lookups.
    pub refused_on_memory: bool,
}

/// The committed state a plan assumed: it holds only if, when the insert
/// runs, every stream is at the listed version (0: absent) and no event
/// carries a listed tag after the listed position. Idempotency keys and
/// event ids are assumed new; the unique keys of the tables check those
/// for the requests that are inserted, and [`Plan::refused_on_memory`]
/// covers the others.
#[derive(Debug, Default)]
pub(crate) struct Assumed {
    pub streams: Vec<(String, u64)>,
    pub free_tags: Vec<(String, Position)>,
}

/// Most stream versions the writer remembers between batches.
const REMEMBERED_STREAMS_MAX: usize = 16_384;

/// What the writer knows of the log from its own appends, so that a
/// batch can be planned without a lookup round trip: the state after its
/// last commit, or after the batch it is storing now, counted as stored
/// when it was decided (the writer's pipeline).
///
/// It is exact only while no other process has appended since, and while
/// the batch in flight is stored: every insert planned from it checks
/// that the head is still the one it was planned on (and the plan's
/// [`Assumed`] state); a writer that finds otherwise, or whose batch in
/// flight failed, calls [`Memory::forget`], drops the batch it decided
/// after that one, and decides both afresh from lookups.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    head: Option<(Position, [u8; 32])>,
    /// Versions of the streams this writer appended to.
    streams: HashMap<String, u64>,
}

impl Memory {
    /// The lookups for `batch` from memory alone, or `None` when memory
    /// cannot stand in for them: the head is unknown, or a request takes
    /// any version of a stream whose version is not remembered. Memory is
    /// then dropped: the batch is decided on looked-up state, which may
    /// hold another process's appends that memory never saw, and only the
    /// state after that commit is remembered.
    pub(crate) fn lookups(&mut self, batch: &[&AppendRequest]) -> Option<Lookups> {
        let Some((head, head_hash)) = self.head else {
            self.forget();
            return None;
        };
        let mut streams = HashMap::new();
        for request in batch {
            let stream = request.stream.as_str();
            match self.streams.get(stream) {
                Some(version) => {
                    streams.insert(stream.to_owned(), *version);
                }
                None if request.expected == ExpectedVersion::Any => {
                    self.forget();
                    return None;
                }
                None => {}
            }
        }
        Some(Lookups {
            head,
            head_hash,
            complete: false,
            idempotency_keys: HashMap::new(),
            event_ids: HashMap::new(),
            streams,
            tag_max: HashMap::new(),
        })
    }

    /// Remembers the state after `plan` is stored: once it committed, or
    /// as soon as it is decided on memory (the writer forgets it all if
    /// it is not stored after all).
    pub(crate) fn committed(&mut self, plan: &Plan<'_>) {
        self.head = Some((plan.head, plan.head_hash));
        if self.streams.len() + plan.streams.len() > REMEMBERED_STREAMS_MAX {
            self.streams.clear();
        }
        for (stream, version) in &plan.streams {
            self.streams.insert(stream.clone(), *version);
        }
    }

    /// Drops everything: another process may have appended.
    pub(crate) fn forget(&mut self) {
        self.head = None;
        self.streams.clear();
    }
}

/// Decides every request of a batch against `lookups`.
pub(crate) fn plan<'a>(
    batch: &[&'a AppendRequest],
    lookups: Lookups,
    recorded_at: DateTime<Utc>,
) -> Plan<'a> {
    let Lookups {
        head,
        head_hash,
        complete,
        mut idempotency_keys,
        mut event_ids,
        mut streams,
        tag_max,
    } = lookups;
    let recorded_at = truncate_micros(recorded_at);
    let mut previous = head_hash;
    let mut next_position = head + 1;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut rows: Vec<Row<'a>> = Vec::new();
    let mut tag_rows = Vec::new();
    let mut written_streams: HashMap<String, u64> = HashMap::new();
    let mut new_keys = Vec::new();
    // Highest position per tag among the events accepted in this batch.
    let mut batch_tag_max: HashMap<String, Position> = HashMap::new();
    let mut assumed = Assumed::default();
    let mut refused_on_memory = false;

    for request in batch {
        if let Some(first) = request
            .idempotency_key
            .as_ref()
            .and_then(|key| idempotency_keys.get(key))
        {
            outcomes.push(Outcome::Done(Ok(deduplicated(first))));
            continue;
        }
        if let Some(first) = event_ids.get(&request.events[0].event_id) {
            outcomes.push(Outcome::Done(Ok(deduplicated(first))));
            continue;
        }
        // A later event id that is already stored is not a retry (the
        // first one would match) but a caller bug; storing it would break
        // the uniqueness of event ids.
        if let Some(event) = request
            .events
            .iter()
            .find(|e| event_ids.contains_key(&e.event_id))
        {
            outcomes.push(Outcome::Done(Err(StoreError::InvalidEvent(format!(
                "event id {} is already stored by another append",
                event.event_id
            )))));
            continue;
        }
        let actual = match streams.get(request.stream.as_str()) {
            Some(version) => *version,
            None if complete => 0,
            None => {
                // Not looked up: assume the version the request expects
                // (`Memory::lookups` never lets `Any` get here).
                let version = match request.expected {
                    ExpectedVersion::NoStream | ExpectedVersion::Any => 0,
                    ExpectedVersion::Exact(version) => version,
                };
                let stream = request.stream.as_str().to_owned();
                assumed.streams.push((stream.clone(), version));
                streams.insert(stream, version);
                version
            }
        };
        let version_ok = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(expected) => actual == expected,
        };
        if !version_ok {
            refused_on_memory |= !complete;
            outcomes.push(Outcome::Done(Err(StoreError::WrongExpectedVersion {
                stream: request.stream.clone(),
                expected: request.expected,
                actual,
            })));
            continue;
        }
        if let Some(condition) = &request.condition {
            let committed = condition.tags.iter().any(|tag| {
                tag_max
                    .get(tag.as_str())
                    .is_some_and(|max| *max > condition.after)
            });
            if committed {
                outcomes.push(Outcome::CommittedConflict {
                    tags: condition.tags.clone(),
                    after: condition.after,
                });
                continue;
            }
            if !complete {
                assumed.free_tags.extend(
                    condition
                        .tags
                        .iter()
                        .map(|tag| (tag.as_str().to_owned(), condition.after)),
                );
            }
            let in_batch = condition.tags.iter().any(|tag| {
                batch_tag_max
                    .get(tag.as_str())
                    .is_some_and(|max| *max > condition.after)
            });
            if in_batch {
                let wanted: HashSet<&Tag> = condition.tags.iter().collect();
                let conflict = rows
                    .iter()
                    .filter(|row| row.event.header.position > condition.after)
                    .find_map(|row| {
                        let tag = row.event.tags.iter().find(|tag| wanted.contains(tag))?;
                        Some(StoreError::ConditionFailed {
                            tag: (*tag).clone(),
                            position: row.event.header.position,
                        })
                    });
                if let Some(error) = conflict {
                    refused_on_memory |= !complete;
                    outcomes.push(Outcome::Done(Err(error)));
                    continue;
                }
            }
        }

        // Serialise first, so that a request that cannot be stored takes
        // no position.
        let mut texts = Vec::with_capacity(request.events.len());
        let mut serialisation_error = None;
        for new in &request.events {
            match (
                serde_json::to_string(&new.payload),
                serde_json::to_string(&new.metadata),
                serde_json::to_string(&new.tags),
            ) {
                (Ok(payload), Ok(metadata), Ok(tags)) => texts.push((payload, metadata, tags)),
                _ => {
                    serialisation_error = Some(StoreError::InvalidEvent(format!(
                        "event {} cannot be serialised",
                        new.event_id
                    )));
                    break;
                }
            }
        }
        if let Some(error) = serialisation_error {
            outcomes.push(Outcome::Done(Err(error)));
            continue;
        }

        let first_position = next_position;
        let last_position = next_position + request.events.len() as Position - 1;
        let mut version = actual;
        for (new, (payload, metadata, tags)) in request.events.iter().zip(texts) {
            version += 1;
            let header = StoredHeader {
                position: next_position,
                stream: request.stream.as_str(),
                stream_version: version,
                event_id: new.event_id,
                event_type: &new.event_type,
                schema_version: new.schema_version,
                occurred_at: truncate_micros(new.occurred_at),
                recorded_at,
            };
            let hash = chain_hash(
                &previous,
                &stored_bytes_of(&header, &payload, &metadata, &tags),
            );
            previous = hash;
            let event = PlannedEvent {
                header,
                tags: &new.tags,
                hash,
            };
            let mut seen = HashSet::new();
            for tag in &new.tags {
                if seen.insert(tag.as_str()) {
                    tag_rows.push((tag.as_str().to_owned(), next_position));
                    batch_tag_max.insert(tag.as_str().to_owned(), next_position);
                }
            }
            rows.push(Row {
                event,
                payload,
                metadata,
                tags,
                append_first: first_position,
                append_last: last_position,
            });
            next_position += 1;
        }
        let appended = Appended {
            first_position,
            last_position,
            stream_version: version,
            deduplicated: false,
        };
        streams.insert(request.stream.as_str().to_owned(), version);
        written_streams.insert(request.stream.as_str().to_owned(), version);
        for new in &request.events {
            event_ids.insert(new.event_id, appended.clone());
        }
        if let Some(key) = &request.idempotency_key {
            idempotency_keys.insert(key.clone(), appended.clone());
            new_keys.push((key.clone(), appended.clone()));
        }
        outcomes.push(Outcome::Done(Ok(appended)));
    }

    let mut streams: Vec<(String, u64)> = written_streams.into_iter().collect();
    streams.sort();
    Plan {
        outcomes,
        head: next_position - 1,
        head_hash: previous,
        assumed,
        refused_on_memory,
        rows,
        tag_rows,
        streams,
        idempotency_keys: new_keys,
    }
}

fn deduplicated(first: &Appended) -> Appended {
    Appended {
        deduplicated: true,
        ..first.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::log::{Metadata, NewEvent, StreamId, GENESIS_HASH};

    fn request(stream: &str, expected: ExpectedVersion, key: Option<&str>) -> AppendRequest {
        AppendRequest {
            stream: StreamId::new(stream),
            expected,
            condition: None,
            idempotency_key: key.map(str::to_owned),
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "Noted".into(),
                schema_version: 1,
                occurred_at: Utc::now(),
                payload: serde_json::json!({}),
                metadata: Metadata::default(),
                tags: vec![Tag::new("t")],
            }],
        }
    }

    fn looked_up(idempotency_keys: HashMap<String, Appended>) -> Lookups {
        Lookups {
            head: 0,
            head_hash: GENESIS_HASH,
            complete: true,
            idempotency_keys,
            event_ids: HashMap::new(),
            streams: HashMap::new(),
            tag_max: HashMap::new(),
        }
    }

    /// A retry of a committed append, in a batch with a new append:
    /// memory knows the stream's version but not the key, so the refusal
    /// it would give is marked, and complete lookups answer the retry
    /// with its first result.
    #[test]
    fn a_refusal_decided_on_memory_is_marked() {
        let first = request("s", ExpectedVersion::NoStream, Some("k"));
        let committed = plan(&[&first], looked_up(HashMap::new()), Utc::now());
        assert!(!committed.refused_on_memory);
        let Outcome::Done(Ok(appended)) = &committed.outcomes[0] else {
            panic!("the first append is stored");
        };
        let appended = appended.clone();
        let mut memory = Memory::default();
        memory.committed(&committed);

        let other = request("other", ExpectedVersion::NoStream, None);
        let batch = [&first, &other];
        let lookups = memory.lookups(&batch).expect("memory stands in");
        let on_memory = plan(&batch, lookups, Utc::now());
        assert!(on_memory.refused_on_memory);
        assert!(matches!(
            on_memory.outcomes[0],
            Outcome::Done(Err(StoreError::WrongExpectedVersion { .. }))
        ));

        let keys = HashMap::from([("k".to_owned(), appended.clone())]);
        let on_lookups = plan(&batch, looked_up(keys), Utc::now());
        assert!(!on_lookups.refused_on_memory);
        let Outcome::Done(Ok(again)) = &on_lookups.outcomes[0] else {
            panic!("the retry gets its first result");
        };
        assert!(again.deduplicated);
        assert_eq!(again.first_position, appended.first_position);
    }
}
