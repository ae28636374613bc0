//! R14: full card numbers are never accepted into the ledger.

use domain::events::LedgerEvent;
use domain::text::{contains_card_number, Contact, MatterRef, Note, Reason};
use proptest::prelude::*;

/// Parses `raw` as each free-text type, naming the field it refuses.
fn parse_each(raw: &str) -> [(&'static str, Result<(), String>); 4] {
    let field = |e: domain::error::InvalidInput| format!("{}: {}", e.field, e.reason);
    [
        ("reason", Reason::parse(raw).map(drop).map_err(field)),
        ("matter", MatterRef::parse(raw).map(drop).map_err(field)),
        ("note", Note::parse(raw).map(drop).map_err(field)),
        ("contact", Contact::parse(raw).map(drop).map_err(field)),
    ]
}

#[test]
fn r14_a_card_number_is_refused_in_every_free_text_type() {
    // (text, holds a card number)
    let cases = [
        ("4111111111111111", true),
        ("refund to 4111 1111 1111 1111 please", true),
        ("card 5500-0000-0000-0004", true),
        ("amex 378282246310005", true),
        // 13 and 19 digits, the shortest and longest card numbers.
        ("old visa 4222222222222", true),
        ("long 6011111111111111110", true),
        // Written next to other numbers: expiry, a phone number.
        ("4111 1111 1111 1111 12/28", true),
        ("4111 1111 1111 1111 123", true),
        ("call 555 4111-1111-1111-1111", true),
        // Other separators people write between groups.
        ("card 4111.1111.1111.1111", true),
        ("card 4111/1111/1111/1111", true),
        // Not card numbers.
        ("ticket 12345", false),
        ("4111111111111112", false),
        ("call 555 0100 tomorrow", false),
        ("matter 2026-11-29", false),
        ("on 29.11.2026 at 10.30", false),
        ("host 192.168.100.200", false),
        ("instagram 17841400000000001", false),
        ("12 digits 411111111111", false),
        ("20 digits 41111111111111111113", false),
    ];
    for (text, is_card) in cases {
        assert_eq!(contains_card_number(text), is_card, "{text}");
        for (field, parsed) in parse_each(text) {
            match parsed {
                Err(error) if is_card => {
                    assert!(
                        error.starts_with(&format!("{field}: looks like a payment card number")),
                        "{text}: {error}"
                    );
                }
                Ok(()) if !is_card => {}
                other => panic!("{field} {text:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn r14_a_stored_payload_with_a_card_number_does_not_decode() {
    // The commands' JSON and the stored events go through the same
    // parsing, so a card number cannot enter by deserialization either.
    let payload = serde_json::json!({
        "type": "HoldPlaced",
        "hold": "00000000-0000-0000-0000-000000001001",
        "scope": "file:f-1",
        "kind": "legal",
        "matter": "matter-1",
        "reason": "charge on 4111 1111 1111 1111",
        "placed_by": "legal:alice",
    });
    let error = LedgerEvent::decode("HoldPlaced", 1, &payload).unwrap_err();
    assert!(error.reason.contains("card number"), "{error}");
    let clean = serde_json::json!({
        "type": "HoldPlaced",
        "hold": "00000000-0000-0000-0000-000000001001",
        "scope": "file:f-1",
        "kind": "legal",
        "matter": "matter-1",
        "reason": "charge disputed",
        "placed_by": "legal:alice",
    });
    assert!(LedgerEvent::decode("HoldPlaced", 1, &clean).is_ok());
}

/// A Luhn-valid 16-digit number from its first 15 digits.
fn with_check_digit(body: &[u8]) -> String {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            // The check digit goes last, so the last body digit is doubled.
            if i % 2 == 0 {
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
    let check = (10 - sum % 10) % 10;
    body.iter()
        .map(|d| char::from(b'0' + d))
        .chain(std::iter::once(char::from_digit(check, 10).unwrap()))
        .collect()
}

/// The card as people write it: plain, in fours with spaces, or hyphens.
fn written(card: &str, style: usize) -> String {
    let groups: Vec<&str> = (0..4).map(|i| &card[i * 4..i * 4 + 4]).collect();
    match style {
        0 => card.to_owned(),
        1 => groups.join(" "),
        _ => groups.join("-"),
    }
}

/// The most digits in a row, counting single spaces and hyphens between
/// digits as part of the row.
fn longest_digit_run(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let (mut longest, mut current) = (0, 0);
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            current += 1;
        } else {
            let joins = matches!(c, ' ' | '-')
                && current > 0
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if !joins {
                current = 0;
            }
        }
        longest = longest.max(current);
    }
    longest
}

proptest! {
    #[test]
    fn r14_text_holding_a_valid_card_number_is_always_refused(
        before in "[a-zA-Z0-9 ,.:;/()#-]{0,40}",
        after in "[a-zA-Z0-9 ,.:;/()#-]{0,40}",
        body in proptest::collection::vec(0u8..10, 15),
        style in 0usize..3,
        left in prop::sample::select(vec![" ", "-", ": ", "#", "\n"]),
        right in prop::sample::select(vec![" ", "-", ".", "/", "\n"]),
    ) {
        let card = written(&with_check_digit(&body), style);
        let text = format!("{before}{left}{card}{right}{after}");
        prop_assert!(contains_card_number(&text), "{text:?}");
        for (field, parsed) in parse_each(&text) {
            prop_assert!(parsed.is_err(), "{field} accepted {text:?}");
        }
    }

    #[test]
    fn r14_text_without_long_digit_runs_is_never_refused_as_a_card(
        text in "[a-zA-Z0-9 ,.:;/()#-]{1,80}",
    ) {
        prop_assume!(longest_digit_run(&text) < 13);
        prop_assert!(!contains_card_number(&text), "{text:?}");
        if !text.trim().is_empty() {
            prop_assert!(Reason::parse(&text).is_ok(), "{text:?}");
            prop_assert!(Note::parse(&text).is_ok(), "{text:?}");
        }
    }
}
