//! The given / when / then harness and the fixtures the rule tests share.
//!
//! `given(history)` folds the events into an [`Inventory`] (and the
//! [`Request`] of the history, when there is one); `when` runs one pure
//! decision against it; `then_events` / `then_error` / `then_invalid` say
//! what the decision must answer. Time is a constant and task ids come from
//! a counter, so every expected event can be written out in full.

use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::deadline::{PolicyName, PolicyTable};
use domain::error::DomainError;
use domain::events::{
    HoldEvent, IntegrationEvent, LedgerEvent, RequestEvent, ResourceEvent, WorkspaceEvent,
};
use domain::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId,
};
use domain::inventory::Inventory;
use domain::membership::Registration;
use domain::request::{NewRequest, Request};
use domain::subject::{Platform, Subject};
use domain::text::{MatterRef, Note, Reason};
use domain::values::{Channel, ErasureStep, HoldKind, Initiator, Role, Verification};
use uuid::Uuid;

// ------------------------------------------------------------------ harness

/// The history a decision is made against.
#[derive(Debug)]
pub struct Given {
    inventory: Inventory,
    request: Option<Request>,
}

/// Folds `history` into the inventory and, if the history holds request
/// events, into the state of the last request it names.
pub fn given(history: Vec<LedgerEvent>) -> Given {
    let inventory = Inventory::from_events(&history);
    let request_events: Vec<RequestEvent> = history
        .into_iter()
        .filter_map(|event| match event {
            LedgerEvent::Request(event) => Some(event),
            _ => None,
        })
        .collect();
    // The request under decision is the last one of the history; other
    // requests before it (an erasure under way elsewhere) shape the
    // inventory only.
    let last = request_events.last().map(RequestEvent::request);
    let request_events: Vec<RequestEvent> = request_events
        .into_iter()
        .filter(|e| Some(e.request()) == last)
        .collect();
    Given {
        inventory,
        request: (!request_events.is_empty())
            .then(|| Request::from_events(&request_events))
            .flatten(),
    }
}

impl Given {
    /// Runs a decision that reads the inventory only.
    pub fn when<E>(
        &self,
        decide: impl FnOnce(&Inventory) -> Result<Vec<E>, DomainError>,
    ) -> Then<E> {
        Then(decide(&self.inventory))
    }

    /// Runs a decision on the request of the history.
    pub fn when_request<E>(
        &self,
        decide: impl FnOnce(&Inventory, &Request) -> Result<Vec<E>, DomainError>,
    ) -> Then<E> {
        let request = self
            .request
            .as_ref()
            .expect("the given history holds the events of one request");
        Then(decide(&self.inventory, request))
    }
}

/// What a decision answered.
#[derive(Debug)]
#[must_use = "say what the decision must answer"]
pub struct Then<E>(pub Result<Vec<E>, DomainError>);

/// What a case expects, for data-driven tables.
#[derive(Debug)]
pub enum Expect<E> {
    Events(Vec<E>),
    Error(DomainError),
    /// Refused as invalid input naming this field.
    Invalid(&'static str),
}

impl<E: Debug + PartialEq> Then<E> {
    #[track_caller]
    pub fn then_events(self, expected: Vec<E>) {
        self.then(&Expect::Events(expected), "");
    }

    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        self.then(&Expect::Error(expected), "");
    }

    #[track_caller]
    pub fn then_invalid(self, field: &'static str) {
        self.then(&Expect::Invalid(field), "");
    }

    /// The events, for a test that goes on from them.
    #[track_caller]
    pub fn events(self) -> Vec<E> {
        match self.0 {
            Ok(events) => events,
            Err(error) => panic!("expected events, got the refusal {error:?}"),
        }
    }

    #[track_caller]
    pub fn then(self, expected: &Expect<E>, case: &str) {
        match (self.0, expected) {
            (Ok(got), Expect::Events(want)) => {
                if &got != want {
                    let got = got.iter().map(|e| format!("  {e:?}\n")).collect::<String>();
                    let want = want
                        .iter()
                        .map(|e| format!("  {e:?}\n"))
                        .collect::<String>();
                    panic!("{case}: events differ\n got:\n{got} want:\n{want}");
                }
            }
            (Err(got), Expect::Error(want)) => assert_eq!(&got, want, "{case}"),
            (Err(DomainError::InvalidInput(got)), Expect::Invalid(field)) => {
                assert_eq!(got.field, *field, "{case}: refused for {got}");
            }
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}

// -------------------------------------------------------------------- clock

/// The fixed instant every decision is made at.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
}

pub fn minutes_later(minutes: i64) -> DateTime<Utc> {
    now() + Duration::minutes(minutes)
}

pub fn days_later(days: i64) -> DateTime<Utc> {
    now() + Duration::days(days)
}

pub fn table() -> PolicyTable {
    PolicyTable::default()
}

// ---------------------------------------------------------------------- ids

/// Task ids made by decisions in `when`: 101, 102, ... so they never clash
/// with the ids 1, 2, ... written into given histories.
pub fn new_task_ids() -> impl FnMut() -> TaskId {
    task_ids_from(101)
}

pub fn task_ids_from(first: u128) -> impl FnMut() -> TaskId {
    let mut next = first;
    move || {
        let id = task(next);
        next += 1;
        id
    }
}

pub fn task(n: u128) -> TaskId {
    TaskId::from_uuid(Uuid::from_u128(n))
}

pub fn hold(n: u128) -> HoldId {
    HoldId::from_uuid(Uuid::from_u128(0x1000 + n))
}

pub fn req(n: u128) -> RequestId {
    RequestId::from_uuid(Uuid::from_u128(0x2000 + n))
}

pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

pub fn acct(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

pub fn integ(id: &str) -> IntegrationId {
    IntegrationId::parse(id).unwrap()
}

pub fn ext(id: &str) -> ExternalAccountId {
    ExternalAccountId::parse(id).unwrap()
}

/// A subject written `KIND:ID`.
pub fn s(raw: &str) -> Subject {
    Subject::parse(raw).unwrap()
}

pub fn subjects(raw: &[&str]) -> Vec<Subject> {
    raw.iter().map(|r| s(r)).collect()
}

pub fn member(account: &str) -> Initiator {
    Initiator::Member {
        account: acct(account),
    }
}

pub fn reason(text: &str) -> Reason {
    Reason::parse(text).unwrap()
}

pub fn note(text: &str) -> Note {
    Note::parse(text).unwrap()
}

pub fn matter(text: &str) -> MatterRef {
    MatterRef::parse(text).unwrap()
}

// ------------------------------------------------------------------- events

pub fn created(workspace: &str, owner: &str) -> LedgerEvent {
    WorkspaceEvent::WorkspaceCreated {
        workspace: ws(workspace),
        owner: acct(owner),
    }
    .into()
}

pub fn added(workspace: &str, account: &str, role: Role) -> LedgerEvent {
    WorkspaceEvent::MemberAdded {
        workspace: ws(workspace),
        account: acct(account),
        role,
        added_by: Initiator::Platform,
    }
    .into()
}

/// A resource registration, built up field by field.
#[derive(Debug, Clone)]
pub struct Reg(pub Registration);

/// A resource `KIND:ID` in `workspace`, nothing else filled.
pub fn resource(subject: &str, workspace: &str) -> Reg {
    Reg(Registration {
        resource: s(subject),
        workspace: Some(ws(workspace)),
        account: None,
        parent: None,
        derived_from: None,
        references: Vec::new(),
        created_by: None,
    })
}

/// An account profile or credentials record of `account`.
pub fn account_data(subject: &str, account: &str) -> Reg {
    Reg(Registration {
        resource: s(subject),
        workspace: None,
        account: Some(acct(account)),
        parent: None,
        derived_from: None,
        references: Vec::new(),
        created_by: None,
    })
}

/// A derived artifact of `file` in `workspace`.
pub fn artifact(subject: &str, file: &str, workspace: &str) -> Reg {
    resource(subject, workspace).derived_from(file)
}

impl Reg {
    pub fn derived_from(mut self, file: &str) -> Self {
        self.0.derived_from = Some(s(file));
        self
    }

    pub fn parent(mut self, parent: &str) -> Self {
        self.0.parent = Some(s(parent));
        self
    }

    pub fn references(mut self, targets: &[&str]) -> Self {
        self.0.references = subjects(targets);
        self
    }

    pub fn created_by(mut self, account: &str) -> Self {
        self.0.created_by = Some(acct(account));
        self
    }

    pub fn event(self) -> LedgerEvent {
        let r = self.0;
        ResourceEvent::ResourceRegistered {
            resource: r.resource,
            workspace: r.workspace,
            account: r.account,
            parent: r.parent,
            derived_from: r.derived_from,
            references: r.references,
            created_by: r.created_by,
        }
        .into()
    }
}

pub fn connected(id: &str, workspace: &str, platform: Platform, external: &str) -> LedgerEvent {
    IntegrationEvent::IntegrationConnected {
        integration: integ(id),
        workspace: ws(workspace),
        platform,
        external_account: ext(external),
        connected_by: Initiator::Platform,
    }
    .into()
}

pub fn disconnected(id: &str, workspace: &str, platform: Platform, external: &str) -> LedgerEvent {
    IntegrationEvent::IntegrationDisconnected {
        integration: integ(id),
        workspace: ws(workspace),
        platform,
        external_account: ext(external),
        disconnected_by: Initiator::Platform,
        channel: Channel::MetaCallback,
        reason: None,
        platform_data_notice: domain::integration::platform_data_notice(platform),
    }
    .into()
}

pub fn placed(n: u128, scope: &str) -> LedgerEvent {
    HoldEvent::HoldPlaced {
        hold: hold(n),
        scope: s(scope),
        kind: HoldKind::Legal,
        matter: matter("matter-1").into(),
        reason: reason("litigation").into(),
        placed_by: "legal:alice".to_owned(),
    }
    .into()
}

pub fn lifted(n: u128, scope: &str) -> LedgerEvent {
    HoldEvent::HoldLifted {
        hold: hold(n),
        scope: s(scope),
        reason: reason("settled").into(),
        lifted_by: "legal:alice".to_owned(),
    }
    .into()
}

/// An in-product request by `by` for `scope`, received at [`now`] under the
/// internal policy, as `receive` records it.
pub fn requested(n: u128, scope: &str, by: Initiator) -> RequestEvent {
    RequestEvent::DeletionRequested {
        request: req(n),
        scope: s(scope),
        channel: Channel::InProduct,
        policy: PolicyName::Internal,
        asked_policy: None,
        received_at: now(),
        due_at: table().due_at(PolicyName::Internal, now()),
        requested_by: by,
        recorded_by: None,
        verification: Verification::NotRequired,
        contact: None,
        confirmation_code: None,
    }
}

/// A new in-product request under the internal policy.
pub fn new_request(n: u128, scope: &str, by: Initiator) -> NewRequest {
    NewRequest {
        request: req(n),
        scope: s(scope),
        channel: Channel::InProduct,
        policy: PolicyName::Internal,
        asked_policy: None,
        requested_by: by,
        recorded_by: None,
        verification: None,
        contact: None,
        confirmation_code: None,
        received_at: None,
    }
}

pub fn released(
    n: u128,
    task_n: u128,
    step: ErasureStep,
    target: &str,
    workspace: Option<&str>,
    covered_by: &[&str],
) -> RequestEvent {
    RequestEvent::TaskReleased {
        request: req(n),
        task: task(task_n),
        step,
        target: s(target),
        workspace: workspace.map(ws),
        covered_by: subjects(covered_by),
    }
}

pub fn claimed(n: u128, task_n: u128, worker: &str) -> RequestEvent {
    RequestEvent::TaskClaimed {
        request: req(n),
        task: task(task_n),
        worker: worker.to_owned(),
        lease_until: minutes_later(10),
    }
}

pub fn blocked(n: u128, holds: &[u128]) -> RequestEvent {
    RequestEvent::DeletionBlocked {
        request: req(n),
        holds: holds.iter().map(|h| hold(*h)).collect(),
    }
}
