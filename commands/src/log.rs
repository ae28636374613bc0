//! The event log as the rest of Lethe sees it: the envelope, the append
//! contract and the [`EventStore`] port that every backend implements.
//!
//! The port is deliberately small. Everything a decision needs is here:
//! read a stream, read by tags, read everything after a position, append
//! with an expected version and an optional tag condition, and wait for
//! the log to move.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Largest payload, in bytes of its JSON text, that one event may carry.
pub const EVENT_PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Most events that one append may carry. A workspace deletion plans all
/// its erasure steps in one append, so this bounds the largest workspace
/// that one request can erase at once.
pub const APPEND_EVENTS_MAX: usize = 20_000;
/// Most payload bytes, summed over its events, that one append may carry.
pub const APPEND_PAYLOAD_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Most tags that an append condition may name (a workspace deletion
/// names the hold scope of every resource it covers).
pub const APPEND_CONDITION_TAGS_MAX: usize = 50_000;
/// Most tags that one event may carry.
pub const EVENT_TAGS_MAX: usize = 64;
/// Longest tag or stream id, in bytes.
pub const NAME_BYTES_MAX: usize = 300;
/// Most events that one read returns.
pub const READ_EVENTS_MAX: usize = 10_000;

/// A global position in the log: 1 for the first event, gap-free, in
/// commit order. Position 0 means "before the first event".
pub type Position = u64;

/// The id of a stream, e.g. `hold-0190...` or `workspace-ws-42`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Wraps a stream name; see [`StoreError::InvalidEvent`] for the limits
    /// that an append enforces.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag on an event, used to find events across streams and to make
/// conditional appends, e.g. `workspace:ws-42` or `hold-scope:file:f-9`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub fn new(tag: impl Into<String>) -> Self {
        Self(tag.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who did it, why, and in answer to what: stored beside every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The principal that issued the command, e.g. `service:file-manager`.
    pub actor: String,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    /// How the command reached Lethe: `http`, `cli`, `meta-callback`, ...
    pub source_channel: Option<String>,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// UUID v7, chosen by the caller so that a retried append is idempotent.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub metadata: Metadata,
    pub tags: Vec<Tag>,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream: StreamId,
    /// 1 for the first event of the stream, then +1 per event.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub metadata: Metadata,
    pub tags: Vec<Tag>,
    /// SHA-256 over the previous event's hash and this event's stored bytes.
    pub hash: [u8; 32],
}

/// What the caller believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(u64),
    /// No check.
    Any,
}

/// Fails the append when any event carrying one of `tags` was appended at
/// a position after `after`. This is how a decision read at position P
/// across several aggregates stays true when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendCondition {
    pub tags: Vec<Tag>,
    pub after: Position,
}

/// One atomic append: all of `events` are stored, or none is.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub condition: Option<AppendCondition>,
    /// An append with a key that was seen before stores nothing and returns
    /// the first append's result.
    pub idempotency_key: Option<String>,
    pub events: Vec<NewEvent>,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Position of the first event of this append.
    pub first_position: Position,
    /// Position of the last event of this append.
    pub last_position: Position,
    /// The stream's version after this append.
    pub stream_version: u64,
    /// True when the append matched an earlier one (same event id or
    /// idempotency key) and nothing new was stored.
    pub deduplicated: bool,
}

/// Errors of the event-store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream's version was not the expected one: someone else wrote
    /// first. Reload the stream, decide again, and retry.
    #[error("stream {stream} is at version {actual}, expected {expected:?}")]
    WrongExpectedVersion {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// An event with one of the condition's tags was appended after the
    /// position the decision was read at. Re-read, decide again, retry.
    #[error(
        "an event tagged {tag} was appended at position {position}, after the decision was read"
    )]
    ConditionFailed { tag: Tag, position: Position },
    /// The append itself is malformed (empty, too large, bad names, ...).
    /// Nothing was stored; fix the input, a retry will fail the same way.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The backend could not be reached or failed. Nothing was stored by
    /// this call; retry later, and report 503 to clients meanwhile.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (bad JSON, broken invariant).
    /// This needs an operator: run `lethe verify`.
    #[error("event store corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True for the errors that a fresh read and a new decision can cure.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::WrongExpectedVersion { .. } | StoreError::ConditionFailed { .. }
        )
    }
}

/// The port through which commands and projections use the event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends atomically, checking the expected version and the condition.
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError>;

    /// Events of one stream with `stream_version > after_version`, oldest
    /// first, at most `limit` (capped at [`READ_EVENTS_MAX`]).
    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events with `position > after`, in position order, at most `limit`
    /// (capped at [`READ_EVENTS_MAX`]).
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// [`Self::read_all`] for a caller that works on something else while
    /// it waits (a projection runner reading its next page): a backend
    /// may read and decode the page on another core, which costs a
    /// sequential reader a little and saves an overlapping one more.
    async fn read_all_ahead(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all(after, limit).await
    }

    /// Events carrying any of `tags` with `position > after`, in position
    /// order, at most `limit` (capped at [`READ_EVENTS_MAX`]).
    async fn read_by_tags(
        &self,
        tags: &[Tag],
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last committed event (0 when the log is empty).
    async fn head(&self) -> Result<Position, StoreError>;

    /// Returns as soon as the head is past `after`, or after `timeout`;
    /// either way it returns the head it saw. Readers follow the log with
    /// this instead of polling in a tight loop.
    async fn wait_for(&self, after: Position, timeout: Duration) -> Result<Position, StoreError>;
}

/// The hash that precedes the first event of the log.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The canonical stored bytes of an event: every field the log keeps,
/// except the hash itself, in a fixed order. Backends store exactly these
/// fields, so `verify` can recompute the chain from what is stored.
pub fn stored_bytes(event: &RecordedEvent) -> Vec<u8> {
    let text = |value: Result<String, serde_json::Error>| {
        value.expect("serializing plain data cannot fail")
    };
    stored_bytes_of(
        &StoredHeader::of(event),
        &text(serde_json::to_string(&event.payload)),
        &text(serde_json::to_string(&event.metadata)),
        &text(serde_json::to_string(&event.tags)),
    )
}

/// The fields of [`stored_bytes`] other than the payload, the metadata
/// and the tags.
#[derive(Debug, Clone, Copy)]
pub struct StoredHeader<'a> {
    pub position: Position,
    pub stream: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl<'a> StoredHeader<'a> {
    pub fn of(event: &'a RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream: event.stream.as_str(),
            stream_version: event.stream_version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
        }
    }
}

/// [`stored_bytes`] from texts already serialised, so that a writer
/// serialises each payload once: `payload`, `metadata` and `tags` must be
/// `serde_json::to_string` of the event's values (compact JSON), which is
/// exactly how they appear inside the canonical object.
pub fn stored_bytes_of(
    header: &StoredHeader<'_>,
    payload: &str,
    metadata: &str,
    tags: &str,
) -> Vec<u8> {
    // A JSON object with keys in this order, written as serde_json writes
    // a struct of these fields.
    fn string(out: &mut Vec<u8>, text: &str) {
        serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
    }
    let mut out = Vec::with_capacity(320 + payload.len() + metadata.len() + tags.len());
    out.extend_from_slice(b"{\"position\":");
    out.extend_from_slice(header.position.to_string().as_bytes());
    out.extend_from_slice(b",\"stream\":");
    string(&mut out, header.stream);
    out.extend_from_slice(b",\"stream_version\":");
    out.extend_from_slice(header.stream_version.to_string().as_bytes());
    out.extend_from_slice(b",\"event_id\":\"");
    out.extend_from_slice(
        header
            .event_id
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"event_type\":");
    string(&mut out, header.event_type);
    out.extend_from_slice(b",\"schema_version\":");
    out.extend_from_slice(header.schema_version.to_string().as_bytes());
    out.extend_from_slice(b",\"occurred_at\":");
    string(&mut out, &rfc3339_micros(header.occurred_at));
    out.extend_from_slice(b",\"recorded_at\":");
    string(&mut out, &rfc3339_micros(header.recorded_at));
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(metadata.as_bytes());
    out.extend_from_slice(b",\"tags\":");
    out.extend_from_slice(tags.as_bytes());
    out.push(b'}');
    out
}

/// Times are stored to the microsecond, so both backends round-trip them.
pub fn rfc3339_micros(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `at` cut to the microsecond: what every store keeps and hands back,
/// so that an event read back equals the one the append returned.
pub fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// `SHA-256(previous hash || stored bytes)`.
pub fn chain_hash(previous: &[u8; 32], stored: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(stored);
    hasher.finalize().into()
}

/// Checks a sequence of stored events, in position order, against the
/// chain. The first event must follow `previous` at `expected_position`.
pub fn verify_chain<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    mut previous: [u8; 32],
    mut expected_position: Position,
) -> Result<([u8; 32], Position), ChainBreak> {
    for event in events {
        if event.position != expected_position {
            return Err(ChainBreak {
                position: expected_position,
                reason: format!("found position {} instead", event.position),
            });
        }
        let hash = chain_hash(&previous, &stored_bytes(event));
        if hash != event.hash {
            return Err(ChainBreak {
                position: event.position,
                reason: "hash does not match the stored bytes and the previous hash".into(),
            });
        }
        previous = hash;
        expected_position += 1;
    }
    Ok((previous, expected_position))
}

/// Where and why a chain check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log is broken at position {position}: {reason}")]
pub struct ChainBreak {
    pub position: Position,
    pub reason: String,
}

/// Checks the limits every backend enforces before storing anything.
/// The length of `value` as compact JSON, counted without building the
/// text (`usize::MAX` if it cannot be serialised).
fn json_size(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(bytes.len());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

pub fn validate_append(request: &AppendRequest) -> Result<(), StoreError> {
    let invalid = |why: String| Err(StoreError::InvalidEvent(why));
    if request.events.is_empty() {
        return invalid("an append needs at least one event".into());
    }
    if request.events.len() > APPEND_EVENTS_MAX {
        return invalid(format!(
            "{} events in one append, at most {APPEND_EVENTS_MAX}",
            request.events.len()
        ));
    }
    check_name("stream id", request.stream.as_str())?;
    if let Some(key) = &request.idempotency_key {
        check_name("idempotency key", key)?;
    }
    if let Some(condition) = &request.condition {
        if condition.tags.len() > APPEND_CONDITION_TAGS_MAX {
            return invalid(format!(
                "{} tags in the append condition, at most {APPEND_CONDITION_TAGS_MAX}",
                condition.tags.len()
            ));
        }
        for tag in &condition.tags {
            check_name("tag", tag.as_str())?;
        }
    }
    let mut event_ids = std::collections::HashSet::new();
    let mut payload_bytes = 0_usize;
    for event in &request.events {
        check_name("event type", &event.event_type)?;
        // The log keeps event ids unique; a repeated id inside one append
        // cannot be stored.
        if !event_ids.insert(event.event_id) {
            return invalid(format!("event id {} appears twice", event.event_id));
        }
        // RFC 3339 has four-digit years, and PostgreSQL cannot store all
        // of chrono's range.
        if !(1..=9999).contains(&chrono::Datelike::year(&event.occurred_at)) {
            return invalid("occurred_at must be between the years 1 and 9999".into());
        }
        if event.tags.len() > EVENT_TAGS_MAX {
            return invalid(format!(
                "{} tags on one event, at most {EVENT_TAGS_MAX}",
                event.tags.len()
            ));
        }
        for tag in &event.tags {
            check_name("tag", tag.as_str())?;
        }
        let size = json_size(&event.payload);
        if size > EVENT_PAYLOAD_BYTES_MAX {
            return invalid(format!(
                "payload of {size} bytes, at most {EVENT_PAYLOAD_BYTES_MAX}"
            ));
        }
        payload_bytes = payload_bytes.saturating_add(size);
        if payload_bytes > APPEND_PAYLOAD_BYTES_MAX {
            return invalid(format!(
                "payloads of more than {APPEND_PAYLOAD_BYTES_MAX} bytes in one append"
            ));
        }
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidEvent(format!(
            "{what} must be 1 to {NAME_BYTES_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical bytes as first defined: a serde struct of these
    /// fields. Logs written then must still verify.
    fn reference_bytes(event: &RecordedEvent) -> Vec<u8> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            position: Position,
            stream: &'a str,
            stream_version: u64,
            event_id: &'a Uuid,
            event_type: &'a str,
            schema_version: u16,
            occurred_at: String,
            recorded_at: String,
            payload: &'a serde_json::Value,
            metadata: &'a Metadata,
            tags: &'a [Tag],
        }
        serde_json::to_vec(&Canonical {
            position: event.position,
            stream: event.stream.as_str(),
            stream_version: event.stream_version,
            event_id: &event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            occurred_at: rfc3339_micros(event.occurred_at),
            recorded_at: rfc3339_micros(event.recorded_at),
            payload: &event.payload,
            metadata: &event.metadata,
            tags: &event.tags,
        })
        .unwrap()
    }

    fn event(
        stream: &str,
        event_type: &str,
        payload: serde_json::Value,
        tags: &[&str],
    ) -> RecordedEvent {
        RecordedEvent {
            position: 4_294_967_301,
            stream: StreamId::new(stream),
            stream_version: 17,
            event_id: Uuid::parse_str("0190e0b2-7c1d-7abc-8def-0123456789ab").unwrap(),
            event_type: event_type.to_owned(),
            schema_version: 3,
            occurred_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            recorded_at: DateTime::from_timestamp_micros(1_764_000_001_000_001).unwrap(),
            payload,
            metadata: Metadata {
                actor: "legal:ann \"o'brien\"".into(),
                correlation_id: Some(Uuid::nil()),
                causation_id: None,
                idempotency_key: Some("k\\1\u{7}".into()),
                source_channel: None,
            },
            tags: tags.iter().map(|tag| Tag::new(*tag)).collect(),
            hash: [0; 32],
        }
    }

    #[test]
    fn json_size_is_the_length_of_the_text() {
        for value in [
            serde_json::json!({}),
            serde_json::json!({"a": [1, 2.5, null], "é": "line\nbreak 🗑", "n": u64::MAX}),
            serde_json::json!("x".repeat(10_000)),
        ] {
            assert_eq!(json_size(&value), serde_json::to_vec(&value).unwrap().len());
        }
    }

    #[test]
    fn stored_bytes_are_the_canonical_object() {
        let events = [
            event("s", "A", serde_json::json!({}), &[]),
            event(
                "request-\"quoted\"/é",
                "DeletionRequested",
                serde_json::json!({
                    "z": [1, -2.5, null, true, "line\nbreak\ttab\u{0}"],
                    "a": { "emoji": "🗑", "nested": { "deep": [[], {}] } },
                    "big": u64::MAX,
                }),
                &["workspace:ws-1", "subject:file:f-\u{1f}"],
            ),
            event("x", "B\\C", serde_json::json!("just a string"), &["t"]),
        ];
        for event in &events {
            let bytes = stored_bytes(event);
            assert_eq!(
                String::from_utf8(bytes.clone()).unwrap(),
                String::from_utf8(reference_bytes(event)).unwrap()
            );
            let from_parts = stored_bytes_of(
                &StoredHeader::of(event),
                &serde_json::to_string(&event.payload).unwrap(),
                &serde_json::to_string(&event.metadata).unwrap(),
                &serde_json::to_string(&event.tags).unwrap(),
            );
            assert_eq!(from_parts, bytes);
        }
    }
}
