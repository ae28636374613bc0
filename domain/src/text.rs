//! Free text that enters the ledger: reasons, matter references, notes.
//!
//! R14: full card numbers are never accepted into the ledger, so every
//! free-text value is checked for a run of 13 to 19 digits (spaces and
//! hyphens allowed between them) that passes the Luhn check.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// Longest free-text value, in characters.
pub const TEXT_CHARS_MAX: usize = 2_000;
/// Longest matter reference, in characters.
pub const MATTER_CHARS_MAX: usize = 128;

/// Parses free text: trimmed, 1 to `max_chars` characters, no control
/// characters but newlines and tabs, no card number.
pub fn parse_text(
    field: &'static str,
    raw: &str,
    max_chars: usize,
) -> Result<String, InvalidInput> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    refuse_card_number(field, text)?;
    if crate::personal::Personal::holds_marker(text) {
        return Err(InvalidInput::new(
            field,
            "must not hold sealed1: or erased1:, which mark sealed personal data in the ledger",
        ));
    }
    Ok(text.to_owned())
}

/// R14: refuses a value that holds a card number. For values that are not
/// otherwise parsed as free text but still enter the ledger as written
/// (operator and worker names).
pub fn refuse_card_number(field: &'static str, raw: &str) -> Result<(), InvalidInput> {
    if contains_card_number(raw) {
        return Err(InvalidInput::new(
            field,
            "looks like a payment card number; card numbers are never stored in the ledger",
        ));
    }
    Ok(())
}

/// True when `text` holds 13 to 19 digits, written together or in groups
/// separated by single spaces, hyphens, dots or slashes, that pass the
/// Luhn check.
///
/// A run of digit groups is checked group-wise: every sequence of whole
/// consecutive groups holding 13 to 19 digits is a candidate, so a card
/// number written next to another number ("4111 1111 1111 1111 12/28",
/// "call 555 4111-1111-1111-1111") is still found.
pub fn contains_card_number(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Collect a run of digit groups, one separator between groups.
        let mut groups: Vec<Vec<u8>> = vec![Vec::new()];
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_digit() {
                if let Some(group) = groups.last_mut() {
                    group.push(c as u8 - b'0');
                }
                i += 1;
            } else if matches!(c, ' ' | '-' | '.' | '/')
                && i + 1 < chars.len()
                && chars[i + 1].is_ascii_digit()
            {
                groups.push(Vec::new());
                i += 1;
            } else {
                break;
            }
        }
        // Windows that cut through a group are not checked, since most
        // long numbers (order ids, platform ids) would then match by chance.
        for first in 0..groups.len() {
            let mut digits: Vec<u8> = Vec::new();
            for group in &groups[first..] {
                digits.extend_from_slice(group);
                if digits.len() > 19 {
                    break;
                }
                if digits.len() >= 13 && luhn_valid(&digits) {
                    return true;
                }
            }
        }
    }
    false
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                parse_text($field, raw, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidInput;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_value!(
    /// Why something was done: a hold placed or lifted, a disconnect, an
    /// extension, a refusal.
    Reason,
    "reason",
    TEXT_CHARS_MAX
);
text_value!(
    /// The legal matter or moderation case a hold belongs to.
    MatterRef,
    "matter",
    MATTER_CHARS_MAX
);
text_value!(
    /// A note: what verification was done, what a retention exception keeps.
    Note,
    "note",
    TEXT_CHARS_MAX
);
text_value!(
    /// Personal contact details of a requester (an e-mail address, a name).
    /// Kept out of plain view; see the crypto-shredding design.
    Contact,
    "contact",
    320
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_with_or_without_separators() {
        assert!(contains_card_number("4111111111111111"));
        assert!(contains_card_number("card 4111 1111 1111 1111 please"));
        assert!(contains_card_number("5500-0000-0000-0004"));
        assert!(contains_card_number("amex 378282246310005"));
    }

    #[test]
    fn ordinary_numbers_are_not_card_numbers() {
        assert!(!contains_card_number("ticket 12345"));
        assert!(!contains_card_number("4111111111111112"));
        assert!(!contains_card_number("call 555 0100 tomorrow"));
        assert!(!contains_card_number("matter 2026-11-29"));
    }

    #[test]
    fn text_with_a_card_number_is_refused() {
        let err = Reason::parse("refund to 4111111111111111").unwrap_err();
        assert_eq!(err.field, "reason");
        assert!(Reason::parse("  ").is_err());
        assert_eq!(
            Reason::parse(" litigation ").unwrap().as_str(),
            "litigation"
        );
    }
}
