//! Legal and moderation holds: placing and lifting (R7, R12).

use domain::error::DomainError;
use domain::events::{HoldEvent, LedgerEvent};
use domain::hold::{lift, place};
use domain::inventory::Inventory;
use domain::values::HoldKind;

use crate::support::*;

/// The hold aggregate's check.
fn check(
    case: &str,
    history: Vec<LedgerEvent>,
    decide: impl FnOnce(&Inventory) -> Result<Vec<HoldEvent>, DomainError>,
    expect: &Expect<HoldEvent>,
) {
    given(history).when(decide).then(expect, case);
}

fn workspace_with_a_file() -> Vec<LedgerEvent> {
    vec![
        created("ws-1", "alice"),
        resource("file:f-1", "ws-1").event(),
    ]
}

fn place_on(inv: &Inventory, n: u128, scope: &str) -> Result<Vec<HoldEvent>, DomainError> {
    place(
        inv,
        hold(n),
        s(scope),
        HoldKind::Moderation,
        matter("case-7"),
        reason("reported content"),
        "trust:bob".to_owned(),
    )
}

fn placed_on(n: u128, scope: &str) -> HoldEvent {
    HoldEvent::HoldPlaced {
        hold: hold(n),
        scope: s(scope),
        kind: HoldKind::Moderation,
        matter: matter("case-7").into(),
        reason: reason("reported content").into(),
        placed_by: "trust:bob".to_owned(),
    }
}

#[test]
fn r7_holds_cover_a_resource_a_workspace_or_an_account_and_several_may_cover_one() {
    let mut one_hold = workspace_with_a_file();
    one_hold.push(placed(1, "file:f-1"));
    // (case, history, hold, scope, expected)
    let cases = [
        (
            "on a file",
            workspace_with_a_file(),
            2,
            "file:f-1",
            Expect::Events(vec![placed_on(2, "file:f-1")]),
        ),
        (
            "a second hold on the same file",
            one_hold.clone(),
            2,
            "file:f-1",
            Expect::Events(vec![placed_on(2, "file:f-1")]),
        ),
        (
            "on a workspace",
            workspace_with_a_file(),
            2,
            "workspace:ws-1",
            Expect::Events(vec![placed_on(2, "workspace:ws-1")]),
        ),
        (
            "on an account",
            workspace_with_a_file(),
            2,
            "account:alice",
            Expect::Events(vec![placed_on(2, "account:alice")]),
        ),
        (
            "before the ledger heard of the file",
            vec![],
            2,
            "file:f-9",
            Expect::Events(vec![placed_on(2, "file:f-9")]),
        ),
        (
            "the same hold id twice",
            one_hold,
            1,
            "file:f-1",
            Expect::Error(DomainError::AlreadyExists(s(&format!("hold:{}", hold(1))))),
        ),
        (
            "on an integration",
            workspace_with_a_file(),
            2,
            "integration:yt-1",
            Expect::Invalid("scope"),
        ),
    ];
    for (case, history, n, scope, expect) in cases {
        check(case, history, |inv| place_on(inv, n, scope), &expect);
    }
}

#[test]
fn r7_lifting_a_hold_that_is_not_active_is_refused() {
    let mut history = workspace_with_a_file();
    history.push(placed(1, "file:f-1"));
    let lift_one = |inv: &Inventory| {
        lift(
            inv,
            hold(1),
            reason("matter closed"),
            "legal:alice".to_owned(),
        )
    };
    check(
        "active",
        history.clone(),
        lift_one,
        &Expect::Events(vec![HoldEvent::HoldLifted {
            hold: hold(1),
            scope: s("file:f-1"),
            reason: reason("matter closed").into(),
            lifted_by: "legal:alice".to_owned(),
        }]),
    );
    let mut already_lifted = history;
    already_lifted.push(lifted(1, "file:f-1"));
    for (case, history) in [
        ("already lifted", already_lifted),
        ("never placed", workspace_with_a_file()),
    ] {
        check(
            case,
            history,
            lift_one,
            &Expect::Error(DomainError::HoldNotActive(hold(1))),
        );
    }
}
