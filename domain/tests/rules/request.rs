//! Deletion requests and their erasure tasks: R1–R3, R5–R9, R11–R15.

use chrono::{Datelike, Duration};
use domain::deadline::PolicyName;
use domain::error::DomainError;
use domain::events::{LedgerEvent, RefusalReason, RequestEvent, WorkspaceEvent};
use domain::hold::place;
use domain::integration::connect;
use domain::inventory::Inventory;
use domain::membership::{add_member, create_workspace, register_resource};
use domain::request::{
    billing_retention_end, claim, complete_task, confirm_receipt, fail_task, progress, receive,
    record_retention, verify, NewRequest, Request, RequestState, BILLING_RETENTION_YEARS,
};
use domain::subject::{Platform, Subject};
use domain::text::Contact;
use domain::values::{
    Channel, ErasureStep, HoldKind, Initiator, RetentionBasis, Role, Verification,
};

use crate::support::*;

use ErasureStep::*;

/// The request aggregate's check for a new request: `receive` against the
/// history, with the fixed clock and task ids 101, 102, ...
fn check(case: &str, history: Vec<LedgerEvent>, new: NewRequest, expect: &Expect<RequestEvent>) {
    given(history)
        .when(|inv| receive(inv, new, &table(), now(), &mut new_task_ids()))
        .then(expect, case);
}

/// `progress` as a decision, for the reaction to a lifted hold.
fn progress_now(inv: &Inventory, request: &Request) -> Result<Vec<RequestEvent>, DomainError> {
    Ok(progress(request, inv, &table(), now(), &mut new_task_ids()))
}

/// One planned step: (step, target, covered_by); all in `workspace`.
type Step<'a> = (ErasureStep, &'a str, &'a [&'a str]);

/// The TaskReleased events of request `n`, task ids from `first_task`.
fn tasks(n: u128, first_task: u128, workspace: Option<&str>, steps: &[Step]) -> Vec<RequestEvent> {
    steps
        .iter()
        .zip(first_task..)
        .map(|((step, target, covered), task_n)| {
            released(n, task_n, *step, target, workspace, covered)
        })
        .collect()
}

/// What `receive` records first for `new`, received at [`now`].
fn requested_as(new: &NewRequest, verification: Verification) -> RequestEvent {
    RequestEvent::DeletionRequested {
        request: new.request,
        scope: new.scope.clone(),
        channel: new.channel,
        policy: new.policy,
        asked_policy: new.asked_policy.filter(|asked| *asked != new.policy),
        received_at: now(),
        due_at: table().due_at(new.policy, now()),
        requested_by: new.requested_by.clone(),
        recorded_by: new.recorded_by.clone(),
        verification,
        contact: new.contact.clone().map(Into::into),
        confirmation_code: new.confirmation_code.clone(),
    }
}

fn completed_at(n: u128, at: chrono::DateTime<chrono::Utc>) -> RequestEvent {
    RequestEvent::DeletionCompleted {
        request: req(n),
        completed_at: at,
        residual_copies_purged_by: at + Duration::days(i64::from(table().residual_copies_days)),
    }
}

fn ledger_of(events: Vec<RequestEvent>) -> impl Iterator<Item = LedgerEvent> {
    events.into_iter().map(LedgerEvent::from)
}

/// Receives `new`, then claims and completes every task it released, in
/// order, as a worker would: the history of an erasure carried through.
fn carried_through(
    mut history: Vec<LedgerEvent>,
    new: NewRequest,
    first_task: u128,
) -> Vec<LedgerEvent> {
    let id = new.request;
    let inv = Inventory::from_events(&history);
    let received = receive(&inv, new, &table(), now(), &mut task_ids_from(first_task)).unwrap();
    history.extend(ledger_of(received.clone()));
    let mut request = Request::from_events(&received).unwrap();
    let task_ids: Vec<_> = request.tasks.keys().copied().collect();
    for task_id in task_ids {
        let inv = Inventory::from_events(&history);
        let worker = || "worker-1".to_owned();
        let claimed = claim(&request, &inv, task_id, worker(), minutes_later(10), now()).unwrap();
        claimed.iter().for_each(|e| request.apply(e));
        let done = complete_task(&request, task_id, worker(), &table(), now()).unwrap();
        done.iter().for_each(|e| request.apply(e));
        history.extend(ledger_of(claimed));
        history.extend(ledger_of(done));
    }
    assert_eq!(request.state(), RequestState::Completed, "{id}");
    history
}

// --------------------------------------------------------------------- files

/// ws-1 (alice) with file f-1 in project p-1, three derived artifacts, and
/// a canvas that shows the file.
fn file_with_artifacts() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        resource("project:p-1", "ws-1").event(),
        resource("file:f-1", "ws-1").parent("project:p-1").event(),
        artifact("transcript:t-1", "file:f-1", "ws-1").event(),
        artifact("search-index-entry:si-1", "file:f-1", "ws-1").event(),
        artifact("thumbnail:th-1", "file:f-1", "ws-1").event(),
        resource("canvas:cv-1", "ws-1")
            .parent("project:p-1")
            .references(&["file:f-1"])
            .event(),
    ]
}

const FILE_COVER: &[&str] = &["workspace:ws-1", "project:p-1", "file:f-1"];

/// R6 / R8: the plan for deleting file f-1 of [`file_with_artifacts`].
fn file_plan(n: u128, first_task: u128) -> Vec<RequestEvent> {
    tasks(
        n,
        first_task,
        Some("ws-1"),
        &[
            (RemoveRecord, "file:f-1", FILE_COVER),
            (
                PurgeDerivedArtifact,
                "transcript:t-1",
                &[
                    "workspace:ws-1",
                    "project:p-1",
                    "file:f-1",
                    "transcript:t-1",
                ],
            ),
            (
                PurgeDerivedArtifact,
                "thumbnail:th-1",
                &[
                    "workspace:ws-1",
                    "project:p-1",
                    "file:f-1",
                    "thumbnail:th-1",
                ],
            ),
            (
                RemoveSearchIndexEntries,
                "search-index-entry:si-1",
                &[
                    "workspace:ws-1",
                    "project:p-1",
                    "file:f-1",
                    "search-index-entry:si-1",
                ],
            ),
            (RemoveReferences, "file:f-1", FILE_COVER),
            (DeleteStorageObject, "file:f-1", FILE_COVER),
        ],
    )
}

#[test]
fn r6_file_deletion_removes_the_record_every_derived_artifact_and_the_storage_object() {
    let new = new_request(1, "file:f-1", member("alice"));
    let mut want = vec![requested_as(&new, Verification::NotRequired)];
    want.extend(file_plan(1, 101));
    check("file", file_with_artifacts(), new, &Expect::Events(want));
}

#[test]
fn r8_references_to_a_deleted_file_are_removed() {
    let events = given(file_with_artifacts())
        .when(|inv| {
            receive(
                inv,
                new_request(1, "file:f-1", member("alice")),
                &table(),
                now(),
                &mut new_task_ids(),
            )
        })
        .events();
    let references: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RequestEvent::TaskReleased { step, target, .. } if *step == RemoveReferences => {
                Some(target.to_string())
            }
            _ => None,
        })
        .collect();
    // One step for the file: the worker removes or disables the project,
    // folder, canvas, comment and AI-result references to it.
    assert_eq!(references, vec!["file:f-1"]);
    // The canvas that refers to the file is not itself deleted.
    assert!(events.iter().all(|e| !matches!(
        e,
        RequestEvent::TaskReleased { target, .. } if target == &s("canvas:cv-1")
    )));
}

/// Request 1 for file f-1 with its plan released as tasks 1..=6.
fn file_request_released() -> Vec<LedgerEvent> {
    let mut history = file_with_artifacts();
    history.push(requested(1, "file:f-1", member("alice")).into());
    history.extend(ledger_of(file_plan(1, 1)));
    history
}

#[test]
fn r6_a_failed_attempt_is_recorded_and_retried_later() {
    let mut history = file_request_released();
    history.push(claimed(1, 6, "worker-1").into());
    let fail = |at| {
        move |_: &Inventory, r: &Request| {
            fail_task(r, task(6), "worker-1".into(), note("storage timeout"), at)
        }
    };
    let failed = |attempt, next_attempt_at| RequestEvent::TaskFailed {
        request: req(1),
        task: task(6),
        worker: "worker-1".into(),
        attempt,
        error: note("storage timeout").into(),
        next_attempt_at,
    };
    given(history.clone())
        .when_request(fail(now()))
        .then_events(vec![failed(1, minutes_later(1))]);
    given(history.clone())
        .when_request(|_, r| fail_task(r, task(6), "worker-2".into(), note("x"), now()))
        .then_error(DomainError::NotLeaseHolder {
            task: task(6),
            worker: "worker-2".into(),
        });

    history.push(failed(1, minutes_later(1)).into());
    let claim_at = |at| {
        move |inv: &Inventory, r: &Request| {
            claim(r, inv, task(6), "worker-2".into(), minutes_later(30), at)
        }
    };
    given(history.clone())
        .when_request(claim_at(now() + Duration::seconds(30)))
        .then_error(DomainError::TaskNotClaimable {
            task: task(6),
            why: format!("next attempt not before {}", minutes_later(1)),
        });
    given(history.clone())
        .when_request(claim_at(minutes_later(1)))
        .then_events(vec![RequestEvent::TaskClaimed {
            request: req(1),
            task: task(6),
            worker: "worker-2".into(),
            lease_until: minutes_later(30),
        }]);

    // The second failure waits twice as long.
    history.push(claimed(1, 6, "worker-1").into());
    given(history)
        .when_request(fail(minutes_later(2)))
        .then_events(vec![failed(2, minutes_later(4))]);
}

// --------------------------------------------------------------------- holds

#[test]
fn r7_deletion_meeting_a_hold_is_blocked_not_refused() {
    let mut history = file_with_artifacts();
    history.push(placed(1, "file:f-1"));
    let new = new_request(1, "file:f-1", member("alice"));
    let want = vec![
        requested_as(&new, Verification::NotRequired),
        blocked(1, &[1]),
    ];
    check(
        "held file",
        history.clone(),
        new,
        &Expect::Events(want.clone()),
    );
    let request = Request::from_events(&want).unwrap();
    assert_eq!(request.state(), RequestState::Blocked);
    assert_eq!(request.refused, None);
}

#[test]
fn r7_deletion_resumes_only_when_the_last_of_two_covering_holds_is_lifted() {
    // Two holds cover the file: one on it, one on its workspace.
    let mut history = file_with_artifacts();
    history.push(placed(1, "file:f-1"));
    history.push(placed(2, "workspace:ws-1"));
    let new = new_request(1, "file:f-1", member("alice"));
    let received = given(history.clone())
        .when(|inv| receive(inv, new.clone(), &table(), now(), &mut new_task_ids()))
        .events();
    assert_eq!(
        received,
        vec![
            requested_as(&new, Verification::NotRequired),
            blocked(1, &[1, 2])
        ]
    );
    history.extend(ledger_of(received));

    // The first lift: still blocked, now by the second hold only; nothing
    // resumes and no task is released.
    history.push(lifted(1, "file:f-1"));
    let after_first = given(history.clone()).when_request(progress_now).events();
    assert_eq!(after_first, vec![blocked(1, &[2])]);
    history.extend(ledger_of(after_first));
    given(history.clone())
        .when_request(progress_now)
        .then_events(vec![]);

    // The last lift: resumed, and the plan released.
    history.push(lifted(2, "workspace:ws-1"));
    let mut want = vec![RequestEvent::DeletionResumed { request: req(1) }];
    want.extend(file_plan(1, 101));
    given(history).when_request(progress_now).then_events(want);
}

#[test]
fn r1_r7_a_retention_exception_recorded_while_blocked_does_not_stand_for_the_plan() {
    // Blocked before any task was released, a record is kept on purpose;
    // when the hold is lifted, the erasure is still planned and released,
    // not completed with nothing erased.
    let mut history = file_with_artifacts();
    block_request_on(&mut history, "file:f-1");
    let kept = given(history.clone())
        .when_request(|inventory: &Inventory, r: &Request| {
            record_retention(
                r,
                inventory,
                s("file:f-1"),
                RetentionBasis::Security,
                days_later(90),
                note("access log kept for incident response"),
                now(),
            )
        })
        .events();
    assert_eq!(kept.len(), 1, "{kept:?}");
    history.extend(ledger_of(kept));
    history.push(lifted(1, "file:f-1"));
    let mut want = vec![RequestEvent::DeletionResumed { request: req(1) }];
    want.extend(file_plan(1, 101));
    given(history).when_request(progress_now).then_events(want);
}

#[test]
fn r7_holds_stop_claims_of_the_tasks_they_cover() {
    let hold_ids = |holds: &[u128]| {
        holds
            .iter()
            .map(|h| hold(*h).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    /// (case, holds placed after release, task claimed, blocking holds)
    type Case<'a> = (&'a str, &'a [(u128, &'a str)], u128, &'a [u128]);
    let cases: [Case; 6] = [
        ("no hold", &[], 1, &[]),
        ("hold on the file, file task", &[(1, "file:f-1")], 1, &[1]),
        (
            "hold on the file, derived artifact's task",
            &[(1, "file:f-1")],
            2,
            &[1],
        ),
        ("hold on the workspace", &[(1, "workspace:ws-1")], 4, &[1]),
        (
            "two holds",
            &[(1, "project:p-1"), (2, "transcript:t-1")],
            2,
            &[1, 2],
        ),
        ("hold on another file", &[(1, "file:f-2")], 2, &[]),
    ];
    for (case, holds, task_n, blocking) in cases {
        let mut history = file_request_released();
        history.extend(holds.iter().map(|(n, scope)| placed(*n, scope)));
        let expect = if blocking.is_empty() {
            Expect::Events(vec![RequestEvent::TaskClaimed {
                request: req(1),
                task: task(task_n),
                worker: "worker-1".into(),
                lease_until: minutes_later(10),
            }])
        } else {
            Expect::Error(DomainError::TaskNotClaimable {
                task: task(task_n),
                why: format!("blocked by hold {}", hold_ids(blocking)),
            })
        };
        given(history)
            .when_request(|inv, r| {
                claim(
                    r,
                    inv,
                    task(task_n),
                    "worker-1".into(),
                    minutes_later(10),
                    now(),
                )
            })
            .then(&expect, case);
    }
}

#[test]
fn r7_a_hold_placed_after_release_suspends_the_pending_tasks() {
    let mut history = file_request_released();
    history.push(placed(1, "thumbnail:th-1"));
    // The reaction to the new hold: the request shows the hold.
    let events = given(history.clone()).when_request(progress_now).events();
    assert_eq!(events, vec![blocked(1, &[1])]);
    history.extend(ledger_of(events));
    given(history.clone())
        .when_request(|inv, r| claim(r, inv, task(3), "worker-1".into(), minutes_later(10), now()))
        .then_error(DomainError::TaskNotClaimable {
            task: task(3),
            why: format!("blocked by hold {}", hold(1)),
        });
    // Lifted: resumed; the tasks were released before, so none again.
    history.push(lifted(1, "thumbnail:th-1"));
    given(history)
        .when_request(progress_now)
        .then_events(vec![RequestEvent::DeletionResumed { request: req(1) }]);
}

// ------------------------------------------------------------- integrations

/// ws-1 (alice) with YouTube connection yt-1, disconnected.
fn disconnected_youtube() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        connected("yt-1", "ws-1", Platform::Youtube, "UC-channel-1"),
        disconnected("yt-1", "ws-1", Platform::Youtube, "UC-channel-1"),
    ]
}

const YT_COVER: &[&str] = &["workspace:ws-1", "integration:yt-1"];

fn integration_plan(n: u128, first_task: u128) -> Vec<RequestEvent> {
    tasks(
        n,
        first_task,
        Some("ws-1"),
        &[
            (RevokeTokens, "integration:yt-1", YT_COVER),
            (ClearAnalyticsCache, "integration:yt-1", YT_COVER),
            (RemoveAnalyticsRows, "integration:yt-1", YT_COVER),
            (DeactivateConnectionRecord, "integration:yt-1", YT_COVER),
        ],
    )
}

#[test]
fn r1_integration_clean_up_steps_are_planned_each_as_a_recorded_task() {
    let new = new_request(1, "integration:yt-1", member("alice"));
    let mut want = vec![requested_as(&new, Verification::NotRequired)];
    want.extend(integration_plan(1, 101));
    check(
        "disconnected youtube",
        disconnected_youtube(),
        new,
        &Expect::Events(want),
    );
}

#[test]
fn r1_a_kept_record_is_a_retention_exception_with_basis_and_end_date() {
    let mut history = disconnected_youtube();
    history.push(requested(1, "integration:yt-1", member("alice")).into());
    history.extend(ledger_of(integration_plan(1, 1)));
    let keep = |until| {
        move |inventory: &Inventory, r: &Request| {
            record_retention(
                r,
                inventory,
                s("integration:yt-1"),
                RetentionBasis::Security,
                until,
                note("token revocation log kept for incident response"),
                now(),
            )
        }
    };
    given(history.clone())
        .when_request(keep(days_later(90)))
        .then_events(vec![RequestEvent::RetentionExceptionRecorded {
            request: req(1),
            target: s("integration:yt-1"),
            basis: RetentionBasis::Security,
            until: days_later(90),
            note: note("token revocation log kept for incident response").into(),
        }]);
    given(history.clone())
        .when_request(keep(now()))
        .then_invalid("until");
    history.push(completed_at(1, now()).into());
    given(history)
        .when_request(keep(days_later(90)))
        .then_error(DomainError::RequestClosed { state: "completed" });
}

#[test]
fn r2_no_planned_step_targets_data_the_platform_holds() {
    let mut history = disconnected_youtube();
    history.push(connected(
        "ig-1",
        "ws-1",
        Platform::Instagram,
        "17841400000000001",
    ));
    for scope in [
        "integration:yt-1",
        "instagram:17841400000000001",
        "workspace:ws-1",
    ] {
        let events = given(history.clone())
            .when(|inv| {
                receive(
                    inv,
                    new_request(1, scope, member("alice")),
                    &table(),
                    now(),
                    &mut new_task_ids(),
                )
            })
            .events();
        for event in events {
            if let RequestEvent::TaskReleased { target, .. } = event {
                assert!(
                    !matches!(target, Subject::External(_)),
                    "{scope}: a step targets the platform's own data: {target}"
                );
            }
        }
    }
}

#[test]
fn r3_youtube_api_user_data_is_due_seven_days_after_receipt() {
    let new = NewRequest {
        channel: Channel::GoogleYoutube,
        policy: PolicyName::YoutubeApiUserData,
        ..new_request(1, "integration:yt-1", Initiator::Platform)
    };
    let events = given(disconnected_youtube())
        .when(|inv| receive(inv, new, &table(), now(), &mut new_task_ids()))
        .events();
    let RequestEvent::DeletionRequested {
        received_at,
        due_at,
        policy,
        ..
    } = &events[0]
    else {
        panic!("{events:?}");
    };
    assert_eq!(*policy, PolicyName::YoutubeApiUserData);
    assert_eq!(*received_at, now());
    assert_eq!(*due_at, now() + Duration::days(7));
    assert_eq!(due_at.to_rfc3339(), "2026-03-08T10:00:00+00:00");
}

/// R3: the policy the caller named is recorded beside the one the request
/// is held to when they differ (CCPA's confirmation of receipt still
/// applies), not when they are the same; requests recorded before the
/// field existed read as naming none.
#[test]
fn r3_the_policy_asked_for_is_kept_beside_the_one_held_to() {
    let asked = |asked_policy| {
        let new = NewRequest {
            channel: Channel::GoogleYoutube,
            policy: PolicyName::YoutubeApiUserData,
            asked_policy,
            ..new_request(1, "integration:yt-1", Initiator::Platform)
        };
        let events = given(disconnected_youtube())
            .when(|inv| receive(inv, new, &table(), now(), &mut new_task_ids()))
            .events();
        let RequestEvent::DeletionRequested { asked_policy, .. } = &events[0] else {
            panic!("{events:?}");
        };
        let request = Request::from_events([&events[0]]).unwrap();
        assert_eq!(request.asked_policy, *asked_policy);
        (*asked_policy, serde_json::to_value(&events[0]).unwrap())
    };
    let (kept, json) = asked(Some(PolicyName::Ccpa));
    assert_eq!(kept, Some(PolicyName::Ccpa));
    assert_eq!(json["asked_policy"], "ccpa");
    for same in [Some(PolicyName::YoutubeApiUserData), None] {
        let (kept, json) = asked(same);
        assert_eq!(kept, None);
        assert!(json.get("asked_policy").is_none(), "{json}");
        let read: RequestEvent = serde_json::from_value(json).unwrap();
        assert!(matches!(
            read,
            RequestEvent::DeletionRequested {
                asked_policy: None,
                ..
            }
        ));
    }
}

#[test]
fn ccpa_receipt_is_confirmed_once_and_a_repeat_stores_nothing() {
    let new = NewRequest {
        policy: PolicyName::Ccpa,
        ..new_request(1, "integration:yt-1", Initiator::Platform)
    };
    let received = requested_as(&new, Verification::Pending);
    let request = Request::from_events([&received]).unwrap();
    assert_eq!(request.receipt_confirmed_at, None);
    // Told before it was recorded: the time given, between receipt and now.
    let earlier = now() + Duration::hours(1);
    assert_eq!(
        confirm_receipt(&request, Some(earlier), now() + Duration::days(3)),
        Ok(vec![RequestEvent::ReceiptConfirmed {
            request: new.request,
            confirmed_at: earlier,
        }])
    );
    for wrong in [now() - Duration::seconds(1), now() + Duration::days(4)] {
        let refused = confirm_receipt(&request, Some(wrong), now() + Duration::days(3));
        assert!(
            matches!(&refused, Err(DomainError::InvalidInput(e)) if e.field == "confirmed_at"),
            "{wrong}: {refused:?}"
        );
    }
    let later = now() + Duration::days(2);
    let confirmed = confirm_receipt(&request, None, later).unwrap();
    assert_eq!(
        confirmed,
        vec![RequestEvent::ReceiptConfirmed {
            request: new.request,
            confirmed_at: later,
        }]
    );
    let request = Request::from_events([&received, &confirmed[0]]).unwrap();
    assert_eq!(request.receipt_confirmed_at, Some(later));
    assert_eq!(
        confirm_receipt(&request, None, later + Duration::days(1)),
        Ok(vec![])
    );
}

#[test]
fn r5_external_account_scope_cleans_every_matching_connection_in_every_workspace() {
    let history = vec![
        created("ws-1", "alice"),
        created("ws-2", "bob"),
        connected("ig-1", "ws-1", Platform::Instagram, "17841400000000001"),
        connected("ig-2", "ws-2", Platform::Instagram, "17841400000000001"),
        // Deauthorized earlier: its retained rows still go.
        disconnected("ig-2", "ws-2", Platform::Instagram, "17841400000000001"),
        connected("ig-3", "ws-2", Platform::Instagram, "17841400000000002"),
        connected("tt-1", "ws-1", Platform::Tiktok, "17841400000000001"),
    ];
    let new = NewRequest {
        channel: Channel::MetaCallback,
        confirmation_code: Some("c0de-1".into()),
        ..new_request(1, "instagram:17841400000000001", Initiator::Platform)
    };
    let mut want = vec![requested_as(&new, Verification::NotRequired)];
    for (workspace, integration, first_task) in [("ws-1", "ig-1", 101), ("ws-2", "ig-2", 103)] {
        let target = format!("integration:{integration}");
        let cover = [format!("workspace:{workspace}"), target.clone()];
        let cover: Vec<&str> = cover.iter().map(String::as_str).collect();
        want.extend(tasks(
            1,
            first_task,
            Some(workspace),
            &[
                (DeactivateConnectionRecord, &target, &cover),
                (RemoveAnalyticsRows, &target, &cover),
            ],
        ));
    }
    check(
        "two workspaces",
        history.clone(),
        new,
        &Expect::Events(want),
    );

    let nothing = NewRequest {
        channel: Channel::MetaCallback,
        ..new_request(2, "instagram:17841400000000999", Initiator::Platform)
    };
    let want = vec![
        requested_as(&nothing, Verification::NotRequired),
        completed_at(2, now()),
    ];
    check("no match", history, nothing, &Expect::Events(want));
}

// --------------------------------------------------------------- workspaces

/// ws-1 owned by alice with bob (admin) and carol (member), content,
/// settings, a billing record and a YouTube connection.
fn full_workspace() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        added("ws-1", "bob", Role::Admin),
        added("ws-1", "carol", Role::Member),
        resource("project:p-1", "ws-1").event(),
        resource("file:f-1", "ws-1")
            .parent("project:p-1")
            .created_by("carol")
            .event(),
        artifact("transcript:t-1", "file:f-1", "ws-1").event(),
        resource("settings:st-1", "ws-1").event(),
        resource("billing-record:b-1", "ws-1").event(),
        connected("yt-1", "ws-1", Platform::Youtube, "UC-channel-1"),
    ]
}

#[test]
fn r9_only_the_owner_deletes_a_workspace() {
    let refused = || {
        Expect::Error(DomainError::NotWorkspaceOwner {
            workspace: s("workspace:ws-1"),
        })
    };
    // (case, requested by, channel, refused)
    let cases = [
        ("admin", member("bob"), Channel::InProduct, true),
        ("member", member("carol"), Channel::InProduct, true),
        ("outsider", member("mallory"), Channel::InProduct, true),
        (
            "platform in product",
            Initiator::Platform,
            Channel::InProduct,
            true,
        ),
        ("owner", member("alice"), Channel::InProduct, false),
        (
            "platform retention policy",
            Initiator::Platform,
            Channel::RetentionPolicy,
            false,
        ),
    ];
    for (case, by, channel, is_refused) in cases {
        let new = NewRequest {
            channel,
            ..new_request(1, "workspace:ws-1", by)
        };
        if is_refused {
            check(case, full_workspace(), new, &refused());
        } else {
            let events = given(full_workspace())
                .when(|inv| receive(inv, new.clone(), &table(), now(), &mut new_task_ids()))
                .events();
            assert_eq!(
                events[0],
                requested_as(&new, Verification::NotRequired),
                "{case}"
            );
        }
    }
}

fn workspace_plan(n: u128, first_task: u128) -> Vec<RequestEvent> {
    let ws_cover: &[&str] = &["workspace:ws-1"];
    let file_cover: &[&str] = &["workspace:ws-1", "project:p-1", "file:f-1"];
    tasks(
        n,
        first_task,
        Some("ws-1"),
        &[
            (
                RemoveRecord,
                "project:p-1",
                &["workspace:ws-1", "project:p-1"],
            ),
            (RemoveRecord, "file:f-1", file_cover),
            (
                PurgeDerivedArtifact,
                "transcript:t-1",
                &[
                    "workspace:ws-1",
                    "project:p-1",
                    "file:f-1",
                    "transcript:t-1",
                ],
            ),
            (RemoveReferences, "file:f-1", file_cover),
            (DeleteStorageObject, "file:f-1", file_cover),
            (
                RemoveRecord,
                "settings:st-1",
                &["workspace:ws-1", "settings:st-1"],
            ),
            (RevokeTokens, "integration:yt-1", YT_COVER),
            (ClearAnalyticsCache, "integration:yt-1", YT_COVER),
            (RemoveAnalyticsRows, "integration:yt-1", YT_COVER),
            (DeactivateConnectionRecord, "integration:yt-1", YT_COVER),
            (RemoveMembers, "workspace:ws-1", ws_cover),
            (RemoveRecord, "workspace:ws-1", ws_cover),
        ],
    )
}

fn billing_kept(n: u128) -> RequestEvent {
    RequestEvent::RetentionExceptionRecorded {
        request: req(n),
        target: s("billing-record:b-1"),
        basis: RetentionBasis::Billing,
        until: billing_retention_end(now()),
        note: note(
            "billing and transaction records are kept for tax, accounting, \
             fraud-prevention and legal reasons",
        )
        .into(),
    }
}

#[test]
fn r9_workspace_deletion_covers_resources_integrations_members_and_the_record() {
    let new = new_request(1, "workspace:ws-1", member("alice"));
    let mut want = vec![requested_as(&new, Verification::NotRequired)];
    want.extend(workspace_plan(1, 101));
    want.push(billing_kept(1));
    check("owner", full_workspace(), new, &Expect::Events(want));
}

#[test]
fn r14_a_billing_record_is_kept_as_a_retention_exception_until_its_end_date() {
    let events = given(full_workspace())
        .when(|inv| {
            receive(
                inv,
                new_request(1, "workspace:ws-1", member("alice")),
                &table(),
                now(),
                &mut new_task_ids(),
            )
        })
        .events();
    assert!(events.contains(&billing_kept(1)));
    assert!(!events.iter().any(|e| matches!(
        e,
        RequestEvent::TaskReleased { target, .. } if target == &s("billing-record:b-1")
    )));
    // Asked for on its own, it is kept and the request completes at once.
    let new = new_request(2, "billing-record:b-1", member("alice"));
    let want = vec![
        requested_as(&new, Verification::NotRequired),
        billing_kept(2),
        completed_at(2, now()),
    ];
    check(
        "billing record alone",
        full_workspace(),
        new,
        &Expect::Events(want),
    );
}

#[test]
fn r14_a_later_request_keeps_the_first_end_date_and_one_after_it_erases() {
    let mut history = full_workspace();
    history.push(LedgerEvent::Request(billing_kept(1)));
    // Recorded by hand since: neither shortens the billing retention (one
    // on the billing basis ending sooner, one on another basis).
    for (basis, days) in [
        (RetentionBasis::Billing, 30),
        (RetentionBasis::Security, 60),
    ] {
        history.push(LedgerEvent::Request(
            RequestEvent::RetentionExceptionRecorded {
                request: req(1),
                target: s("billing-record:b-1"),
                basis,
                until: days_later(days),
                note: note("kept by hand").into(),
            },
        ));
    }
    let decide_at = |at: chrono::DateTime<chrono::Utc>| {
        given(history.clone())
            .when(|inv| {
                receive(
                    inv,
                    new_request(2, "billing-record:b-1", member("alice")),
                    &table(),
                    at,
                    &mut new_task_ids(),
                )
            })
            .events()
    };
    let end = billing_retention_end(now());
    let released_for_record = |events: &[RequestEvent]| {
        events.iter().any(|e| {
            matches!(e, RequestEvent::TaskReleased { step: RemoveRecord, target, .. }
                if target == &s("billing-record:b-1"))
        })
    };

    // A year on, the retention is recorded again with its first end date
    // (billing_kept(2) ends where billing_kept(1) does), never a later one.
    let a_year_on = decide_at(now() + Duration::days(365));
    assert_eq!(
        end.to_rfc3339(),
        now()
            .with_year(now().year() + BILLING_RETENTION_YEARS as i32)
            .unwrap()
            .to_rfc3339(),
        "seven calendar years"
    );
    assert!(a_year_on.contains(&billing_kept(2)), "{a_year_on:#?}");
    assert!(!released_for_record(&a_year_on), "{a_year_on:#?}");

    // Past its end, the record is erased like any other.
    let after_end = decide_at(end + Duration::days(1));
    assert!(released_for_record(&after_end), "{after_end:#?}");
    assert!(
        !after_end
            .iter()
            .any(|e| matches!(e, RequestEvent::RetentionExceptionRecorded { .. })),
        "{after_end:#?}"
    );
}

// ----------------------------------------------------------------- accounts

/// alice owns ws-1 (shared with carol) and ws-2 (alone), has a profile and
/// credentials, and created a file in ws-1.
fn alice(extra: Vec<LedgerEvent>) -> Vec<LedgerEvent> {
    let mut history = vec![
        created("ws-1", "alice"),
        added("ws-1", "carol", Role::Member),
        created("ws-2", "alice"),
        account_data("account-profile:pr-a", "alice").event(),
        account_data("credentials:cr-a", "alice").event(),
        resource("file:f-1", "ws-1").created_by("alice").event(),
    ];
    history.extend(extra);
    history
}

fn verify_now(inv: &Inventory, r: &Request) -> Result<Vec<RequestEvent>, DomainError> {
    verify(
        r,
        inv,
        note("signed-in session and e-mail code"),
        "support:olga".into(),
        &table(),
        now(),
        &mut new_task_ids(),
    )
}

fn verified_event(n: u128) -> RequestEvent {
    RequestEvent::RequestVerified {
        request: req(n),
        method: note("signed-in session and e-mail code").into(),
        verified_by: "support:olga".into(),
    }
}

fn account_plan(n: u128, first_task: u128) -> Vec<RequestEvent> {
    tasks(
        n,
        first_task,
        None,
        &[
            (
                RemoveRecord,
                "account-profile:pr-a",
                &["account:alice", "account-profile:pr-a"],
            ),
            (
                RemoveRecord,
                "credentials:cr-a",
                &["account:alice", "credentials:cr-a"],
            ),
            (RemoveRecord, "account:alice", &["account:alice"]),
        ],
    )
}

#[test]
fn r11_account_deletion_waits_for_verification() {
    let new = new_request(1, "account:alice", member("alice"));
    let pending = requested_as(&new, Verification::Pending);
    check(
        "unverified",
        alice(vec![]),
        new,
        &Expect::Events(vec![pending.clone()]),
    );
    let request = Request::from_events([&pending]).unwrap();
    assert_eq!(request.state(), RequestState::AwaitingVerification);

    // Nothing moves until verified, whatever reacts to it.
    let history = alice(vec![added("ws-1", "dave", Role::Owner), pending.into()]);
    given(history.clone())
        .when_request(progress_now)
        .then_events(vec![]);
    let mut want = vec![verified_event(1)];
    want.extend(account_plan(1, 101));
    given(history).when_request(verify_now).then_events(want);
}

/// Dave made an owner of ws-1, and his own account's erasure released.
fn dave_owner_being_erased() -> Vec<LedgerEvent> {
    vec![
        added("ws-1", "dave", Role::Owner),
        released(
            2,
            201,
            RemoveRecord,
            "account:dave",
            None,
            &["account:dave"],
        )
        .into(),
    ]
}

#[test]
fn r11_account_deletion_of_the_sole_owner_of_a_shared_workspace_is_refused() {
    let refused = RequestEvent::DeletionRefused {
        request: req(1),
        reason: RefusalReason::SoleOwnerOfSharedWorkspace {
            workspaces: vec![ws("ws-1")],
        },
    };
    let mut allowed = vec![verified_event(1)];
    allowed.extend(account_plan(1, 101));
    // (case, extra history, expected after verification)
    let cases = [
        (
            "shared workspace, sole owner",
            vec![],
            vec![verified_event(1), refused.clone()],
        ),
        (
            "the other member left",
            vec![WorkspaceEvent::MemberRemoved {
                workspace: ws("ws-1"),
                account: acct("carol"),
                removed_by: member("carol"),
            }
            .into()],
            allowed.clone(),
        ),
        (
            "another owner",
            vec![added("ws-1", "dave", Role::Owner)],
            allowed.clone(),
        ),
        (
            // Dave's own deletion is under way: counting on him would let
            // both go and leave carol in a workspace nobody owns.
            "another owner whose account is being erased",
            dave_owner_being_erased(),
            vec![verified_event(1), refused],
        ),
        (
            // Nor does he use it any more: with carol gone, nobody else
            // does, and alice may go.
            "the only other member, an owner whose account is being erased",
            vec![WorkspaceEvent::MemberRemoved {
                workspace: ws("ws-1"),
                account: acct("carol"),
                removed_by: member("carol"),
            }
            .into()]
            .into_iter()
            .chain(dave_owner_being_erased())
            .collect(),
            allowed.clone(),
        ),
        (
            "a member of someone else's shared workspace",
            vec![
                created("ws-3", "erin"),
                added("ws-3", "alice", Role::Admin),
                added("ws-1", "dave", Role::Owner),
            ],
            allowed,
        ),
    ];
    for (case, extra, want) in cases {
        let mut history = alice(extra);
        history.push(
            requested_as(
                &new_request(1, "account:alice", member("alice")),
                Verification::Pending,
            )
            .into(),
        );
        given(history)
            .when_request(verify_now)
            .then(&Expect::Events(want), case);
    }
}

#[test]
fn r11_r7_once_tasks_are_released_a_hold_blocks_the_account_deletion_never_refuses_it() {
    // Verified and planned while no workspace was shared; then a member
    // joins alice's workspace and a hold comes. The tasks already out are
    // suspended by the hold, not abandoned by a late refusal.
    let mut history = alice(vec![WorkspaceEvent::MemberRemoved {
        workspace: ws("ws-1"),
        account: acct("carol"),
        removed_by: member("carol"),
    }
    .into()]);
    history.push(
        requested_as(
            &new_request(1, "account:alice", member("alice")),
            Verification::Pending,
        )
        .into(),
    );
    let planned = given(history.clone()).when_request(verify_now).events();
    let mut want = vec![verified_event(1)];
    want.extend(account_plan(1, 101));
    assert_eq!(planned, want);
    history.extend(ledger_of(planned));
    history.push(added("ws-1", "erin", Role::Member));
    history.push(placed(1, "account:alice"));
    let held = given(history.clone()).when_request(progress_now).events();
    assert_eq!(held, vec![blocked(1, &[1])]);
    history.extend(ledger_of(held));
    history.push(lifted(1, "account:alice"));
    given(history)
        .when_request(progress_now)
        .then_events(vec![RequestEvent::DeletionResumed { request: req(1) }]);
}

#[test]
fn r11_account_deletion_removes_profile_and_credentials_and_leaves_workspace_content() {
    let history = alice(vec![added("ws-1", "dave", Role::Owner)]);
    let history = carried_through(
        history,
        NewRequest {
            verification: Some(note("signed-in session and e-mail code")),
            ..new_request(1, "account:alice", member("alice"))
        },
        1,
    );
    let inv = Inventory::from_events(&history);
    for gone in ["account-profile:pr-a", "credentials:cr-a", "account:alice"] {
        assert!(inv.is_erased(&s(gone)), "{gone}");
    }
    for stays in ["file:f-1", "workspace:ws-1", "workspace:ws-2"] {
        assert!(!inv.is_erased(&s(stays)), "{stays}");
    }
    assert_eq!(inv.resources_in(&ws("ws-1")).count(), 1);
}

// --------------------------------------------------------------------- R12

#[test]
fn r12_after_all_tasks_complete_the_resource_is_erased_and_every_command_refuses() {
    let mut history = full_workspace();
    history.push(account_data("account-profile:pr-d", "dave").event());
    let history = carried_through(
        history,
        new_request(1, "workspace:ws-1", member("alice")),
        1,
    );
    let history = carried_through(
        history,
        NewRequest {
            verification: Some(note("e-mail code")),
            ..new_request(2, "account:dave", member("dave"))
        },
        100,
    );
    let inv = Inventory::from_events(&history);
    for gone in [
        "workspace:ws-1",
        "project:p-1",
        "file:f-1",
        "transcript:t-1",
        "settings:st-1",
        "integration:yt-1",
        "account:dave",
        "account-profile:pr-d",
    ] {
        assert!(inv.is_erased(&s(gone)), "{gone}");
    }
    // R14: the billing record is kept, not erased.
    assert!(!inv.is_erased(&s("billing-record:b-1")));

    let erased = |raw: &str| DomainError::Erased(s(raw));
    // The commands answer with different event types; only the refusal
    // matters here, so each is reduced to its count of events.
    type Decide = Box<dyn Fn(&Inventory) -> Result<usize, DomainError>>;
    let n = |r: Result<Vec<RequestEvent>, DomainError>| r.map(|e| e.len());
    let cases: Vec<(&str, Decide, DomainError)> = vec![
        (
            "register the file again",
            Box::new(|inv| register_resource(inv, resource("file:f-1", "ws-2").0).map(|e| e.len())),
            erased("file:f-1"),
        ),
        (
            "register an artifact of the erased file",
            Box::new(|inv| {
                register_resource(inv, artifact("caption:c-1", "file:f-1", "ws-2").0)
                    .map(|e| e.len())
            }),
            erased("file:f-1"),
        ),
        (
            "request the file's deletion again",
            Box::new(move |inv| {
                n(receive(
                    inv,
                    new_request(3, "file:f-1", member("alice")),
                    &table(),
                    now(),
                    &mut new_task_ids(),
                ))
            }),
            erased("file:f-1"),
        ),
        (
            "request the workspace's deletion again",
            Box::new(move |inv| {
                n(receive(
                    inv,
                    new_request(3, "workspace:ws-1", member("alice")),
                    &table(),
                    now(),
                    &mut new_task_ids(),
                ))
            }),
            erased("workspace:ws-1"),
        ),
        (
            "request the account's deletion again",
            Box::new(move |inv| {
                n(receive(
                    inv,
                    NewRequest {
                        verification: Some(note("e-mail code")),
                        ..new_request(3, "account:dave", member("dave"))
                    },
                    &table(),
                    now(),
                    &mut new_task_ids(),
                ))
            }),
            erased("account:dave"),
        ),
        (
            "hold the file",
            Box::new(|inv| {
                place(
                    inv,
                    hold(9),
                    s("file:f-1"),
                    HoldKind::Legal,
                    matter("m-1"),
                    reason("late order"),
                    "legal:alice".into(),
                )
                .map(|e| e.len())
            }),
            erased("file:f-1"),
        ),
        (
            "hold the workspace",
            Box::new(|inv| {
                place(
                    inv,
                    hold(9),
                    s("workspace:ws-1"),
                    HoldKind::Moderation,
                    matter("m-1"),
                    reason("late order"),
                    "trust:bob".into(),
                )
                .map(|e| e.len())
            }),
            erased("workspace:ws-1"),
        ),
        (
            "connect the erased integration again",
            Box::new(|inv| {
                connect(
                    inv,
                    integ("yt-1"),
                    ws("ws-2"),
                    Platform::Youtube,
                    ext("UC-channel-1"),
                    Initiator::Platform,
                )
                .map(|e| e.len())
            }),
            erased("integration:yt-1"),
        ),
        (
            "connect a new integration to the erased workspace",
            Box::new(|inv| {
                connect(
                    inv,
                    integ("yt-2"),
                    ws("ws-1"),
                    Platform::Youtube,
                    ext("UC-channel-1"),
                    Initiator::Platform,
                )
                .map(|e| e.len())
            }),
            erased("workspace:ws-1"),
        ),
        (
            "disconnect the erased integration",
            Box::new(|inv| {
                domain::integration::disconnect(
                    inv,
                    integ("yt-1"),
                    Initiator::Platform,
                    Channel::InProduct,
                    None,
                )
                .map(|e| e.len())
            }),
            erased("integration:yt-1"),
        ),
        (
            "add a member to the erased workspace",
            Box::new(|inv| {
                add_member(
                    inv,
                    ws("ws-1"),
                    acct("erin"),
                    Role::Member,
                    Initiator::Platform,
                )
                .map(|e| e.len())
            }),
            erased("workspace:ws-1"),
        ),
        (
            "add the erased account to a workspace",
            Box::new(|inv| {
                add_member(
                    inv,
                    ws("ws-2"),
                    acct("dave"),
                    Role::Member,
                    Initiator::Platform,
                )
                .map(|e| e.len())
            }),
            erased("account:dave"),
        ),
        (
            "create the erased workspace again",
            Box::new(|inv| create_workspace(inv, ws("ws-1"), acct("alice")).map(|e| e.len())),
            erased("workspace:ws-1"),
        ),
        (
            "a workspace owned by the erased account",
            Box::new(|inv| create_workspace(inv, ws("ws-9"), acct("dave")).map(|e| e.len())),
            erased("account:dave"),
        ),
    ];
    let mut with_ws2 = history;
    with_ws2.push(created("ws-2", "alice"));
    for (case, decide, error) in cases {
        given(with_ws2.clone())
            .when(|inv| decide(inv).map(|n| vec![n]))
            .then(&Expect::Error(error), case);
    }
}

// --------------------------------------------------------------------- R13

/// yt-1's clean-up with tasks 1 to 3 done and task 4 leased to worker-1.
fn clean_up_with_the_last_task_leased() -> Vec<LedgerEvent> {
    let mut history = disconnected_youtube();
    history.push(requested(1, "integration:yt-1", member("alice")).into());
    history.extend(ledger_of(integration_plan(1, 1)));
    for done in 1..=3 {
        history.push(claimed(1, done, "worker-1").into());
        history.push(
            RequestEvent::TaskCompleted {
                request: req(1),
                task: task(done),
                step: [RevokeTokens, ClearAnalyticsCache, RemoveAnalyticsRows][done as usize - 1],
                target: s("integration:yt-1"),
                worker: "worker-1".into(),
            }
            .into(),
        );
    }
    history.push(claimed(1, 4, "worker-1").into());
    history
}

#[test]
fn r13_the_last_completed_task_states_when_residual_copies_are_purged() {
    let history = clean_up_with_the_last_task_leased();
    let finished = days_later(2);
    given(history)
        .when_request(|_, r| complete_task(r, task(4), "worker-1".into(), &table(), finished))
        .then_events(vec![
            RequestEvent::TaskCompleted {
                request: req(1),
                task: task(4),
                step: DeactivateConnectionRecord,
                target: s("integration:yt-1"),
                worker: "worker-1".into(),
            },
            RequestEvent::DeletionCompleted {
                request: req(1),
                completed_at: finished,
                residual_copies_purged_by: finished
                    + Duration::days(i64::from(table().residual_copies_days)),
            },
        ]);
}

#[test]
fn r7_r13_the_last_task_done_under_a_hold_placed_after_its_claim_completes_the_request() {
    // Tasks 1-3 done; task 4 leased; then a hold on the workspace blocks
    // the request. The worker finishes task 4: nothing is left to suspend,
    // so the request completes now, not at the hold's lift.
    let mut history = clean_up_with_the_last_task_leased();
    history.push(placed(1, "workspace:ws-1"));
    history.push(blocked(1, &[1]).into());
    let finished = days_later(2);
    let completion = RequestEvent::DeletionCompleted {
        request: req(1),
        completed_at: finished,
        residual_copies_purged_by: finished
            + Duration::days(i64::from(table().residual_copies_days)),
    };
    let last = RequestEvent::TaskCompleted {
        request: req(1),
        task: task(4),
        step: DeactivateConnectionRecord,
        target: s("integration:yt-1"),
        worker: "worker-1".into(),
    };
    given(history.clone())
        .when_request(|_, r| complete_task(r, task(4), "worker-1".into(), &table(), finished))
        .then_events(vec![last.clone(), completion.clone()]);
    // A request left blocked with every task done (by an earlier build)
    // completes at the next progress, whatever the hold.
    history.push(last.into());
    given(history)
        .when_request(|inv, r| Ok(progress(r, inv, &table(), finished, &mut new_task_ids())))
        .then_events(vec![completion]);
}

#[test]
fn r13_a_task_that_is_not_the_last_does_not_complete_the_request() {
    let mut history = disconnected_youtube();
    history.push(requested(1, "integration:yt-1", member("alice")).into());
    history.extend(ledger_of(integration_plan(1, 1)));
    history.push(claimed(1, 2, "worker-1").into());
    given(history)
        .when_request(|_, r| complete_task(r, task(2), "worker-1".into(), &table(), now()))
        .then_events(vec![RequestEvent::TaskCompleted {
            request: req(1),
            task: task(2),
            step: ClearAnalyticsCache,
            target: s("integration:yt-1"),
            worker: "worker-1".into(),
        }]);
}

// --------------------------------------------------------------------- R15

#[test]
fn r15_an_email_request_is_recorded_with_the_operator_and_the_verification() {
    let email = |recorded_by: Option<&str>, verification: Option<&str>| NewRequest {
        channel: Channel::EmailToSupport,
        policy: PolicyName::Gdpr,
        recorded_by: recorded_by.map(str::to_owned),
        verification: verification.map(note),
        contact: Some(Contact::parse("alice@example.com").unwrap()),
        received_at: None,
        ..new_request(1, "file:f-1", member("alice"))
    };
    let complete = email(
        Some("support:olga"),
        Some("replied from the account's address"),
    );
    let mut want = vec![requested_as(
        &complete,
        Verification::Verified {
            method: note("replied from the account's address").into(),
            by: "support:olga".into(),
        },
    )];
    want.extend(file_plan(1, 101));
    // (case, request, expected)
    let cases = [
        (
            "no operator",
            email(None, Some("replied from the account's address")),
            Expect::Invalid("recorded_by"),
        ),
        (
            "no verification",
            email(Some("support:olga"), None),
            Expect::Invalid("verification"),
        ),
        ("neither", email(None, None), Expect::Invalid("recorded_by")),
        ("both", complete, Expect::Events(want)),
    ];
    for (case, new, expect) in cases {
        check(case, file_with_artifacts(), new, &expect);
    }
}

#[test]
fn r15_an_email_request_counts_its_deadline_from_the_emails_arrival() {
    let arrived = now() - Duration::days(3);
    let email = |channel: Channel, received_at| NewRequest {
        channel,
        policy: PolicyName::Ccpa,
        recorded_by: Some("support:olga".into()),
        verification: Some(note("replied from the account's address")),
        received_at: Some(received_at),
        ..new_request(1, "file:f-1", member("alice"))
    };
    let events = given(file_with_artifacts())
        .when(|inv| {
            receive(
                inv,
                email(Channel::EmailToSupport, arrived),
                &table(),
                now(),
                &mut new_task_ids(),
            )
        })
        .events();
    let RequestEvent::DeletionRequested {
        received_at,
        due_at,
        ..
    } = &events[0]
    else {
        panic!("{events:?}");
    };
    assert_eq!(*received_at, arrived);
    assert_eq!(*due_at, arrived + Duration::days(45));

    let cases = [
        ("another channel", email(Channel::InProduct, arrived)),
        (
            "in the future",
            email(Channel::EmailToSupport, now() + Duration::minutes(1)),
        ),
        (
            "over a year ago",
            email(Channel::EmailToSupport, now() - Duration::days(366)),
        ),
    ];
    for (case, new) in cases {
        check(
            case,
            file_with_artifacts(),
            new,
            &Expect::Invalid("received_at"),
        );
    }
}

// --------------------------------------------------------------------- R14

#[test]
fn r14_card_numbers_are_refused_on_every_decision_input_path() {
    const CARD: &str = "4111 1111 1111 1111";
    let history = file_request_released();
    // Operator and worker names enter the ledger as written.
    given(file_with_artifacts())
        .when(|inv| {
            receive(
                inv,
                NewRequest {
                    channel: Channel::EmailToSupport,
                    recorded_by: Some(format!("olga {CARD}")),
                    verification: Some(note("called back")),
                    ..new_request(1, "file:f-1", member("alice"))
                },
                &table(),
                now(),
                &mut new_task_ids(),
            )
        })
        .then_invalid("recorded_by");
    given(history.clone())
        .when_request(|inv, r| claim(r, inv, task(1), CARD.into(), minutes_later(10), now()))
        .then_invalid("worker");
    given(history.clone())
        .when(|inv| {
            place(
                inv,
                hold(1),
                s("file:f-1"),
                HoldKind::Legal,
                matter("m-1"),
                reason("order"),
                CARD.into(),
            )
        })
        .then_invalid("placed_by");
    let mut held = history;
    held.push(placed(1, "file:f-1"));
    given(held)
        .when(|inv| domain::hold::lift(inv, hold(1), reason("closed"), CARD.into()))
        .then_invalid("lifted_by");
    let pending = vec![requested_as(
        &new_request(1, "account:alice", member("alice")),
        Verification::Pending,
    )
    .into()];
    given(alice(pending))
        .when_request(|inv, r| {
            verify(
                r,
                inv,
                note("e-mail code"),
                CARD.into(),
                &table(),
                now(),
                &mut new_task_ids(),
            )
        })
        .then_invalid("verified_by");
}

/// Appends a hold on `scope` and request 1 on it, blocked by the hold
/// before any task was released.
fn block_request_on(history: &mut Vec<LedgerEvent>, scope: &str) {
    history.push(placed(1, scope));
    let new = new_request(1, scope, member("alice"));
    history.push(requested_as(&new, Verification::NotRequired).into());
    history.push(blocked(1, &[1]).into());
}

/// Request 1 of `history` may keep each of `within` and no one of
/// `outside`.
#[track_caller]
fn keeps_only(history: &[LedgerEvent], within: &[&'static str], outside: &[&'static str]) {
    for target in within {
        let kept = given(history.to_vec()).when_request(keep(target)).events();
        assert_eq!(kept.len(), 1, "{target}: {kept:?}");
    }
    for target in outside {
        given(history.to_vec())
            .when_request(keep(target))
            .then_invalid("target");
    }
}

/// Records that `target` is kept on the security basis for 90 days.
fn keep(
    target: &'static str,
) -> impl FnOnce(&Inventory, &Request) -> Result<Vec<RequestEvent>, DomainError> {
    move |inventory: &Inventory, r: &Request| {
        record_retention(
            r,
            inventory,
            s(target),
            RetentionBasis::Security,
            days_later(90),
            note("kept for incident response"),
            now(),
        )
    }
}

#[test]
fn r1_a_retention_exception_keeps_only_what_the_request_covers() {
    // Blocked before any task was released, so that only the scope and
    // what the inventory knows of it decide.
    let mut history = file_with_artifacts();
    history.push(resource("file:f-2", "ws-1").event());
    history.push(created("ws-2", "bob"));
    history.push(resource("file:f-9", "ws-2").event());
    block_request_on(&mut history, "file:f-1");
    keeps_only(
        &history,
        &["file:f-1", "transcript:t-1", "search-index-entry:si-1"],
        // Another file of the workspace, a file of another workspace, the
        // file's project and workspace, and a record the ledger never
        // heard of.
        &[
            "file:f-2",
            "file:f-9",
            "project:p-1",
            "workspace:ws-1",
            "billing-record:b-1",
        ],
    );
}

#[test]
fn r1_r8_a_retention_exception_on_a_project_does_not_reach_its_files() {
    // Erasing a project removes its record; its files and canvases stay
    // (R8 removes their references only), so they are not its to keep.
    let mut history = file_with_artifacts();
    block_request_on(&mut history, "project:p-1");
    keeps_only(
        &history,
        &["project:p-1"],
        &["file:f-1", "transcript:t-1", "canvas:cv-1"],
    );
}

#[test]
fn r1_r5_a_retention_exception_may_keep_a_connection_of_the_external_account() {
    let mut history = disconnected_youtube();
    history.push(connected("yt-2", "ws-1", Platform::Youtube, "UC-channel-2"));
    history.push(requested(1, "youtube:UC-channel-1", member("alice")).into());
    keeps_only(&history, &["integration:yt-1"], &["integration:yt-2"]);
}

#[test]
fn r6_r14_what_was_derived_from_a_kept_billing_record_is_purged() {
    let mut history = full_workspace();
    history.push(artifact("ocr-text:o-b1", "billing-record:b-1", "ws-1").event());
    for (n, scope) in [(1, "billing-record:b-1"), (2, "workspace:ws-1")] {
        let events = given(history.clone())
            .when(|inv| {
                receive(
                    inv,
                    new_request(n, scope, member("alice")),
                    &table(),
                    now(),
                    &mut new_task_ids(),
                )
            })
            .events();
        assert!(events.contains(&billing_kept(n)), "{scope}: {events:?}");
        let steps: Vec<ErasureStep> = events
            .iter()
            .filter_map(|event| match event {
                RequestEvent::TaskReleased { step, target, .. }
                    if target == &s("ocr-text:o-b1") =>
                {
                    Some(*step)
                }
                _ => None,
            })
            .collect();
        assert_eq!(steps, vec![PurgeDerivedArtifact], "{scope}: {events:?}");
        // Not complete before its artifact is purged.
        assert!(
            !events
                .iter()
                .any(|event| matches!(event, RequestEvent::DeletionCompleted { .. })),
            "{scope}: {events:?}"
        );
    }
}
