//! Personal data inside events: a requester's contact, free-text reasons,
//! notes and matter references.
//!
//! The log is immutable, so personal data never enters it in plain text.
//! Decisions put a [`Personal`] value into an event in plain text; before
//! the event is stored the application layer seals every such value
//! (encrypts it under the data key of the subject it belongs to, see
//! [`PersonalField::owner`]) and stores a sealed token in its place.
//! Readers open tokens for display; once the owner's key is destroyed, a
//! token opens to `[erased]`.
//!
//! A value is stored as one JSON string in every form, so a field's shape
//! does not change when it is sealed:
//! - sealed: `sealed1:{owner}:{event id}:{field}:{base64url ciphertext}`,
//! - erased before it was stored (its owner was already forgotten):
//!   `erased1:{owner}`,
//! - anything else is plain text (never written by the ledger; accepted on
//!   read so that an unsealed value is shown, not lost).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::subject::Subject;
use crate::text::refuse_card_number;

/// The prefix of a sealed value's stored form.
pub const SEALED_PREFIX: &str = "sealed1:";
/// The prefix of a value erased before it was stored.
pub const ERASED_PREFIX: &str = "erased1:";
/// What a reader shows for a value whose key is destroyed.
pub const ERASED_TEXT: &str = "[erased]";

/// One personal value, in plain text (just decided) or as stored.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Personal(Form);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Form {
    Plain(String),
    Sealed(String),
    Erased(String),
}

impl Personal {
    /// A plain value, as decided. Callers parse it first (`Reason`,
    /// `Note`, `Contact`, `MatterRef`), so it is valid free text.
    pub fn plain(text: impl Into<String>) -> Self {
        Personal(Form::Plain(text.into()))
    }

    /// The plain text, if this value has not been sealed.
    pub fn as_plain(&self) -> Option<&str> {
        match &self.0 {
            Form::Plain(text) => Some(text),
            Form::Sealed(_) | Form::Erased(_) => None,
        }
    }

    /// The sealed token, if sealed.
    pub fn as_sealed(&self) -> Option<&str> {
        match &self.0 {
            Form::Sealed(token) => Some(token),
            Form::Plain(_) | Form::Erased(_) => None,
        }
    }

    /// Replaces the plain text with its sealed token.
    pub fn seal(&mut self, token: String) {
        debug_assert!(token.starts_with(SEALED_PREFIX));
        self.0 = Form::Sealed(token);
    }

    /// Drops the plain text because its owner is forgotten.
    pub fn erase(&mut self, owner: &Subject) {
        self.0 = Form::Erased(format!("{ERASED_PREFIX}{owner}"));
    }

    /// The form that is stored: plain text, a sealed token or an erased
    /// marker. Readers turn tokens into text for people.
    pub fn stored(&self) -> &str {
        match &self.0 {
            Form::Plain(text) | Form::Sealed(text) | Form::Erased(text) => text,
        }
    }

    /// Whether `text` is the stored form of a sealed or erased value.
    pub fn is_stored_form(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX) || text.starts_with(ERASED_PREFIX)
    }

    /// Whether `text` holds a sealed-value or erased-value marker
    /// anywhere: a reader takes every one for a sealed value, so free
    /// text that enters the ledger must hold none.
    pub fn holds_marker(text: &str) -> bool {
        text.contains(SEALED_PREFIX) || text.contains(ERASED_PREFIX)
    }
}

impl Personal {
    /// Reads a stored form. Plain text is checked like every free text
    /// entering the ledger (R14: no card number).
    pub fn from_stored(text: String) -> Result<Self, InvalidInput> {
        Ok(if text.starts_with(SEALED_PREFIX) {
            Personal(Form::Sealed(text))
        } else if text.starts_with(ERASED_PREFIX) {
            Personal(Form::Erased(text))
        } else {
            refuse_card_number("personal data", &text)?;
            Personal(Form::Plain(text))
        })
    }
}

impl TryFrom<String> for Personal {
    type Error = InvalidInput;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Personal::from_stored(text)
    }
}

impl From<Personal> for String {
    fn from(value: Personal) -> String {
        match value.0 {
            Form::Plain(text) | Form::Sealed(text) | Form::Erased(text) => text,
        }
    }
}

/// Shows the stored form: a sealed token (readers reveal it), `[erased]`,
/// or plain text.
impl fmt::Display for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Form::Plain(text) | Form::Sealed(text) => f.write_str(text),
            Form::Erased(_) => f.write_str(ERASED_TEXT),
        }
    }
}

/// Never prints plain text, so that logs and panics do not leak it.
impl fmt::Debug for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Form::Plain(text) => write!(f, "Personal(plain, {} chars)", text.chars().count()),
            Form::Sealed(_) => f.write_str("Personal(sealed)"),
            Form::Erased(marker) => write!(f, "Personal({marker})"),
        }
    }
}

macro_rules! personal_from {
    ($($text:ty),+) => {
        $(impl From<$text> for Personal {
            fn from(value: $text) -> Self {
                Personal::plain(String::from(value))
            }
        })+
    };
}
personal_from!(
    crate::text::Reason,
    crate::text::Note,
    crate::text::MatterRef,
    crate::text::Contact
);

/// A personal field of an event, for sealing.
#[derive(Debug)]
pub struct PersonalField<'a> {
    /// The field's name, bound into the ciphertext so that a token cannot
    /// be moved to another field.
    pub field: &'static str,
    /// Whose data it is: forgetting this subject erases the value. A
    /// request owns its contact and notes, a hold its matter and reasons,
    /// an external account the reason it was disconnected.
    pub owner: Subject,
    pub value: &'a mut Personal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips_through_its_stored_string() {
        let owner = Subject::parse("request:0190a0b0-0000-7000-8000-000000000001").unwrap();
        let plain = Personal::plain("alice@example.com");
        let mut sealed = plain.clone();
        sealed.seal(format!("{SEALED_PREFIX}{owner}:e:contact:AAAA"));
        let mut erased = plain.clone();
        erased.erase(&owner);
        for value in [plain, sealed, erased] {
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<Personal>(&json).unwrap(), value);
        }
    }

    #[test]
    fn debug_never_shows_plain_text() {
        let shown = format!("{:?}", Personal::plain("alice@example.com"));
        assert!(!shown.contains("alice"), "{shown}");
    }
}
