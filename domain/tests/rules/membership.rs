//! Workspaces, members and resources: R10, R12 and the ownership limits.

use domain::error::{DomainError, InvalidInput};
use domain::events::{LedgerEvent, ResourceEvent, WorkspaceEvent};
use domain::integration::connect;
use domain::inventory::Inventory;
use domain::membership::{add_member, create_workspace, register_resource, remove_member};
use domain::subject::Platform;
use domain::values::{ErasureStep, Initiator, Role};

use crate::support::*;

/// The membership aggregate's check: a history, a decision, an answer.
fn check<E: std::fmt::Debug + PartialEq>(
    case: &str,
    history: Vec<LedgerEvent>,
    decide: impl FnOnce(&Inventory) -> Result<Vec<E>, DomainError>,
    expect: &Expect<E>,
) {
    given(history).when(decide).then(expect, case);
}

/// Workspace ws-1 owned by alice, with bob an admin and carol a member.
fn team() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        added("ws-1", "bob", Role::Admin),
        added("ws-1", "carol", Role::Member),
    ]
}

#[test]
fn workspace_is_created_once_with_its_owner() {
    given(vec![])
        .when(|inv| create_workspace(inv, ws("ws-1"), acct("alice")))
        .then_events(vec![WorkspaceEvent::WorkspaceCreated {
            workspace: ws("ws-1"),
            owner: acct("alice"),
        }]);
    given(team())
        .when(|inv| create_workspace(inv, ws("ws-1"), acct("dave")))
        .then_error(DomainError::AlreadyExists(s("workspace:ws-1")));
}

#[test]
fn only_an_owner_or_admin_adds_members() {
    // (case, added by, expected)
    let cases = [
        ("owner", member("alice"), None),
        ("admin", member("bob"), None),
        ("platform", Initiator::Platform, None),
        (
            "plain member",
            member("carol"),
            Some(DomainError::NotOwnerOrAdmin {
                workspace: s("workspace:ws-1"),
            }),
        ),
        (
            "outsider",
            member("mallory"),
            Some(DomainError::NotOwnerOrAdmin {
                workspace: s("workspace:ws-1"),
            }),
        ),
    ];
    for (case, by, error) in cases {
        let expect = match error {
            None => Expect::Events(vec![WorkspaceEvent::MemberAdded {
                workspace: ws("ws-1"),
                account: acct("dave"),
                role: Role::Member,
                added_by: by.clone(),
            }]),
            Some(error) => Expect::Error(error),
        };
        check(
            case,
            team(),
            |inv| add_member(inv, ws("ws-1"), acct("dave"), Role::Member, by),
            &expect,
        );
    }
}

#[test]
fn r9_only_an_owner_or_the_platform_makes_another_owner() {
    // An owner may delete the workspace; an admin who could make one
    // would get round R9.
    for (case, by) in [
        ("owner", member("alice")),
        ("platform", Initiator::Platform),
    ] {
        check(
            case,
            team(),
            |inv| add_member(inv, ws("ws-1"), acct("dave"), Role::Owner, by.clone()),
            &Expect::Events(vec![WorkspaceEvent::MemberAdded {
                workspace: ws("ws-1"),
                account: acct("dave"),
                role: Role::Owner,
                added_by: by.clone(),
            }]),
        );
    }
    given(team())
        .when(|inv| add_member(inv, ws("ws-1"), acct("dave"), Role::Owner, member("bob")))
        .then_error(DomainError::NotOwnerToGrantOwner {
            workspace: s("workspace:ws-1"),
        });
    // An admin still adds admins.
    given(team())
        .when(|inv| add_member(inv, ws("ws-1"), acct("dave"), Role::Admin, member("bob")))
        .then_events(vec![WorkspaceEvent::MemberAdded {
            workspace: ws("ws-1"),
            account: acct("dave"),
            role: Role::Admin,
            added_by: member("bob"),
        }]);
}

#[test]
fn r9_r11_nothing_is_given_to_what_is_being_erased() {
    // ws-1's record and dave's account have their erasing tasks out.
    let mut history = team();
    history.push(created("ws-2", "erin"));
    history.push(
        released(
            1,
            101,
            ErasureStep::RemoveRecord,
            "workspace:ws-1",
            Some("ws-1"),
            &["workspace:ws-1"],
        )
        .into(),
    );
    history.push(
        released(
            2,
            201,
            ErasureStep::RemoveRecord,
            "account:dave",
            None,
            &["account:dave"],
        )
        .into(),
    );
    let being_erased =
        |raw: &str| Expect::<WorkspaceEvent>::Error(DomainError::BeingErased(s(raw)));
    check(
        "a member of a workspace being erased",
        history.clone(),
        |inv| {
            add_member(
                inv,
                ws("ws-1"),
                acct("frank"),
                Role::Member,
                member("alice"),
            )
        },
        &being_erased("workspace:ws-1"),
    );
    check(
        "an account being erased as a member",
        history.clone(),
        |inv| add_member(inv, ws("ws-2"), acct("dave"), Role::Member, member("erin")),
        &being_erased("account:dave"),
    );
    check(
        "an account being erased as an owner",
        history.clone(),
        |inv| create_workspace(inv, ws("ws-3"), acct("dave")),
        &being_erased("account:dave"),
    );
    given(history.clone())
        .when(|inv| {
            connect(
                inv,
                integ("yt-1"),
                ws("ws-1"),
                Platform::Youtube,
                ext("UC-1"),
                member("alice"),
            )
        })
        .then_error(DomainError::BeingErased(s("workspace:ws-1")));
    // Elsewhere, all of it still goes.
    given(history)
        .when(|inv| add_member(inv, ws("ws-2"), acct("frank"), Role::Member, member("erin")))
        .then_events(vec![WorkspaceEvent::MemberAdded {
            workspace: ws("ws-2"),
            account: acct("frank"),
            role: Role::Member,
            added_by: member("erin"),
        }]);
}

#[test]
fn r10_removed_member_loses_access_and_their_content_stays() {
    let mut history = team();
    history.push(resource("project:p-1", "ws-1").created_by("carol").event());
    history.push(
        resource("file:f-1", "ws-1")
            .parent("project:p-1")
            .created_by("carol")
            .event(),
    );
    let world = given(history.clone());
    let events = world
        .when(|inv| remove_member(inv, ws("ws-1"), acct("carol"), member("alice")))
        .events();
    // Only the membership changes: no deletion request, no erasure task.
    assert_eq!(
        events,
        vec![WorkspaceEvent::MemberRemoved {
            workspace: ws("ws-1"),
            account: acct("carol"),
            removed_by: member("alice"),
        }]
    );
    history.extend(events.into_iter().map(LedgerEvent::from));
    let after = Inventory::from_events(&history);
    assert_eq!(after.workspaces[&ws("ws-1")].role_of(&acct("carol")), None);
    for content in ["project:p-1", "file:f-1"] {
        let facts = &after.resources[&s(content)];
        assert!(!facts.erased, "{content} must stay active");
        assert_eq!(facts.created_by, Some(acct("carol")), "{content}");
        assert!(!after.is_erased(&s(content)), "{content}");
    }
    assert_eq!(after.resources_in(&ws("ws-1")).count(), 2);
}

#[test]
fn r10_who_may_remove_whom() {
    // (case, account removed, removed by, expected error)
    let cases = [
        ("admin removes a member", "carol", member("bob"), None),
        ("member leaves", "carol", member("carol"), None),
        (
            "platform removes an admin",
            "bob",
            Initiator::Platform,
            None,
        ),
        (
            "member removes the admin",
            "bob",
            member("carol"),
            Some(DomainError::NotOwnerOrAdmin {
                workspace: s("workspace:ws-1"),
            }),
        ),
        (
            "the owner is never removed",
            "alice",
            member("bob"),
            Some(DomainError::CannotRemoveOwner {
                workspace: s("workspace:ws-1"),
            }),
        ),
        (
            "not a member",
            "dave",
            member("alice"),
            Some(DomainError::NotAMember {
                workspace: s("workspace:ws-1"),
                account: s("account:dave"),
            }),
        ),
    ];
    for (case, account, by, error) in cases {
        let expect = match error {
            None => Expect::Events(vec![WorkspaceEvent::MemberRemoved {
                workspace: ws("ws-1"),
                account: acct(account),
                removed_by: by.clone(),
            }]),
            Some(error) => Expect::Error(error),
        };
        check(
            case,
            team(),
            |inv| remove_member(inv, ws("ws-1"), acct(account), by),
            &expect,
        );
    }
}

#[test]
fn resources_are_registered_with_their_relations() {
    let mut history = team();
    history.push(created("ws-2", "alice"));
    history.push(resource("file:f-1", "ws-1").event());
    let transcript = artifact("transcript:t-1", "file:f-1", "ws-1").created_by("carol");
    let expected = match transcript.clone().event() {
        LedgerEvent::Resource(event) => event,
        other => panic!("{other:?}"),
    };
    check(
        "derived artifact",
        history.clone(),
        |inv| register_resource(inv, transcript.0),
        &Expect::<ResourceEvent>::Events(vec![expected]),
    );
    // (case, registration, expected)
    let cases: Vec<(&str, Reg, Expect<ResourceEvent>)> = vec![
        (
            "twice",
            resource("file:f-1", "ws-1"),
            Expect::Error(DomainError::AlreadyExists(s("file:f-1"))),
        ),
        (
            "artifact without its file",
            resource("transcript:t-2", "ws-1"),
            Expect::Invalid("derived_from"),
        ),
        (
            "a file derived from a file",
            resource("file:f-2", "ws-1").derived_from("file:f-1"),
            Expect::Invalid("derived_from"),
        ),
        (
            "source unknown",
            artifact("caption:c-1", "file:f-404", "ws-1"),
            Expect::Error(DomainError::UnknownSubject(s("file:f-404"))),
        ),
        (
            "workspace unknown",
            resource("file:f-2", "ws-404"),
            Expect::Error(DomainError::UnknownSubject(s("workspace:ws-404"))),
        ),
        (
            // R6 / R9: ws-2's erasure would not reach it through its file.
            "an artifact in another workspace than its file",
            artifact("caption:c-2", "file:f-1", "ws-2"),
            Expect::Invalid("workspace_id"),
        ),
        (
            "not a resource",
            resource("workspace:ws-2", "ws-1"),
            Expect::Invalid("resource"),
        ),
    ];
    for (case, registration, expect) in cases {
        check(
            case,
            history.clone(),
            |inv| register_resource(inv, registration.0),
            &expect,
        );
    }
    let mut profile = account_data("account-profile:pr-1", "alice").0;
    profile.account = None;
    check(
        "account data without its account",
        history,
        |inv| register_resource(inv, profile),
        &Expect::<ResourceEvent>::Error(DomainError::InvalidInput(InvalidInput::new(
            "account",
            "is required for account profiles and credentials",
        ))),
    );
}
