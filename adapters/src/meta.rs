//! Meta's `signed_request`, as sent to the deauthorization and
//! data-deletion callbacks:
//! `base64url(signature) "." base64url(payload JSON)`, where the signature
//! is HMAC-SHA256 of the payload segment, exactly as received, under the
//! app secret.
//!
//! **Invariant:** a [`SignedRequest`] exists only for a payload whose
//! signature matched (compared in constant time), whose `algorithm` is
//! `HMAC-SHA256` and whose `issued_at` is recent enough.

use base64::alphabet;
use base64::engine::general_purpose::GeneralPurpose;
use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Default oldest `issued_at` accepted, in seconds (`LETHE_META_MAX_AGE_SECS`).
pub const MAX_AGE_SECS_DEFAULT: u64 = 3_600;
/// Longest `signed_request` looked at, in bytes.
pub const SIGNED_REQUEST_BYTES_MAX: usize = 8 * 1024;
/// How far in the future `issued_at` may lie (clock skew), in seconds.
pub const CLOCK_SKEW_SECS_MAX: i64 = 300;

/// base64url that accepts the text with or without `=` padding.
const BASE64URL_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How callbacks are checked: the app secret and the freshness window.
#[derive(Clone)]
pub struct MetaConfig {
    app_secret: Vec<u8>,
    /// Oldest `issued_at` accepted, in seconds; 0 turns the check off.
    pub max_age_secs: u64,
}

impl std::fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaConfig")
            .field("app_secret", &"[redacted]")
            .field("max_age_secs", &self.max_age_secs)
            .finish()
    }
}

impl MetaConfig {
    pub fn new(app_secret: impl Into<Vec<u8>>, max_age_secs: u64) -> Self {
        Self {
            app_secret: app_secret.into(),
            max_age_secs,
        }
    }
}

/// A verified callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped user id of the person.
    pub user_id: String,
    pub issued_at: Option<DateTime<Utc>>,
    /// `hex(SHA-256(payload segment))`: the same callback replayed gives
    /// the same key, so the ledger answers with the same request.
    pub callback_key: String,
}

/// Why a callback was refused. Every variant is a client error (HTTP
/// 400); the callback deletes nothing and the refusal is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// The form has no `signed_request`, or it is not `sig.payload`, too
    /// long, or not base64url.
    #[error("malformed signed_request: {0}")]
    Malformed(String),
    /// The signature does not match the payload under the app secret:
    /// forged, altered, or signed for another app.
    #[error("the signature does not match the payload")]
    BadSignature,
    /// The payload names another algorithm than HMAC-SHA256.
    #[error("unsupported algorithm {0:?}; expected HMAC-SHA256")]
    WrongAlgorithm(String),
    /// `issued_at` is older than the allowed age (or missing, or too far in
    /// the future): a replay of an old callback or a skewed clock.
    #[error("stale signed_request: {0}")]
    Stale(String),
    /// The payload has no usable `user_id`.
    #[error("the payload has no user_id")]
    NoUserId,
}

/// Parses and verifies `signed_request` at time `now`.
pub fn verify(
    config: &MetaConfig,
    signed_request: &str,
    now: DateTime<Utc>,
) -> Result<SignedRequest, MetaError> {
    if signed_request.len() > SIGNED_REQUEST_BYTES_MAX {
        return Err(MetaError::Malformed(format!(
            "longer than {SIGNED_REQUEST_BYTES_MAX} bytes"
        )));
    }
    let (signature_segment, payload_segment) = signed_request
        .trim()
        .split_once('.')
        .ok_or_else(|| MetaError::Malformed("expected SIGNATURE.PAYLOAD".into()))?;
    let signature = BASE64URL_ANY_PADDING
        .decode(signature_segment)
        .map_err(|e| MetaError::Malformed(format!("signature is not base64url: {e}")))?;
    // The MAC goes over the payload segment as received, before decoding.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&config.app_secret).expect("HMAC takes keys of any length");
    mac.update(payload_segment.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| MetaError::BadSignature)?;
    let payload = BASE64URL_ANY_PADDING
        .decode(payload_segment)
        .map_err(|e| MetaError::Malformed(format!("payload is not base64url: {e}")))?;
    let payload: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| MetaError::Malformed(format!("payload is not JSON: {e}")))?;
    let algorithm = payload
        .get("algorithm")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if !algorithm.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(MetaError::WrongAlgorithm(algorithm.to_owned()));
    }
    let issued_at = payload
        .get("issued_at")
        .and_then(serde_json::Value::as_i64)
        .and_then(|secs| DateTime::from_timestamp(secs, 0));
    if config.max_age_secs > 0 {
        let Some(issued) = issued_at else {
            return Err(MetaError::Stale("issued_at is missing".into()));
        };
        let age = (now - issued).num_seconds();
        let max_age = i64::try_from(config.max_age_secs).unwrap_or(i64::MAX);
        if age > max_age {
            return Err(MetaError::Stale(format!(
                "issued {age} s ago, at most {max_age} s allowed"
            )));
        }
        if age < -CLOCK_SKEW_SECS_MAX {
            return Err(MetaError::Stale(format!("issued {} s in the future", -age)));
        }
    }
    let user_id = match payload.get("user_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id.clone(),
        Some(serde_json::Value::Number(id)) => id.to_string(),
        _ => return Err(MetaError::NoUserId),
    };
    Ok(SignedRequest {
        user_id,
        issued_at,
        callback_key: hex::encode(Sha256::digest(payload_segment.as_bytes())),
    })
}

/// Builds a `signed_request` by the documented algorithm: for tests, the
/// demo, and anyone who wants to try the callbacks by hand.
pub fn sign(app_secret: &[u8], payload: &serde_json::Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload_segment = engine.encode(payload.to_string());
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(payload_segment.as_bytes());
    let signature = mac.finalize().into_bytes();
    format!("{}.{payload_segment}", engine.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

    const SECRET: &[u8] = b"app-secret-for-tests";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn config() -> MetaConfig {
        MetaConfig::new(SECRET, MAX_AGE_SECS_DEFAULT)
    }

    fn payload(issued_at: i64) -> serde_json::Value {
        serde_json::json!({
            "algorithm": "HMAC-SHA256",
            "issued_at": issued_at,
            "user_id": "17841400000000001",
        })
    }

    /// Built step by step from Meta's documentation, not with `sign`.
    fn documented(secret: &[u8], payload: &serde_json::Value, padded: bool) -> String {
        let engine = if padded { URL_SAFE } else { URL_SAFE_NO_PAD };
        let payload_segment = engine.encode(serde_json::to_vec(payload).unwrap());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(payload_segment.as_bytes());
        let signature = engine.encode(mac.finalize().into_bytes());
        format!("{signature}.{payload_segment}")
    }

    #[test]
    fn a_documented_signed_request_verifies() {
        let raw = documented(SECRET, &payload(now().timestamp() - 10), false);
        let verified = verify(&config(), &raw, now()).unwrap();
        assert_eq!(verified.user_id, "17841400000000001");
        assert_eq!(raw, sign(SECRET, &payload(now().timestamp() - 10)));
    }

    #[test]
    fn padding_is_optional() {
        let body = payload(now().timestamp());
        let padded = documented(SECRET, &body, true);
        let unpadded = documented(SECRET, &body, false);
        assert!(padded.contains('='), "the test needs a padded segment");
        // The payload segment differs, so the keys differ; both verify.
        verify(&config(), &padded, now()).unwrap();
        verify(&config(), &unpadded, now()).unwrap();
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let raw = documented(SECRET, &payload(now().timestamp()), false);
        for index in 0..raw.len() {
            let mut bytes = raw.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered == raw {
                continue;
            }
            assert!(
                verify(&config(), &altered, now()).is_err(),
                "byte {index} changed and still accepted"
            );
        }
        let other_app = documented(b"another secret", &payload(now().timestamp()), false);
        assert_eq!(
            verify(&config(), &other_app, now()),
            Err(MetaError::BadSignature)
        );
    }

    #[test]
    fn only_hmac_sha256_is_accepted() {
        let mut body = payload(now().timestamp());
        body["algorithm"] = "HMAC-SHA1".into();
        let raw = documented(SECRET, &body, false);
        assert!(matches!(
            verify(&config(), &raw, now()),
            Err(MetaError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn stale_callbacks_are_refused_unless_the_check_is_off() {
        let raw = documented(SECRET, &payload(now().timestamp() - 3_601), false);
        assert!(matches!(
            verify(&config(), &raw, now()),
            Err(MetaError::Stale(_))
        ));
        verify(&MetaConfig::new(SECRET, 0), &raw, now()).unwrap();
        let fresh_enough = documented(SECRET, &payload(now().timestamp() - 3_600), false);
        verify(&config(), &fresh_enough, now()).unwrap();
    }

    #[test]
    fn malformed_input_is_refused() {
        for raw in ["", "nodot", "!!.!!", "a.b.c"] {
            assert!(verify(&config(), raw, now()).is_err(), "{raw}");
        }
        let mut body = payload(now().timestamp());
        body.as_object_mut().unwrap().remove("user_id");
        let raw = documented(SECRET, &body, false);
        assert_eq!(verify(&config(), &raw, now()), Err(MetaError::NoUserId));
    }

    #[test]
    fn the_same_callback_has_the_same_key() {
        let raw = documented(SECRET, &payload(now().timestamp()), false);
        let a = verify(&config(), &raw, now()).unwrap();
        let b = verify(&config(), &raw, now()).unwrap();
        assert_eq!(a.callback_key, b.callback_key);
    }
}
