//! Every event the ledger stores, one enum per aggregate.
//!
//! Stored events are a compatibility boundary: each variant has a stable
//! type name (the `type` field of its JSON) and a schema version, and the
//! golden files under `domain/tests/golden/` pin their serialized shape.
//! A change of shape is a new schema version, never an edit in place.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::deadline::PolicyName;
use crate::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, TaskId, WorkspaceId,
};
use crate::personal::{Personal, PersonalField};
use crate::subject::{Platform, Subject};
use crate::values::{
    Channel, ErasureStep, HoldKind, Initiator, RetentionBasis, Role, Verification,
};

/// What every event enum offers the application layer.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The stable type name stored in the envelope.
    fn event_type(&self) -> &'static str;
    /// The schema version of this type's payload.
    fn schema_version(&self) -> u16 {
        1
    }
    /// The subjects this event is about, as tags (`workspace:ws-42`,
    /// `hold-scope:file:f-9`, ...), for reads across streams and for
    /// conditional appends.
    fn tags(&self) -> Vec<String>;
    /// The personal values this event holds, with their owners, so that
    /// the application layer can seal them before the event is stored.
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        Vec::new()
    }
}

/// The tag of the event that erased `subject` (R12), so that a decision can
/// learn whether a subject is gone without reading all of its history.
pub fn erased_tag(subject: &Subject) -> String {
    format!("erased:{subject}")
}

/// The tag of a released task that will erase a workspace or an account,
/// so that a registration in one reads, cheaply, whether its erasure is
/// under way. (A resource's own tag already finds its tasks.)
pub fn erasing_tag(subject: &Subject) -> String {
    format!("erasing:{subject}")
}

/// The tag under which a hold on `scope` is found by the decisions that
/// must respect it.
pub fn hold_scope_tag(scope: &Subject) -> String {
    format!("hold-scope:{scope}")
}

macro_rules! event_types {
    ($enum:ident { $($variant:ident),+ $(,)? }) => {
        impl $enum {
            /// Every type name of this enum.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];
        }

        impl $enum {
            fn type_name(&self) -> &'static str {
                match self {
                    $($enum::$variant { .. } => stringify!($variant)),+
                }
            }
        }
    };
}

// ---------------------------------------------------------------- workspace

/// Events of a workspace's membership, stream `workspace-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WorkspaceEvent {
    WorkspaceCreated {
        workspace: WorkspaceId,
        owner: AccountId,
    },
    MemberAdded {
        workspace: WorkspaceId,
        account: AccountId,
        role: Role,
        added_by: Initiator,
    },
    /// R10: the member loses access; what they created stays.
    MemberRemoved {
        workspace: WorkspaceId,
        account: AccountId,
        removed_by: Initiator,
    },
}
event_types!(WorkspaceEvent {
    WorkspaceCreated,
    MemberAdded,
    MemberRemoved
});

impl DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            WorkspaceEvent::WorkspaceCreated { workspace, owner } => {
                vec![format!("workspace:{workspace}"), format!("account:{owner}")]
            }
            WorkspaceEvent::MemberAdded {
                workspace, account, ..
            }
            | WorkspaceEvent::MemberRemoved {
                workspace, account, ..
            } => {
                vec![
                    format!("workspace:{workspace}"),
                    format!("account:{account}"),
                ]
            }
        }
    }
}

// ----------------------------------------------------------------- resource

/// Events of a product resource, stream `resource-{kind}:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResourceEvent {
    ResourceRegistered {
        /// Always a resource subject, e.g. `file:f-9`.
        resource: Subject,
        workspace: Option<WorkspaceId>,
        /// The account the resource belongs to (profiles, credentials).
        account: Option<AccountId>,
        /// The project or folder that contains it.
        parent: Option<Subject>,
        /// R6: the file this artifact was derived from.
        derived_from: Option<Subject>,
        /// R8: resources this one refers to (a canvas showing a file).
        references: Vec<Subject>,
        created_by: Option<AccountId>,
    },
}
event_types!(ResourceEvent { ResourceRegistered });

impl DomainEvent for ResourceEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            ResourceEvent::ResourceRegistered {
                resource,
                workspace,
                account,
                parent,
                derived_from,
                references,
                ..
            } => {
                let mut tags = vec![resource.to_string()];
                tags.extend(workspace.iter().map(|w| format!("workspace:{w}")));
                tags.extend(account.iter().map(|a| format!("account:{a}")));
                tags.extend(parent.iter().map(Subject::to_string));
                tags.extend(derived_from.iter().map(Subject::to_string));
                tags.extend(references.iter().map(Subject::to_string));
                dedup(tags)
            }
        }
    }
}

// -------------------------------------------------------------- integration

/// Events of a connection to an external platform, stream `integration-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum IntegrationEvent {
    IntegrationConnected {
        integration: IntegrationId,
        workspace: WorkspaceId,
        platform: Platform,
        external_account: ExternalAccountId,
        connected_by: Initiator,
    },
    /// R1: from here on syncs stop and the connection is unusable.
    IntegrationDisconnected {
        integration: IntegrationId,
        workspace: WorkspaceId,
        platform: Platform,
        external_account: ExternalAccountId,
        disconnected_by: Initiator,
        channel: Channel,
        reason: Option<Personal>,
        /// R2: what disconnecting does not do, in words shown to people.
        platform_data_notice: String,
    },
}
event_types!(IntegrationEvent {
    IntegrationConnected,
    IntegrationDisconnected
});

impl DomainEvent for IntegrationEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            IntegrationEvent::IntegrationConnected {
                integration,
                workspace,
                platform,
                external_account,
                ..
            }
            | IntegrationEvent::IntegrationDisconnected {
                integration,
                workspace,
                platform,
                external_account,
                ..
            } => vec![
                format!("integration:{integration}"),
                format!("workspace:{workspace}"),
                format!("{platform}:{external_account}"),
            ],
        }
    }
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        match self {
            IntegrationEvent::IntegrationConnected { .. } => Vec::new(),
            IntegrationEvent::IntegrationDisconnected {
                platform,
                external_account,
                reason,
                ..
            } => {
                let owner = Subject::External(crate::subject::ExternalAccount {
                    platform: *platform,
                    id: external_account.clone(),
                });
                reason
                    .iter_mut()
                    .map(|value| PersonalField {
                        field: "reason",
                        owner: owner.clone(),
                        value,
                    })
                    .collect()
            }
        }
    }
}

// --------------------------------------------------------------------- hold

/// Events of a legal or moderation hold, stream `hold-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum HoldEvent {
    HoldPlaced {
        hold: HoldId,
        /// A resource, a workspace or an account.
        scope: Subject,
        kind: HoldKind,
        matter: Personal,
        reason: Personal,
        placed_by: String,
    },
    HoldLifted {
        hold: HoldId,
        scope: Subject,
        reason: Personal,
        lifted_by: String,
    },
}
event_types!(HoldEvent {
    HoldPlaced,
    HoldLifted
});

impl DomainEvent for HoldEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            HoldEvent::HoldPlaced { hold, scope, .. }
            | HoldEvent::HoldLifted { hold, scope, .. } => {
                vec![
                    format!("hold:{hold}"),
                    hold_scope_tag(scope),
                    scope.to_string(),
                ]
            }
        }
    }
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        let field = |field, hold: &HoldId, value| PersonalField {
            field,
            owner: Subject::Hold(*hold),
            value,
        };
        match self {
            HoldEvent::HoldPlaced {
                hold,
                matter,
                reason,
                ..
            } => vec![field("matter", hold, matter), field("reason", hold, reason)],
            HoldEvent::HoldLifted { hold, reason, .. } => vec![field("reason", hold, reason)],
        }
    }
}

// ------------------------------------------------------------------ request

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum RefusalReason {
    /// R11: the account is the sole owner of workspaces with other members.
    SoleOwnerOfSharedWorkspace { workspaces: Vec<WorkspaceId> },
    /// The requester could not be verified.
    VerificationFailed { detail: Personal },
}

impl RefusalReason {
    /// The reason in words, for status pages and reports.
    pub fn explain(&self) -> String {
        match self {
            RefusalReason::SoleOwnerOfSharedWorkspace { workspaces } => format!(
                "the account is the sole owner of {} that other members use ({}); \
                 transfer ownership or remove the other members first",
                if workspaces.len() == 1 {
                    "a workspace"
                } else {
                    "workspaces"
                },
                workspaces
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RefusalReason::VerificationFailed { detail } => {
                format!("the requester could not be verified: {detail}")
            }
        }
    }

    /// A short stable code, for counting refusals by reason.
    pub fn code(&self) -> &'static str {
        match self {
            RefusalReason::SoleOwnerOfSharedWorkspace { .. } => "sole-owner-of-shared-workspace",
            RefusalReason::VerificationFailed { .. } => "verification-failed",
        }
    }
}

/// Events of a deletion request and its erasure tasks, stream `request-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RequestEvent {
    DeletionRequested {
        request: RequestId,
        /// A resource, workspace, account, integration or external account.
        scope: Subject,
        channel: Channel,
        policy: PolicyName,
        /// R3: the policy the caller named, when the request is held to
        /// another, stricter one (YouTube API user data). The duties of
        /// the named policy that the other lacks still apply: CCPA's
        /// confirmation of receipt. Absent in requests recorded before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asked_policy: Option<PolicyName>,
        received_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
        requested_by: Initiator,
        /// R15: the operator who recorded a request that came by e-mail.
        recorded_by: Option<String>,
        verification: Verification,
        /// Personal contact details of the requester, if given.
        contact: Option<Personal>,
        /// The code a Meta data-deletion callback answered with (R5).
        confirmation_code: Option<String>,
    },
    RequestVerified {
        request: RequestId,
        method: Personal,
        verified_by: String,
    },
    DeletionRefused {
        request: RequestId,
        reason: RefusalReason,
    },
    /// R7: blocked, not refused; resumes when the last covering hold lifts.
    DeletionBlocked {
        request: RequestId,
        holds: Vec<HoldId>,
    },
    DeletionResumed {
        request: RequestId,
    },
    DeadlineExtended {
        request: RequestId,
        due_at: DateTime<Utc>,
        reason: Personal,
    },
    /// The requester was told that their request was received (CCPA
    /// § 7021(a) asks for it within 10 business days; any policy may
    /// record it).
    ReceiptConfirmed {
        request: RequestId,
        confirmed_at: DateTime<Utc>,
    },
    /// One erasure step released to workers.
    TaskReleased {
        request: RequestId,
        task: TaskId,
        step: ErasureStep,
        target: Subject,
        workspace: Option<WorkspaceId>,
        /// The scopes whose holds stop this task: the target, its
        /// workspace, its account, its parents and its source file.
        covered_by: Vec<Subject>,
    },
    TaskClaimed {
        request: RequestId,
        task: TaskId,
        worker: String,
        lease_until: DateTime<Utc>,
    },
    /// R6: a failed attempt, recorded and retried later.
    TaskFailed {
        request: RequestId,
        task: TaskId,
        worker: String,
        attempt: u32,
        error: Personal,
        next_attempt_at: DateTime<Utc>,
    },
    TaskCompleted {
        request: RequestId,
        task: TaskId,
        step: ErasureStep,
        target: Subject,
        worker: String,
    },
    /// R1 / R14: a record kept on purpose, with its basis and end date.
    RetentionExceptionRecorded {
        request: RequestId,
        target: Subject,
        basis: RetentionBasis,
        until: DateTime<Utc>,
        note: Personal,
    },
    /// Every step is done. R13: residual copies in backups and logs are
    /// purged by `residual_copies_purged_by`.
    DeletionCompleted {
        request: RequestId,
        completed_at: DateTime<Utc>,
        residual_copies_purged_by: DateTime<Utc>,
    },
}
event_types!(RequestEvent {
    DeletionRequested,
    RequestVerified,
    DeletionRefused,
    DeletionBlocked,
    DeletionResumed,
    DeadlineExtended,
    ReceiptConfirmed,
    TaskReleased,
    TaskClaimed,
    TaskFailed,
    TaskCompleted,
    RetentionExceptionRecorded,
    DeletionCompleted,
});

impl RequestEvent {
    pub fn request(&self) -> RequestId {
        match self {
            RequestEvent::DeletionRequested { request, .. }
            | RequestEvent::RequestVerified { request, .. }
            | RequestEvent::DeletionRefused { request, .. }
            | RequestEvent::DeletionBlocked { request, .. }
            | RequestEvent::DeletionResumed { request }
            | RequestEvent::DeadlineExtended { request, .. }
            | RequestEvent::ReceiptConfirmed { request, .. }
            | RequestEvent::TaskReleased { request, .. }
            | RequestEvent::TaskClaimed { request, .. }
            | RequestEvent::TaskFailed { request, .. }
            | RequestEvent::TaskCompleted { request, .. }
            | RequestEvent::RetentionExceptionRecorded { request, .. }
            | RequestEvent::DeletionCompleted { request, .. } => *request,
        }
    }
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    /// 2 for a `DeletionRequested` that names the policy its caller asked
    /// for (`asked_policy`), so that a build knowing only version 1
    /// refuses it instead of dropping the field; 1 otherwise, the shape
    /// every request had before.
    fn schema_version(&self) -> u16 {
        match self {
            RequestEvent::DeletionRequested {
                asked_policy: Some(_),
                ..
            } => 2,
            _ => 1,
        }
    }
    fn tags(&self) -> Vec<String> {
        let mut tags = vec![format!("request:{}", self.request())];
        match self {
            RequestEvent::DeletionRequested { scope, .. } => tags.push(scope.to_string()),
            RequestEvent::DeletionBlocked { holds, .. } => {
                tags.extend(holds.iter().map(|h| format!("hold:{h}")));
            }
            RequestEvent::TaskReleased {
                task,
                step,
                target,
                workspace,
                covered_by,
                ..
            } => {
                // Tagged with every covering scope, so that a new hold on
                // any of them finds the tasks it suspends.
                tags.push(format!("task:{task}"));
                tags.push(target.to_string());
                tags.extend(workspace.iter().map(|w| format!("workspace:{w}")));
                tags.extend(covered_by.iter().map(Subject::to_string));
                if step.erases_target()
                    && matches!(target, Subject::Workspace(_) | Subject::Account(_))
                {
                    tags.push(erasing_tag(target));
                }
            }
            RequestEvent::TaskClaimed { task, .. } | RequestEvent::TaskFailed { task, .. } => {
                tags.push(format!("task:{task}"));
            }
            RequestEvent::TaskCompleted {
                task, step, target, ..
            } => {
                tags.push(format!("task:{task}"));
                tags.push(target.to_string());
                if step.erases_target() {
                    tags.push(erased_tag(target));
                }
            }
            RequestEvent::RetentionExceptionRecorded { target, .. } => {
                tags.push(target.to_string());
            }
            RequestEvent::RequestVerified { .. }
            | RequestEvent::DeletionRefused { .. }
            | RequestEvent::DeletionResumed { .. }
            | RequestEvent::DeadlineExtended { .. }
            | RequestEvent::ReceiptConfirmed { .. }
            | RequestEvent::DeletionCompleted { .. } => {}
        }
        dedup(tags)
    }
    fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        let (request, fields): (&RequestId, Vec<(&'static str, &mut Personal)>) = match self {
            RequestEvent::DeletionRequested {
                request,
                contact,
                verification,
                ..
            } => {
                let mut fields: Vec<(&'static str, &mut Personal)> = Vec::new();
                if let Some(contact) = contact {
                    fields.push(("contact", contact));
                }
                if let Verification::Verified { method, .. } = verification {
                    fields.push(("verification", method));
                }
                (request, fields)
            }
            RequestEvent::RequestVerified {
                request, method, ..
            } => (request, vec![("method", method)]),
            RequestEvent::DeletionRefused {
                request,
                reason: RefusalReason::VerificationFailed { detail },
            } => (request, vec![("detail", detail)]),
            RequestEvent::DeadlineExtended {
                request, reason, ..
            } => (request, vec![("reason", reason)]),
            RequestEvent::TaskFailed { request, error, .. } => (request, vec![("error", error)]),
            RequestEvent::RetentionExceptionRecorded { request, note, .. } => {
                (request, vec![("note", note)])
            }
            RequestEvent::DeletionRefused { .. }
            | RequestEvent::DeletionBlocked { .. }
            | RequestEvent::DeletionResumed { .. }
            | RequestEvent::ReceiptConfirmed { .. }
            | RequestEvent::TaskReleased { .. }
            | RequestEvent::TaskClaimed { .. }
            | RequestEvent::TaskCompleted { .. }
            | RequestEvent::DeletionCompleted { .. } => return Vec::new(),
        };
        let owner = Subject::Request(*request);
        fields
            .into_iter()
            .map(|(field, value)| PersonalField {
                field,
                owner: owner.clone(),
                value,
            })
            .collect()
    }
}

// ----------------------------------------------------------------- callback

/// Calls refused at the edge: invalid Meta callbacks (stream
/// `callbacks`) and API calls refused for their token or their caller's
/// rights (stream `access-refusals`). DESIGN: every refusal is audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CallbackEvent {
    /// R5: an invalid callback is refused, recorded, and deletes nothing.
    CallbackRefused {
        endpoint: String,
        reason: String,
        received_at: DateTime<Utc>,
    },
    /// An API call refused with 401 (no token, or one unknown or revoked)
    /// or 403 (its role, or a rule, reserves it to someone else). Nothing
    /// was done.
    AccessRefused {
        /// The method and the route's pattern, e.g. `POST /v1/holds`
        /// (never the path as sent, which may hold subjects).
        route: String,
        status: u16,
        /// The token's name, when the token was known.
        principal: Option<String>,
        reason: String,
        received_at: DateTime<Utc>,
    },
}
event_types!(CallbackEvent {
    CallbackRefused,
    AccessRefused
});

impl DomainEvent for CallbackEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            CallbackEvent::CallbackRefused { .. } => vec!["callbacks".to_owned()],
            CallbackEvent::AccessRefused { .. } => vec!["access-refusals".to_owned()],
        }
    }
}

// ------------------------------------------------------------------ privacy

/// Why a subject's personal data was forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForgetCause {
    /// An administrator asked for it.
    OnRequest,
    /// The requester's contact details, a set time after their request
    /// completed.
    AfterRequestCompleted,
    /// The requester's contact details, a set time after their request
    /// was refused (nothing was deleted, and nothing more will be).
    AfterRequestRefused,
}

/// Events of crypto-shredding, stream `subject-{subject}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PrivacyEvent {
    /// The subject's data key is destroyed: every personal value it owned
    /// reads `[erased]` from now on. Holds no personal data itself (an
    /// external account is named by its keyed hash).
    SubjectForgotten {
        subject: Subject,
        cause: ForgetCause,
        forgotten_at: DateTime<Utc>,
    },
}
event_types!(PrivacyEvent { SubjectForgotten });

/// The tag of the event that forgot `subject`.
pub fn forgotten_tag(subject: &Subject) -> String {
    format!("forgotten:{subject}")
}

impl DomainEvent for PrivacyEvent {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }
    fn tags(&self) -> Vec<String> {
        match self {
            PrivacyEvent::SubjectForgotten { subject, .. } => {
                vec![subject.to_string(), forgotten_tag(subject)]
            }
        }
    }
}

// -------------------------------------------------------------------- all

/// Any stored event, decoded by its type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LedgerEvent {
    Workspace(WorkspaceEvent),
    Resource(ResourceEvent),
    Integration(IntegrationEvent),
    Hold(HoldEvent),
    Request(RequestEvent),
    Callback(CallbackEvent),
    Privacy(PrivacyEvent),
}

/// The highest schema version of any event type (`DeletionRequested`'s).
pub const LATEST_SCHEMA_VERSION: u16 = 2;

/// A stored payload that does not decode: an unknown type, or a shape the
/// type's schema does not accept. The log is corrupt or newer than this
/// build; an operator must look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode event of type {event_type} (schema {schema_version}): {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: u16,
    pub reason: String,
}

impl LedgerEvent {
    /// Decodes a payload stored under `event_type` and `schema_version`.
    pub fn decode(
        event_type: &str,
        schema_version: u16,
        payload: &serde_json::Value,
    ) -> Result<Self, DecodeError> {
        let error = |reason: String| DecodeError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        if !(1..=LATEST_SCHEMA_VERSION).contains(&schema_version) {
            return Err(error("unknown schema version".into()));
        }
        // Deserialised from the borrowed value: no copy of the tree.
        let decode = |p: &serde_json::Value| -> Result<LedgerEvent, serde_json::Error> {
            Ok(if WorkspaceEvent::TYPES.contains(&event_type) {
                LedgerEvent::Workspace(Deserialize::deserialize(p)?)
            } else if ResourceEvent::TYPES.contains(&event_type) {
                LedgerEvent::Resource(Deserialize::deserialize(p)?)
            } else if IntegrationEvent::TYPES.contains(&event_type) {
                LedgerEvent::Integration(Deserialize::deserialize(p)?)
            } else if HoldEvent::TYPES.contains(&event_type) {
                LedgerEvent::Hold(Deserialize::deserialize(p)?)
            } else if RequestEvent::TYPES.contains(&event_type) {
                LedgerEvent::Request(Deserialize::deserialize(p)?)
            } else if CallbackEvent::TYPES.contains(&event_type) {
                LedgerEvent::Callback(Deserialize::deserialize(p)?)
            } else if PrivacyEvent::TYPES.contains(&event_type) {
                LedgerEvent::Privacy(Deserialize::deserialize(p)?)
            } else {
                return Err(serde::de::Error::custom("unknown event type"));
            })
        };
        let event = decode(payload).map_err(|e| error(e.to_string()))?;
        if event.event_type() != event_type {
            return Err(error(format!(
                "payload says {}, envelope says {event_type}",
                event.event_type()
            )));
        }
        if event.schema_version() != schema_version {
            return Err(error(format!(
                "the payload has the shape of schema {}",
                event.schema_version()
            )));
        }
        Ok(event)
    }

    /// The schema version of this event's payload; see
    /// [`DomainEvent::schema_version`].
    pub fn schema_version(&self) -> u16 {
        match self {
            LedgerEvent::Workspace(e) => e.schema_version(),
            LedgerEvent::Resource(e) => e.schema_version(),
            LedgerEvent::Integration(e) => e.schema_version(),
            LedgerEvent::Hold(e) => e.schema_version(),
            LedgerEvent::Request(e) => e.schema_version(),
            LedgerEvent::Callback(e) => e.schema_version(),
            LedgerEvent::Privacy(e) => e.schema_version(),
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            LedgerEvent::Workspace(e) => e.event_type(),
            LedgerEvent::Resource(e) => e.event_type(),
            LedgerEvent::Integration(e) => e.event_type(),
            LedgerEvent::Hold(e) => e.event_type(),
            LedgerEvent::Request(e) => e.event_type(),
            LedgerEvent::Callback(e) => e.event_type(),
            LedgerEvent::Privacy(e) => e.event_type(),
        }
    }

    pub fn tags(&self) -> Vec<String> {
        match self {
            LedgerEvent::Workspace(e) => e.tags(),
            LedgerEvent::Resource(e) => e.tags(),
            LedgerEvent::Integration(e) => e.tags(),
            LedgerEvent::Hold(e) => e.tags(),
            LedgerEvent::Request(e) => e.tags(),
            LedgerEvent::Callback(e) => e.tags(),
            LedgerEvent::Privacy(e) => e.tags(),
        }
    }

    /// The personal values this event holds; see [`DomainEvent::personal_fields`].
    pub fn personal_fields(&mut self) -> Vec<PersonalField<'_>> {
        match self {
            LedgerEvent::Workspace(e) => e.personal_fields(),
            LedgerEvent::Resource(e) => e.personal_fields(),
            LedgerEvent::Integration(e) => e.personal_fields(),
            LedgerEvent::Hold(e) => e.personal_fields(),
            LedgerEvent::Request(e) => e.personal_fields(),
            LedgerEvent::Callback(e) => e.personal_fields(),
            LedgerEvent::Privacy(e) => e.personal_fields(),
        }
    }

    /// Every type name the ledger knows.
    pub fn all_types() -> Vec<&'static str> {
        [
            WorkspaceEvent::TYPES,
            ResourceEvent::TYPES,
            IntegrationEvent::TYPES,
            HoldEvent::TYPES,
            RequestEvent::TYPES,
            CallbackEvent::TYPES,
            PrivacyEvent::TYPES,
        ]
        .concat()
    }
}

macro_rules! into_ledger_event {
    ($($enum:ident => $variant:ident),+) => {
        $(impl From<$enum> for LedgerEvent {
            fn from(event: $enum) -> Self {
                LedgerEvent::$variant(event)
            }
        })+
    };
}
into_ledger_event!(
    WorkspaceEvent => Workspace,
    ResourceEvent => Resource,
    IntegrationEvent => Integration,
    HoldEvent => Hold,
    RequestEvent => Request,
    CallbackEvent => Callback,
    PrivacyEvent => Privacy
);

fn dedup(mut tags: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    tags.retain(|tag| seen.insert(tag.clone()));
    tags
}
