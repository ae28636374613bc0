//! Connections to YouTube, TikTok and Instagram: R1, R2, R4.

use domain::error::DomainError;
use domain::events::{IntegrationEvent, LedgerEvent, RequestEvent};
use domain::integration::{connect, connections_of, disconnect, platform_data_notice};
use domain::inventory::Inventory;
use domain::subject::Platform;
use domain::text::Reason;
use domain::values::{Channel, ErasureStep, Initiator, Role};

use crate::support::*;

/// The integration aggregate's check.
fn check(
    case: &str,
    history: Vec<LedgerEvent>,
    decide: impl FnOnce(&Inventory) -> Result<Vec<IntegrationEvent>, DomainError>,
    expect: &Expect<IntegrationEvent>,
) {
    given(history).when(decide).then(expect, case);
}

/// ws-1 (alice owner, bob admin, carol member) connected to YouTube as yt-1.
fn connected_workspace() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        added("ws-1", "bob", Role::Admin),
        added("ws-1", "carol", Role::Member),
        connected("yt-1", "ws-1", Platform::Youtube, "UC-channel-1"),
    ]
}

fn disconnected_by(by: Initiator, channel: Channel, reason: Option<Reason>) -> IntegrationEvent {
    IntegrationEvent::IntegrationDisconnected {
        integration: integ("yt-1"),
        workspace: ws("ws-1"),
        platform: Platform::Youtube,
        external_account: ext("UC-channel-1"),
        disconnected_by: by,
        channel,
        reason: reason.map(Into::into),
        platform_data_notice: platform_data_notice(Platform::Youtube),
    }
}

#[test]
fn r1_disconnect_by_owner_admin_or_platform_is_allowed_and_by_a_member_refused() {
    let not_allowed = DomainError::NotOwnerOrAdmin {
        workspace: s("workspace:ws-1"),
    };
    // (case, by, channel, allowed)
    let cases = [
        ("owner", member("alice"), Channel::InProduct, true),
        ("admin", member("bob"), Channel::InProduct, true),
        (
            "platform",
            Initiator::Platform,
            Channel::RetentionPolicy,
            true,
        ),
        ("plain member", member("carol"), Channel::InProduct, false),
        ("outsider", member("mallory"), Channel::InProduct, false),
    ];
    for (case, by, channel, allowed) in cases {
        let expect = if allowed {
            Expect::Events(vec![disconnected_by(
                by.clone(),
                channel,
                Some(reason("no longer used")),
            )])
        } else {
            Expect::Error(not_allowed.clone())
        };
        check(
            case,
            connected_workspace(),
            |inv| {
                disconnect(
                    inv,
                    integ("yt-1"),
                    by,
                    channel,
                    Some(reason("no longer used")),
                )
            },
            &expect,
        );
    }
}

#[test]
fn r1_a_disconnected_integration_is_unusable_and_not_disconnected_twice() {
    let mut history = connected_workspace();
    history.push(disconnected(
        "yt-1",
        "ws-1",
        Platform::Youtube,
        "UC-channel-1",
    ));
    given(history.clone())
        .when(|inv| {
            disconnect(
                inv,
                integ("yt-1"),
                member("alice"),
                Channel::InProduct,
                None,
            )
        })
        .then_error(DomainError::AlreadyDisconnected(s("integration:yt-1")));
    assert!(Inventory::from_events(&history).integrations[&integ("yt-1")].disconnected);
}

#[test]
fn r1_a_member_cannot_disconnect_when_the_workspace_is_not_in_the_inventory() {
    // The decision must fail closed: a history read without the
    // workspace's events cannot prove that the member is owner or admin.
    let history = vec![connected("yt-1", "ws-1", Platform::Youtube, "UC-channel-1")];
    given(history.clone())
        .when(|inv| {
            disconnect(
                inv,
                integ("yt-1"),
                member("carol"),
                Channel::InProduct,
                None,
            )
        })
        .then_error(DomainError::NotOwnerOrAdmin {
            workspace: s("workspace:ws-1"),
        });
    given(history)
        .when(|inv| {
            disconnect(
                inv,
                integ("yt-1"),
                Initiator::Platform,
                Channel::MetaCallback,
                None,
            )
        })
        .then_events(vec![disconnected_by(
            Initiator::Platform,
            Channel::MetaCallback,
            None,
        )]);
}

#[test]
fn r1_only_an_owner_or_admin_connects_and_an_id_is_used_once() {
    let event = |by: Initiator| IntegrationEvent::IntegrationConnected {
        integration: integ("tt-1"),
        workspace: ws("ws-1"),
        platform: Platform::Tiktok,
        external_account: ext("tt-user-1"),
        connected_by: by,
    };
    // (case, id, by, expected)
    let cases = [
        (
            "admin",
            "tt-1",
            member("bob"),
            Expect::Events(vec![event(member("bob"))]),
        ),
        (
            "plain member",
            "tt-1",
            member("carol"),
            Expect::Error(DomainError::NotOwnerOrAdmin {
                workspace: s("workspace:ws-1"),
            }),
        ),
        (
            "id taken",
            "yt-1",
            member("alice"),
            Expect::Error(DomainError::AlreadyExists(s("integration:yt-1"))),
        ),
    ];
    for (case, id, by, expect) in cases {
        check(
            case,
            connected_workspace(),
            |inv| {
                connect(
                    inv,
                    integ(id),
                    ws("ws-1"),
                    Platform::Tiktok,
                    ext("tt-user-1"),
                    by,
                )
            },
            &expect,
        );
    }
}

#[test]
fn r2_disconnecting_never_claims_to_delete_data_the_platform_holds() {
    for platform in Platform::ALL.iter().copied() {
        let history = vec![
            created("ws-1", "alice"),
            connected("c-1", "ws-1", platform, "acct-on-platform"),
        ];
        let events = given(history)
            .when(|inv| disconnect(inv, integ("c-1"), member("alice"), Channel::InProduct, None))
            .events();
        let [IntegrationEvent::IntegrationDisconnected {
            platform_data_notice: notice,
            ..
        }] = events.as_slice()
        else {
            panic!("{platform}: {events:?}");
        };
        assert!(
            notice.contains("does not delete"),
            "{platform}: the notice must say what is not deleted: {notice}"
        );
        assert_eq!(notice, &platform_data_notice(platform));
    }
}

#[test]
fn r4_connections_of_finds_every_matching_instagram_connection() {
    let history = vec![
        created("ws-1", "alice"),
        created("ws-2", "bob"),
        created("ws-3", "carol"),
        connected("ig-1", "ws-1", Platform::Instagram, "17841400000000001"),
        connected("ig-2", "ws-2", Platform::Instagram, "17841400000000001"),
        connected("ig-3", "ws-3", Platform::Instagram, "17841400000000001"),
        // Another Instagram account, and the same id on another platform.
        connected("ig-4", "ws-1", Platform::Instagram, "17841400000000002"),
        connected("tt-1", "ws-1", Platform::Tiktok, "17841400000000001"),
        // Disconnected but not erased: its records may still be there, so
        // it still matches; the caller skips it when deauthorizing.
        disconnected("ig-3", "ws-3", Platform::Instagram, "17841400000000001"),
        // Erased: nothing of it is left to find.
        connected("ig-5", "ws-3", Platform::Instagram, "17841400000000001"),
        RequestEvent::TaskCompleted {
            request: req(1),
            task: task(1),
            step: ErasureStep::DeactivateConnectionRecord,
            target: s("integration:ig-5"),
            worker: "worker-1".to_owned(),
        }
        .into(),
    ];
    let inv = Inventory::from_events(&history);
    assert_eq!(
        connections_of(&inv, Platform::Instagram, &ext("17841400000000001")),
        vec![integ("ig-1"), integ("ig-2"), integ("ig-3")]
    );
    assert_eq!(
        connections_of(&inv, Platform::Instagram, &ext("17841400000000999")),
        vec![]
    );
    // R4: each match is disconnected as in R1, by the platform.
    for (id, workspace) in [("ig-1", "ws-1"), ("ig-2", "ws-2")] {
        given(history.clone())
            .when(|inv| {
                disconnect(
                    inv,
                    integ(id),
                    Initiator::Platform,
                    Channel::MetaCallback,
                    None,
                )
            })
            .then_events(vec![IntegrationEvent::IntegrationDisconnected {
                integration: integ(id),
                workspace: ws(workspace),
                platform: Platform::Instagram,
                external_account: ext("17841400000000001"),
                disconnected_by: Initiator::Platform,
                channel: Channel::MetaCallback,
                reason: None,
                platform_data_notice: platform_data_notice(Platform::Instagram),
            }]);
    }
}
