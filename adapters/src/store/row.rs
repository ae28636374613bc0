//! Turning stored rows back into events, strictly enough for `verify`.

use chrono::{DateTime, Utc};
use commands::log::{rfc3339_micros, Metadata, Position, RecordedEvent, StreamId, Tag};
use uuid::Uuid;

/// One `events` row as both backends read it. Times are kept as the
/// backend gives them: SQLite stores RFC 3339 text, PostgreSQL
/// `timestamptz`.
#[derive(Debug)]
pub(crate) struct RawEvent {
    pub position: i64,
    pub stream: String,
    pub stream_version: i64,
    pub event_id: RawId,
    pub event_type: String,
    pub schema_version: i64,
    pub occurred_at: RawTime,
    pub recorded_at: RawTime,
    pub payload: String,
    pub metadata: String,
    pub tags: String,
    pub hash: Vec<u8>,
}

#[derive(Debug)]
pub(crate) enum RawTime {
    Text(String),
    Native(DateTime<Utc>),
}

#[derive(Debug)]
pub(crate) enum RawId {
    Text(String),
    Native(Uuid),
}

impl RawEvent {
    /// Position of the row, for error messages (0 if it is negative).
    pub(crate) fn position(&self) -> Position {
        Position::try_from(self.position).unwrap_or(0)
    }

    /// Decodes the row. Every text column must also be in exactly the
    /// canonical form that was hashed: the chain covers the parsed values,
    /// so this is what makes any altered stored byte visible.
    pub(crate) fn decode(self) -> Result<RecordedEvent, String> {
        let payload: serde_json::Value =
            serde_json::from_str(&self.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let metadata: Metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| format!("metadata cannot be read: {e}"))?;
        let tags: Vec<Tag> =
            serde_json::from_str(&self.tags).map_err(|e| format!("tags cannot be read: {e}"))?;
        canonical("payload", &payload, &self.payload)?;
        canonical("metadata", &metadata, &self.metadata)?;
        canonical("tags", &tags, &self.tags)?;
        let event_id = match self.event_id {
            RawId::Native(id) => id,
            RawId::Text(text) => {
                let id = Uuid::parse_str(&text).map_err(|e| format!("event id: {e}"))?;
                if id.hyphenated().encode_lower(&mut Uuid::encode_buffer()) != text.as_str() {
                    return Err("event id is not in canonical form".into());
                }
                id
            }
        };
        Ok(RecordedEvent {
            position: Position::try_from(self.position).map_err(|_| "negative position")?,
            stream: StreamId::new(self.stream),
            stream_version: u64::try_from(self.stream_version)
                .map_err(|_| "negative stream version")?,
            event_id,
            event_type: self.event_type,
            schema_version: u16::try_from(self.schema_version)
                .map_err(|_| "schema version out of range")?,
            occurred_at: time("occurred_at", self.occurred_at)?,
            recorded_at: time("recorded_at", self.recorded_at)?,
            payload,
            metadata,
            tags,
            hash: self
                .hash
                .try_into()
                .map_err(|_| "hash is not 32 bytes".to_owned())?,
        })
    }
}

fn canonical<T: serde::Serialize>(what: &str, value: &T, stored: &str) -> Result<(), String> {
    if serializes_to(value, stored) {
        Ok(())
    } else {
        Err(format!(
            "{what} is not in the canonical form that was hashed"
        ))
    }
}

/// Whether `value` serialises to exactly `stored`. The text is compared
/// piece by piece as it is written, never made: every event read checks
/// three columns this way, and making each text to compare it was a
/// tenth of a read's allocations.
fn serializes_to<T: serde::Serialize>(value: &T, stored: &str) -> bool {
    /// Accepts what is written while it continues `rest`.
    struct Continues<'a> {
        rest: &'a [u8],
    }
    impl std::io::Write for Continues<'_> {
        fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(written) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(written.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Continues {
        rest: stored.as_bytes(),
    };
    serde_json::to_writer(&mut sink, value).is_ok() && sink.rest.is_empty()
}

fn time(what: &str, raw: RawTime) -> Result<DateTime<Utc>, String> {
    match raw {
        RawTime::Native(at) => Ok(at),
        RawTime::Text(text) => {
            let at = DateTime::parse_from_rfc3339(&text)
                .map_err(|e| format!("{what}: {e}"))?
                .with_timezone(&Utc);
            if rfc3339_micros(at) != text {
                return Err(format!("{what} is not in canonical form"));
            }
            Ok(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::serializes_to;
    use serde_json::json;

    #[test]
    fn serializes_to_accepts_only_the_whole_text() {
        let value = json!({"a": [1, "x\"y"], "b": null});
        let text = serde_json::to_string(&value).unwrap();
        assert!(serializes_to(&value, &text));
        // Shorter, longer, one byte changed, spaced: all refused.
        assert!(!serializes_to(&value, &text[..text.len() - 1]));
        assert!(!serializes_to(&value, &format!("{text} ")));
        assert!(!serializes_to(&value, &text.replace('1', "2")));
        assert!(!serializes_to(&value, r#"{"a": [1,"x\"y"],"b":null}"#));
        assert!(!serializes_to(&value, ""));
    }
}
