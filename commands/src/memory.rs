//! An [`EventStore`] held in memory: the reference behaviour of the port,
//! used by the domain and command tests and by the conformance suite.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;

use crate::log::{
    chain_hash, stored_bytes, truncate_micros, validate_append, AppendRequest, Appended,
    EventStore, ExpectedVersion, Position, RecordedEvent, StoreError, StreamId, Tag, GENESIS_HASH,
    READ_EVENTS_MAX,
};

/// A process-local event log. Appends are serialised by one mutex, which
/// gives the same guarantees as the database backends: gap-free positions
/// in commit order and an intact hash chain.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    head: watch::Sender<Position>,
}

#[derive(Debug, Default)]
struct State {
    events: Vec<RecordedEvent>,
    stream_versions: HashMap<StreamId, u64>,
    by_event_id: HashMap<uuid::Uuid, Appended>,
    by_idempotency_key: HashMap<String, Appended>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let (head, _) = watch::channel(0);
        Self {
            state: Mutex::new(State::default()),
            head,
        }
    }

    /// Every stored event, in position order.
    pub fn all_events(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half
        // written (appends push only after every check), so poison is moot.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        validate_append(&request)?;
        let mut state = self.lock();
        if let Some(key) = &request.idempotency_key {
            if let Some(first) = state.by_idempotency_key.get(key) {
                return Ok(Appended {
                    deduplicated: true,
                    ..first.clone()
                });
            }
        }
        if let Some(first) = state.by_event_id.get(&request.events[0].event_id) {
            return Ok(Appended {
                deduplicated: true,
                ..first.clone()
            });
        }
        // A later event id that is already stored is not a retry (the first
        // one would match) but a caller bug: event ids stay unique.
        if let Some(event) = request
            .events
            .iter()
            .find(|event| state.by_event_id.contains_key(&event.event_id))
        {
            return Err(StoreError::InvalidEvent(format!(
                "event id {} is already stored by another append",
                event.event_id
            )));
        }
        let actual = state
            .stream_versions
            .get(&request.stream)
            .copied()
            .unwrap_or(0);
        let version_ok = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(expected) => actual == expected,
        };
        if !version_ok {
            return Err(StoreError::WrongExpectedVersion {
                stream: request.stream,
                expected: request.expected,
                actual,
            });
        }
        if let Some(condition) = &request.condition {
            let wanted: BTreeSet<&Tag> = condition.tags.iter().collect();
            let start = usize::try_from(condition.after).unwrap_or(usize::MAX);
            for event in state.events.iter().skip(start) {
                if let Some(tag) = event.tags.iter().find(|tag| wanted.contains(tag)) {
                    return Err(StoreError::ConditionFailed {
                        tag: tag.clone(),
                        position: event.position,
                    });
                }
            }
        }
        let recorded_at = truncate_micros(Utc::now());
        let first_position = state.events.len() as Position + 1;
        let mut previous = state.events.last().map_or(GENESIS_HASH, |event| event.hash);
        let mut version = actual;
        for new in &request.events {
            version += 1;
            let mut event = RecordedEvent {
                position: state.events.len() as Position + 1,
                stream: request.stream.clone(),
                stream_version: version,
                event_id: new.event_id,
                event_type: new.event_type.clone(),
                schema_version: new.schema_version,
                occurred_at: truncate_micros(new.occurred_at),
                recorded_at,
                payload: new.payload.clone(),
                metadata: new.metadata.clone(),
                tags: new.tags.clone(),
                hash: [0; 32],
            };
            event.hash = chain_hash(&previous, &stored_bytes(&event));
            previous = event.hash;
            state.events.push(event);
        }
        let appended = Appended {
            first_position,
            last_position: state.events.len() as Position,
            stream_version: version,
            deduplicated: false,
        };
        state
            .stream_versions
            .insert(request.stream.clone(), version);
        for new in &request.events {
            state.by_event_id.insert(new.event_id, appended.clone());
        }
        if let Some(key) = request.idempotency_key {
            state.by_idempotency_key.insert(key, appended.clone());
        }
        let head = appended.last_position;
        drop(state);
        self.head.send_replace(head);
        Ok(appended)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.lock();
        Ok(state
            .events
            .iter()
            .filter(|event| &event.stream == stream && event.stream_version > after_version)
            .take(limit.min(READ_EVENTS_MAX))
            .cloned()
            .collect())
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(state
            .events
            .iter()
            .skip(start)
            .take(limit.min(READ_EVENTS_MAX))
            .cloned()
            .collect())
    }

    async fn read_by_tags(
        &self,
        tags: &[Tag],
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let wanted: BTreeSet<&Tag> = tags.iter().collect();
        let state = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(state
            .events
            .iter()
            .skip(start)
            .filter(|event| event.tags.iter().any(|tag| wanted.contains(tag)))
            .take(limit.min(READ_EVENTS_MAX))
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<Position, StoreError> {
        Ok(self.lock().events.len() as Position)
    }

    async fn wait_for(&self, after: Position, timeout: Duration) -> Result<Position, StoreError> {
        let mut receiver = self.head.subscribe();
        let wait = receiver.wait_for(|head| *head > after);
        // A timeout is not an error: the caller gets the head it can see.
        let _ = tokio::time::timeout(timeout, wait).await;
        self.head().await
    }
}
