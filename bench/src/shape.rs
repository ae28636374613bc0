//! The events every measurement writes, so that raw sqlx, the peer and
//! Lethe store the same bytes: one JSON payload of about 250 bytes,
//! metadata, and [`TAGS_PER_EVENT`] tags.

use chrono::Utc;
use commands::log::{Metadata, NewEvent, Tag};
use serde_json::json;
use uuid::Uuid;

/// Tags on every benchmark event: its workspace and its resource, as on
/// the ledger's own events.
pub const TAGS_PER_EVENT: usize = 2;
pub const EVENT_TYPE: &str = "DeletionRequested";

pub fn payload(writer: usize, n: u64) -> serde_json::Value {
    json!({
        "request_id": Uuid::now_v7(),
        "scope": format!("file:f-{writer}-{n}"),
        "policy": "gdpr",
        "channel": "in_product",
        "requested_by": { "member": format!("acct-{writer}") },
        "due_at": "2026-04-01T10:00:00.000000Z",
        "note": "benchmark event shaped like a deletion request"
    })
}

pub fn metadata() -> Metadata {
    Metadata {
        actor: "service:bench".into(),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        idempotency_key: None,
        source_channel: Some("bench".into()),
    }
}

pub fn workspace_tag(writer: usize) -> Tag {
    Tag::new(format!("workspace:ws-{writer}"))
}

pub fn tags(writer: usize, n: u64) -> Vec<Tag> {
    vec![
        workspace_tag(writer),
        Tag::new(format!("resource:file:f-{writer}-{n}")),
    ]
}

pub fn new_event(writer: usize, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: EVENT_TYPE.into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        payload: payload(writer, n),
        metadata: metadata(),
        tags: tags(writer, n),
    }
}

/// One event as the raw baselines store it: the columns of Lethe's
/// `events` table, with the JSON already as text (Lethe serialises too).
#[derive(Debug)]
pub struct RawRow {
    pub stream: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub occurred_at: chrono::DateTime<Utc>,
    pub recorded_at: chrono::DateTime<Utc>,
    pub payload: String,
    pub metadata: String,
    pub tags: String,
    pub hash: Vec<u8>,
}

pub fn raw_row(writer: usize, stream: &str, version: i64) -> RawRow {
    let n = version as u64;
    let now = Utc::now();
    RawRow {
        stream: stream.to_owned(),
        stream_version: version,
        event_id: Uuid::now_v7(),
        occurred_at: now,
        recorded_at: now,
        payload: payload(writer, n).to_string(),
        metadata: serde_json::to_string(&metadata()).unwrap_or_default(),
        tags: serde_json::to_string(&tags(writer, n)).unwrap_or_default(),
        hash: vec![0x5a; 32],
    }
}
