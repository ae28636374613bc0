//! Golden JSON: the stored form of every event type, pinned byte for byte.
//!
//! Stored events are a compatibility boundary. Each type has one file,
//! `tests/golden/<EventType>.json`, holding the pretty-printed JSON of a
//! sample with every optional field filled. A change of shape fails here;
//! it must become a new schema version, not an edit in place.
//!
//! After a deliberate change, run with `UPDATE_GOLDEN=1` to rewrite the
//! files; the run still fails once so that the new files get reviewed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use domain::deadline::PolicyName;
use domain::events::{
    CallbackEvent, ForgetCause, HoldEvent, IntegrationEvent, LedgerEvent, PrivacyEvent,
    RefusalReason, RequestEvent, ResourceEvent, WorkspaceEvent, LATEST_SCHEMA_VERSION,
};
use domain::ids::{AccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId};
use domain::personal::Personal;
use domain::subject::{Platform, Subject};
use domain::values::{
    Channel, ErasureStep, HoldKind, Initiator, RetentionBasis, Role, Verification,
};
use uuid::Uuid;

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .unwrap()
        .with_timezone(&Utc)
}

fn s(raw: &str) -> Subject {
    Subject::parse(raw).unwrap()
}

fn ws() -> WorkspaceId {
    WorkspaceId::parse("ws-42").unwrap()
}

fn alice() -> AccountId {
    AccountId::parse("acct-7").unwrap()
}

fn request() -> RequestId {
    RequestId::parse("0190a0b0-0000-7000-8000-000000000001").unwrap()
}

fn hold() -> HoldId {
    HoldId::parse("0190a0b0-0000-7000-8000-0000000000a1").unwrap()
}

fn task() -> TaskId {
    TaskId::from_uuid(Uuid::parse_str("0190a0b0-0000-7000-8000-0000000000b1").unwrap())
}

/// A personal value as the ledger stores it: sealed under `owner`'s key,
/// bound to the event id and the field.
fn sealed(owner: &str, field: &str) -> Personal {
    Personal::from_stored(format!(
        "sealed1:{owner}:0190a0b0-0000-7000-8000-0000000000e1:{field}:\
         3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ))
    .unwrap()
}

fn by_alice() -> Initiator {
    Initiator::Member { account: alice() }
}

/// One sample per event type, with the tags it must carry.
fn samples() -> Vec<(LedgerEvent, Vec<&'static str>)> {
    let received = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    vec![
        (
            WorkspaceEvent::WorkspaceCreated {
                workspace: ws(),
                owner: alice(),
            }
            .into(),
            vec!["workspace:ws-42", "account:acct-7"],
        ),
        (
            WorkspaceEvent::MemberAdded {
                workspace: ws(),
                account: AccountId::parse("acct-8").unwrap(),
                role: Role::Admin,
                added_by: by_alice(),
            }
            .into(),
            vec!["workspace:ws-42", "account:acct-8"],
        ),
        (
            WorkspaceEvent::MemberRemoved {
                workspace: ws(),
                account: AccountId::parse("acct-8").unwrap(),
                removed_by: Initiator::Platform,
            }
            .into(),
            vec!["workspace:ws-42", "account:acct-8"],
        ),
        (
            ResourceEvent::ResourceRegistered {
                resource: s("transcript:t-9"),
                workspace: Some(ws()),
                account: Some(alice()),
                parent: Some(s("project:p-1")),
                derived_from: Some(s("file:f-9")),
                references: vec![s("canvas:cv-1"), s("file:f-9")],
                created_by: Some(alice()),
            }
            .into(),
            vec![
                "transcript:t-9",
                "workspace:ws-42",
                "account:acct-7",
                "project:p-1",
                "file:f-9",
                "canvas:cv-1",
            ],
        ),
        (
            IntegrationEvent::IntegrationConnected {
                integration: IntegrationId::parse("ig-3").unwrap(),
                workspace: ws(),
                platform: Platform::Instagram,
                external_account: "kh1-5f0c2a9e7b3d41c8a6e2f9d0b7c4a1e3"
                    .to_owned()
                    .try_into()
                    .unwrap(),
                connected_by: by_alice(),
            }
            .into(),
            vec![
                "integration:ig-3",
                "workspace:ws-42",
                "instagram:kh1-5f0c2a9e7b3d41c8a6e2f9d0b7c4a1e3",
            ],
        ),
        (
            IntegrationEvent::IntegrationDisconnected {
                integration: IntegrationId::parse("ig-3").unwrap(),
                workspace: ws(),
                platform: Platform::Instagram,
                external_account: "kh1-5f0c2a9e7b3d41c8a6e2f9d0b7c4a1e3"
                    .to_owned()
                    .try_into()
                    .unwrap(),
                disconnected_by: Initiator::Platform,
                channel: Channel::MetaCallback,
                reason: Some(sealed(
                    "instagram:kh1-5f0c2a9e7b3d41c8a6e2f9d0b7c4a1e3",
                    "reason",
                )),
                platform_data_notice: domain::integration::platform_data_notice(
                    Platform::Instagram,
                ),
            }
            .into(),
            vec![
                "integration:ig-3",
                "workspace:ws-42",
                "instagram:kh1-5f0c2a9e7b3d41c8a6e2f9d0b7c4a1e3",
            ],
        ),
        (
            HoldEvent::HoldPlaced {
                hold: hold(),
                scope: s("file:f-9"),
                kind: HoldKind::Legal,
                matter: sealed("hold:0190a0b0-0000-7000-8000-0000000000a1", "matter"),
                reason: sealed("hold:0190a0b0-0000-7000-8000-0000000000a1", "reason"),
                placed_by: "legal:dana".to_owned(),
            }
            .into(),
            vec![
                "hold:0190a0b0-0000-7000-8000-0000000000a1",
                "hold-scope:file:f-9",
                "file:f-9",
            ],
        ),
        (
            HoldEvent::HoldLifted {
                hold: hold(),
                scope: s("file:f-9"),
                reason: sealed("hold:0190a0b0-0000-7000-8000-0000000000a1", "reason"),
                lifted_by: "legal:dana".to_owned(),
            }
            .into(),
            vec![
                "hold:0190a0b0-0000-7000-8000-0000000000a1",
                "hold-scope:file:f-9",
                "file:f-9",
            ],
        ),
        (
            RequestEvent::DeletionRequested {
                request: request(),
                scope: s("account:acct-7"),
                channel: Channel::EmailToSupport,
                policy: PolicyName::Gdpr,
                asked_policy: None,
                received_at: received,
                due_at: at("2026-04-01T23:59:59.999999Z"),
                requested_by: by_alice(),
                recorded_by: Some("support:olga".to_owned()),
                verification: Verification::Verified {
                    method: sealed(
                        "request:0190a0b0-0000-7000-8000-000000000001",
                        "verification",
                    ),
                    by: "support:olga".to_owned(),
                },
                contact: Some(sealed(
                    "request:0190a0b0-0000-7000-8000-000000000001",
                    "contact",
                )),
                confirmation_code: Some("c0de-7f3a".to_owned()),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "account:acct-7",
            ],
        ),
        (
            RequestEvent::RequestVerified {
                request: request(),
                method: sealed("request:0190a0b0-0000-7000-8000-000000000001", "method"),
                verified_by: "support:olga".to_owned(),
            }
            .into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            RequestEvent::DeletionRefused {
                request: request(),
                reason: RefusalReason::SoleOwnerOfSharedWorkspace {
                    workspaces: vec![ws()],
                },
            }
            .into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            RequestEvent::DeletionBlocked {
                request: request(),
                holds: vec![hold()],
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "hold:0190a0b0-0000-7000-8000-0000000000a1",
            ],
        ),
        (
            RequestEvent::DeletionResumed { request: request() }.into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            RequestEvent::DeadlineExtended {
                request: request(),
                due_at: at("2026-06-01T23:59:59.999999Z"),
                reason: sealed("request:0190a0b0-0000-7000-8000-000000000001", "reason"),
            }
            .into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            RequestEvent::ReceiptConfirmed {
                request: request(),
                confirmed_at: at("2026-05-04T09:00:00Z"),
            }
            .into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            RequestEvent::TaskReleased {
                request: request(),
                task: task(),
                step: ErasureStep::PurgeDerivedArtifact,
                target: s("transcript:t-9"),
                workspace: Some(ws()),
                covered_by: vec![s("workspace:ws-42"), s("file:f-9"), s("transcript:t-9")],
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "task:0190a0b0-0000-7000-8000-0000000000b1",
                "transcript:t-9",
                "workspace:ws-42",
                "file:f-9",
            ],
        ),
        (
            RequestEvent::TaskClaimed {
                request: request(),
                task: task(),
                worker: "index-worker-2".to_owned(),
                lease_until: at("2026-03-01T10:05:00Z"),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "task:0190a0b0-0000-7000-8000-0000000000b1",
            ],
        ),
        (
            RequestEvent::TaskFailed {
                request: request(),
                task: task(),
                worker: "index-worker-2".to_owned(),
                attempt: 2,
                error: sealed("request:0190a0b0-0000-7000-8000-000000000001", "error"),
                next_attempt_at: at("2026-03-01T10:07:00Z"),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "task:0190a0b0-0000-7000-8000-0000000000b1",
            ],
        ),
        (
            RequestEvent::TaskCompleted {
                request: request(),
                task: task(),
                step: ErasureStep::PurgeDerivedArtifact,
                target: s("transcript:t-9"),
                worker: "index-worker-2".to_owned(),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "task:0190a0b0-0000-7000-8000-0000000000b1",
                "transcript:t-9",
                "erased:transcript:t-9",
            ],
        ),
        (
            RequestEvent::RetentionExceptionRecorded {
                request: request(),
                target: s("billing-record:b-1"),
                basis: RetentionBasis::Billing,
                until: at("2033-02-27T10:00:00Z"),
                note: sealed("request:0190a0b0-0000-7000-8000-000000000001", "note"),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "billing-record:b-1",
            ],
        ),
        (
            RequestEvent::DeletionCompleted {
                request: request(),
                completed_at: at("2026-03-03T09:30:00Z"),
                residual_copies_purged_by: at("2026-04-07T09:30:00Z"),
            }
            .into(),
            vec!["request:0190a0b0-0000-7000-8000-000000000001"],
        ),
        (
            CallbackEvent::CallbackRefused {
                endpoint: "meta/data-deletion".to_owned(),
                reason: "signature does not match".to_owned(),
                received_at: received,
            }
            .into(),
            vec!["callbacks"],
        ),
        (
            CallbackEvent::AccessRefused {
                route: "POST /v1/holds".to_owned(),
                status: 403,
                principal: Some("file-manager".to_owned()),
                reason: "role service may not do this: placing and lifting holds (role legal)"
                    .to_owned(),
                received_at: received,
            }
            .into(),
            vec!["access-refusals"],
        ),
        (
            PrivacyEvent::SubjectForgotten {
                subject: s("request:0190a0b0-0000-7000-8000-000000000001"),
                cause: ForgetCause::AfterRequestCompleted,
                forgotten_at: at("2026-04-02T09:30:00Z"),
            }
            .into(),
            vec![
                "request:0190a0b0-0000-7000-8000-000000000001",
                "forgotten:request:0190a0b0-0000-7000-8000-000000000001",
            ],
        ),
    ]
}

/// Samples of the later schema versions of a type, each beside its
/// type's first-version sample in [`samples`]: the shapes stored since.
fn later_versions() -> Vec<LedgerEvent> {
    let received = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    vec![RequestEvent::DeletionRequested {
        request: request(),
        scope: s("integration:yt-3"),
        channel: Channel::InProduct,
        policy: PolicyName::YoutubeApiUserData,
        asked_policy: Some(PolicyName::Ccpa),
        received_at: received,
        due_at: at("2026-03-08T10:00:00Z"),
        requested_by: by_alice(),
        recorded_by: Some("support:olga".to_owned()),
        verification: Verification::NotRequired,
        contact: Some(sealed(
            "request:0190a0b0-0000-7000-8000-000000000001",
            "contact",
        )),
        confirmation_code: Some("c0de-7f3a".to_owned()),
    }
    .into()]
}

/// Every sample, each first-version sample and each later one.
fn every_version() -> Vec<LedgerEvent> {
    samples()
        .into_iter()
        .map(|(event, _)| event)
        .chain(later_versions())
        .collect()
}

/// `<EventType>.json` for schema version 1, `<EventType>.v<N>.json` after.
fn golden_name(event_type: &str, version: u16) -> String {
    match version {
        1 => format!("{event_type}.json"),
        n => format!("{event_type}.v{n}.json"),
    }
}

fn golden_path(event: &LedgerEvent) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(golden_name(event.event_type(), event.schema_version()))
}

/// The first differing line, for a message a reviewer can read.
fn first_difference(want: &str, got: &str) -> String {
    let mut want_lines = want.lines();
    let mut got_lines = got.lines();
    for line in 1.. {
        match (want_lines.next(), got_lines.next()) {
            (None, None) => return "only in the final newline".to_owned(),
            (w, g) if w != g => {
                return format!(
                    "line {line}\n  - {}\n  + {}",
                    w.unwrap_or("<end of file>"),
                    g.unwrap_or("<end of file>")
                );
            }
            _ => {}
        }
    }
    unreachable!()
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<&str> = samples().iter().map(|(e, _)| e.event_type()).collect();
    let known: BTreeSet<&str> = LedgerEvent::all_types().into_iter().collect();
    assert_eq!(
        sampled.len(),
        samples().len(),
        "one sample per event type, no more"
    );
    for (event, _) in samples() {
        assert_eq!(
            event.schema_version(),
            1,
            "{}: samples() holds first versions; later ones go in later_versions()",
            event.event_type()
        );
    }
    for event in later_versions() {
        assert!(event.schema_version() > 1, "{event:?}");
        assert!(event.schema_version() <= LATEST_SCHEMA_VERSION, "{event:?}");
    }
    assert_eq!(
        sampled, known,
        "every event type needs a golden sample (and a file under tests/golden/)"
    );
}

#[test]
fn every_golden_file_belongs_to_an_event_type() {
    let known: BTreeSet<String> = every_version()
        .iter()
        .map(|event| golden_name(event.event_type(), event.schema_version()))
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(known.contains(&name), "{name} names no event type");
    }
}

#[test]
fn events_serialize_exactly_as_their_golden_files() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    for event in every_version() {
        let event_type = event.event_type();
        let got = serde_json::to_string_pretty(&event).unwrap() + "\n";
        let path = golden_path(&event);
        let want = std::fs::read_to_string(&path).ok();
        if want.as_deref() == Some(got.as_str()) {
            continue;
        }
        problems.push(match &want {
            None => format!("{event_type}: no golden file at {}", path.display()),
            Some(want) => format!(
                "{event_type}: serialized form differs from {} at {}",
                path.display(),
                first_difference(want, &got)
            ),
        });
        if update {
            std::fs::write(&path, &got).unwrap();
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        if update {
            "UPDATE_GOLDEN=1: the files were rewritten; review the diff, then run again"
        } else {
            "a stored event must never change shape: add a schema version instead, \
             or, for a deliberate new type, run with UPDATE_GOLDEN=1 and review"
        }
    );
}

#[test]
fn golden_files_decode_to_their_samples() {
    for event in every_version() {
        let event_type = event.event_type();
        let path = golden_path(&event);
        let Ok(stored) = std::fs::read_to_string(&path) else {
            // Reported by events_serialize_exactly_as_their_golden_files.
            continue;
        };
        let payload: serde_json::Value = serde_json::from_str(&stored).unwrap();
        let decoded = LedgerEvent::decode(event_type, event.schema_version(), &payload)
            .unwrap_or_else(|e| panic!("{event_type}: {e}"));
        assert_eq!(decoded, event, "{event_type}");
        assert_eq!(decoded.event_type(), event_type);
    }
}

#[test]
fn a_payload_decodes_only_under_its_own_type_and_schema() {
    let (event, _) = samples().remove(0);
    let payload = serde_json::to_value(&event).unwrap();
    assert!(LedgerEvent::decode("MemberAdded", 1, &payload).is_err());
    assert!(LedgerEvent::decode("WorkspaceCreated", 2, &payload).is_err());
    assert!(LedgerEvent::decode("NoSuchEvent", 1, &payload).is_err());
    // A request that names the policy its caller asked for is version 2
    // and decodes only as such; one that does not, only as version 1.
    let asked = later_versions().remove(0);
    let payload = serde_json::to_value(&asked).unwrap();
    assert_eq!(asked.schema_version(), 2);
    assert_eq!(
        LedgerEvent::decode("DeletionRequested", 2, &payload),
        Ok(asked)
    );
    assert!(LedgerEvent::decode("DeletionRequested", 1, &payload).is_err());
    let (first, _) = samples()
        .into_iter()
        .find(|(event, _)| event.event_type() == "DeletionRequested")
        .unwrap();
    let payload = serde_json::to_value(&first).unwrap();
    assert!(LedgerEvent::decode("DeletionRequested", 2, &payload).is_err());
    assert!(LedgerEvent::decode("DeletionRequested", LATEST_SCHEMA_VERSION + 1, &payload).is_err());
}

#[test]
fn every_sample_carries_its_tags() {
    for (event, tags) in samples() {
        assert_eq!(event.tags(), tags, "{}", event.event_type());
    }
}
