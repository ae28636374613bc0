//! Time and identity come from outside the domain: a clock that tests can
//! move, and a source of UUIDs.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, to the microsecond (what the stores keep).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(truncate_to_micros(start)))
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = truncate_to_micros(to);
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// Drops the nanoseconds that neither store keeps.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let micros = at.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(at)
}

/// The namespace of ids derived from idempotency keys.
const KEYED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_7468_6500_4000_8000_6964_656d_706f);

/// A new UUID v7 for Lethe's own ids, or, when the caller gave an
/// idempotency key, a UUID v5 derived from it, so that a replayed command
/// names the same request or hold as the first one.
pub fn new_id(idempotency: Option<(&str, &str, &str)>) -> Uuid {
    match idempotency {
        Some((purpose, actor, key)) => {
            let name = format!("{purpose}\u{1f}{actor}\u{1f}{key}");
            Uuid::new_v5(&KEYED_ID_NAMESPACE, name.as_bytes())
        }
        None => Uuid::now_v7(),
    }
}
