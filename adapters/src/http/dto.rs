//! The JSON bodies of the API and their parsing into domain values
//! (`TryFrom<Dto>`): the edge parses once, the handlers only see valid
//! values. A bad value is a 422 that names the body field.

use chrono::{DateTime, Utc};
use commands::ledger::ClaimedTask;
use commands::{DeletionRequestInput, RequestSummary};
use domain::deadline::PolicyName;
use domain::error::InvalidInput;
use domain::ids::{AccountId, ExternalAccountId, HoldId, IntegrationId, TaskId, WorkspaceId};
use domain::membership::Registration;
use domain::subject::{Platform, Subject};
use domain::text::{parse_text, Contact, MatterRef, Note, Reason};
use domain::values::{Channel, HoldKind, Initiator, RetentionBasis, Role};
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Longest worker name, in characters.
pub const WORKER_CHARS_MAX: usize = 128;
/// Longest operator name (`recorded_by`), in characters.
pub const OPERATOR_CHARS_MAX: usize = 128;
/// Most references one resource registration may carry: each is a tag of
/// the registration's event, beside at most five others (the resource,
/// its workspace, account, parent and source), within the event's
/// [`commands::log::EVENT_TAGS_MAX`].
pub const REFERENCES_MAX: usize = commands::log::EVENT_TAGS_MAX - 5;

/// An external platform's account id. It is stored as a keyed hash and
/// shown as given, so it must not hold what a reader takes for a sealed
/// value (`sealed1:`, `erased1:`): shown, it would read as tampering.
pub fn external_account_id(name: &str, raw: &str) -> Result<ExternalAccountId, ApiError> {
    if domain::personal::Personal::holds_marker(raw) {
        return Err(ApiError::invalid(
            name,
            "must not hold sealed1: or erased1:, which mark sealed personal data in the ledger",
        ));
    }
    field(name, ExternalAccountId::parse(raw))
}

/// Runs a domain parser and names `field` of the body on failure.
pub fn field<T>(name: &str, parsed: Result<T, InvalidInput>) -> Result<T, ApiError> {
    parsed.map_err(|error| ApiError::invalid(name, error.reason))
}

/// `platform` or `account:ID`.
pub fn parse_initiator(name: &str, raw: &str) -> Result<Initiator, ApiError> {
    if raw == "platform" {
        return Ok(Initiator::Platform);
    }
    match raw.strip_prefix("account:") {
        Some(id) => Ok(Initiator::Member {
            account: field(name, AccountId::parse(id))?,
        }),
        None => Err(ApiError::invalid(
            name,
            "must be \"platform\" or \"account:ID\"",
        )),
    }
}

fn opt<T>(
    name: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, InvalidInput>,
) -> Result<Option<T>, ApiError> {
    raw.map(|raw| field(name, parse(raw))).transpose()
}

/// `POST /v1/workspaces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub workspace_id: String,
    pub owner_account_id: String,
}

impl TryFrom<CreateWorkspace> for (WorkspaceId, AccountId) {
    type Error = ApiError;
    fn try_from(dto: CreateWorkspace) -> Result<Self, ApiError> {
        Ok((
            field("workspace_id", WorkspaceId::parse(&dto.workspace_id))?,
            field("owner_account_id", AccountId::parse(&dto.owner_account_id))?,
        ))
    }
}

/// `POST /v1/workspaces/{id}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub account_id: String,
    pub role: String,
    /// `platform` or `account:ID` of the owner or admin who adds.
    pub added_by: String,
}

/// A parsed [`AddMember`].
#[derive(Debug)]
pub struct NewMember {
    pub account: AccountId,
    pub role: Role,
    pub added_by: Initiator,
}

impl TryFrom<AddMember> for NewMember {
    type Error = ApiError;
    fn try_from(dto: AddMember) -> Result<Self, ApiError> {
        Ok(NewMember {
            account: field("account_id", AccountId::parse(&dto.account_id))?,
            role: field("role", dto.role.parse())?,
            added_by: parse_initiator("added_by", &dto.added_by)?,
        })
    }
}

/// `POST /v1/resources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResource {
    /// `KIND:ID`, e.g. `file:f-9`.
    pub resource: String,
    pub workspace_id: Option<String>,
    pub account_id: Option<String>,
    pub parent: Option<String>,
    pub derived_from: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    pub created_by: Option<String>,
}

impl TryFrom<RegisterResource> for Registration {
    type Error = ApiError;
    fn try_from(dto: RegisterResource) -> Result<Self, ApiError> {
        if dto.references.len() > REFERENCES_MAX {
            return Err(ApiError::invalid(
                "references",
                format!("at most {REFERENCES_MAX} references"),
            ));
        }
        Ok(Registration {
            resource: field("resource", Subject::parse(&dto.resource))?,
            workspace: opt(
                "workspace_id",
                dto.workspace_id.as_deref(),
                WorkspaceId::parse,
            )?,
            account: opt("account_id", dto.account_id.as_deref(), AccountId::parse)?,
            parent: opt("parent", dto.parent.as_deref(), Subject::parse)?,
            derived_from: opt("derived_from", dto.derived_from.as_deref(), Subject::parse)?,
            references: dto
                .references
                .iter()
                .map(|r| field("references", Subject::parse(r)))
                .collect::<Result<_, _>>()?,
            created_by: opt("created_by", dto.created_by.as_deref(), AccountId::parse)?,
        })
    }
}

/// `POST /v1/integrations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectIntegration {
    pub integration_id: String,
    pub workspace_id: String,
    /// `youtube`, `tiktok` or `instagram`.
    pub platform: String,
    pub external_account_id: String,
    pub connected_by: String,
}

/// A parsed [`ConnectIntegration`].
#[derive(Debug)]
pub struct NewIntegration {
    pub integration: IntegrationId,
    pub workspace: WorkspaceId,
    pub platform: Platform,
    pub external_account: ExternalAccountId,
    pub connected_by: Initiator,
}

impl TryFrom<ConnectIntegration> for NewIntegration {
    type Error = ApiError;
    fn try_from(dto: ConnectIntegration) -> Result<Self, ApiError> {
        Ok(NewIntegration {
            integration: field("integration_id", IntegrationId::parse(&dto.integration_id))?,
            workspace: field("workspace_id", WorkspaceId::parse(&dto.workspace_id))?,
            platform: field("platform", dto.platform.parse())?,
            external_account: external_account_id("external_account_id", &dto.external_account_id)?,
            connected_by: parse_initiator("connected_by", &dto.connected_by)?,
        })
    }
}

/// `POST /v1/integrations/{id}/disconnect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    pub disconnected_by: String,
    /// Default `in-product`.
    pub channel: Option<String>,
    pub reason: Option<String>,
}

/// A parsed [`Disconnect`].
#[derive(Debug)]
pub struct Disconnection {
    pub by: Initiator,
    pub channel: Channel,
    pub reason: Option<Reason>,
}

impl TryFrom<Disconnect> for Disconnection {
    type Error = ApiError;
    fn try_from(dto: Disconnect) -> Result<Self, ApiError> {
        let channel =
            opt("channel", dto.channel.as_deref(), str::parse)?.unwrap_or(Channel::InProduct);
        // The disconnect's clean-up request is asked through the same
        // channel, and the others need what this body cannot carry: an
        // e-mail request its operator and verification (R15), a Meta one
        // its signed callback (R4).
        match channel {
            Channel::InProduct | Channel::GoogleYoutube => {}
            Channel::EmailToSupport => {
                return Err(ApiError::invalid(
                    "channel",
                    "a request by e-mail to support is recorded with POST /v1/deletion-requests \
                     (scope integration:ID, recorded_by, verification); a disconnect is \
                     in-product or google-youtube",
                ))
            }
            Channel::MetaCallback => {
                return Err(ApiError::invalid(
                    "channel",
                    "meta-callback disconnects arrive only through the signed Meta \
                     deauthorize callback",
                ))
            }
            Channel::RetentionPolicy => {
                return Err(ApiError::invalid(
                    "channel",
                    "retention-policy is the ledger's own channel; a disconnect is \
                     in-product or google-youtube",
                ))
            }
        }
        Ok(Disconnection {
            by: parse_initiator("disconnected_by", &dto.disconnected_by)?,
            channel,
            reason: opt("reason", dto.reason.as_deref(), Reason::parse)?,
        })
    }
}

/// `POST /v1/deletion-requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDeletion {
    /// `KIND:ID` of what to delete.
    pub scope: String,
    /// `in-product`, `email-to-support`, `google-youtube`, ...
    pub channel: String,
    /// `gdpr`, `ccpa`, `youtube-api-user-data`, `internal`; chosen from
    /// the scope when absent, and `youtube-api-user-data` whenever the
    /// scope covers YouTube API data (R3).
    pub policy: Option<String>,
    pub requested_by: String,
    /// R15: the support operator who recorded an e-mail request.
    pub recorded_by: Option<String>,
    /// R15 / R11: how the requester was verified.
    pub verification: Option<String>,
    /// The requester's contact (an e-mail address), personal data.
    pub contact: Option<String>,
    /// R15: when the e-mail arrived (RFC 3339), for an e-mail request
    /// recorded after it came in; the deadline counts from it.
    pub received_at: Option<String>,
}

impl TryFrom<RequestDeletion> for DeletionRequestInput {
    type Error = ApiError;
    fn try_from(dto: RequestDeletion) -> Result<Self, ApiError> {
        let channel: Channel = field("channel", dto.channel.parse())?;
        if channel == Channel::MetaCallback {
            return Err(ApiError::invalid(
                "channel",
                "meta-callback requests arrive only through the signed Meta callbacks",
            ));
        }
        Ok(DeletionRequestInput {
            scope: field("scope", Subject::parse(&dto.scope))?,
            channel,
            policy: opt("policy", dto.policy.as_deref(), str::parse::<PolicyName>)?,
            requested_by: parse_initiator("requested_by", &dto.requested_by)?,
            recorded_by: opt("recorded_by", dto.recorded_by.as_deref(), |raw| {
                parse_text("recorded_by", raw, OPERATOR_CHARS_MAX)
            })?,
            verification: opt("verification", dto.verification.as_deref(), Note::parse)?,
            contact: opt("contact", dto.contact.as_deref(), Contact::parse)?,
            received_at: opt("received_at", dto.received_at.as_deref(), rfc3339)?,
        })
    }
}

/// `POST /v1/deletion-requests/{id}/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// How the requester was verified.
    pub method: String,
}

/// `POST /v1/deletion-requests/{id}/confirm-receipt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmReceipt {
    /// When the requester was told (RFC 3339), if before this call.
    pub confirmed_at: Option<String>,
}

impl ConfirmReceipt {
    pub fn confirmed_at(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        opt("confirmed_at", self.confirmed_at.as_deref(), rfc3339)
    }
}

/// An RFC 3339 time, in UTC.
pub fn rfc3339(raw: &str) -> Result<DateTime<Utc>, InvalidInput> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| InvalidInput::new("time", format!("must be an RFC 3339 time: {e}")))
}

/// `POST /v1/deletion-requests/{id}/refuse`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefuseRequest {
    /// Why the requester could not be verified.
    pub reason: String,
}

/// `POST /v1/deletion-requests/{id}/extend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendDeadline {
    /// Why more time is needed; the policy says whether it is required
    /// (CCPA: yes).
    pub reason: Option<String>,
}

impl ExtendDeadline {
    pub fn reason(&self) -> Result<Option<Reason>, ApiError> {
        opt("reason", self.reason.as_deref(), Reason::parse)
    }
}

/// `POST /v1/deletion-requests/{id}/retentions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRetention {
    /// `KIND:ID` of the record kept.
    pub target: String,
    /// security | audit | troubleshooting | legal | billing | platform-compliance
    pub basis: String,
    /// RFC 3339: when the record is deleted after all.
    pub until: String,
    /// What is kept and why.
    pub note: String,
}

/// A retention exception, parsed.
#[derive(Debug)]
pub struct NewRetention {
    pub target: Subject,
    pub basis: RetentionBasis,
    pub until: DateTime<Utc>,
    pub note: Note,
}

impl TryFrom<RecordRetention> for NewRetention {
    type Error = ApiError;
    fn try_from(dto: RecordRetention) -> Result<Self, ApiError> {
        Ok(NewRetention {
            target: field("target", Subject::parse(&dto.target))?,
            basis: field("basis", dto.basis.parse())?,
            until: DateTime::parse_from_rfc3339(&dto.until)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ApiError::invalid("until", format!("must be RFC 3339: {e}")))?,
            note: field("note", Note::parse(&dto.note))?,
        })
    }
}

/// `POST /v1/tasks/claim`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimTask {
    pub worker: String,
    /// Default 300, at most 3600.
    pub lease_seconds: Option<i64>,
    /// Claim this task; without it, the oldest claimable one.
    pub task_id: Option<String>,
    /// Only tasks of this step, e.g. `delete-storage-object`.
    pub step: Option<String>,
}

/// The default lease of a claim, in seconds.
pub const LEASE_SECONDS_DEFAULT: i64 = 300;

/// A parsed [`ClaimTask`].
#[derive(Debug)]
pub struct Claim {
    pub worker: String,
    pub lease_seconds: i64,
    pub task: Option<TaskId>,
    pub step: Option<domain::values::ErasureStep>,
}

pub fn parse_worker(raw: &str) -> Result<String, ApiError> {
    field("worker", parse_text("worker", raw, WORKER_CHARS_MAX))
}

impl TryFrom<ClaimTask> for Claim {
    type Error = ApiError;
    fn try_from(dto: ClaimTask) -> Result<Self, ApiError> {
        let lease_seconds = dto.lease_seconds.unwrap_or(LEASE_SECONDS_DEFAULT);
        if !(1..=commands::ledger::LEASE_SECONDS_MAX).contains(&lease_seconds) {
            return Err(ApiError::invalid(
                "lease_seconds",
                format!(
                    "must be 1 to {} seconds",
                    commands::ledger::LEASE_SECONDS_MAX
                ),
            ));
        }
        Ok(Claim {
            worker: parse_worker(&dto.worker)?,
            lease_seconds,
            task: opt("task_id", dto.task_id.as_deref(), TaskId::parse)?,
            step: opt("step", dto.step.as_deref(), str::parse)?,
        })
    }
}

/// `POST /v1/tasks/{id}/complete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    pub worker: String,
}

/// `POST /v1/tasks/{id}/fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailTask {
    pub worker: String,
    /// What went wrong; recorded, the task is retried later (R6).
    pub error: String,
}

/// `POST /v1/holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceHold {
    /// `KIND:ID` of what the hold covers, e.g. `workspace:ws-42`.
    pub scope: String,
    /// `legal` or `moderation`.
    pub kind: String,
    pub matter: String,
    pub reason: String,
}

/// A parsed [`PlaceHold`].
#[derive(Debug)]
pub struct NewHold {
    pub scope: Subject,
    pub kind: HoldKind,
    pub matter: MatterRef,
    pub reason: Reason,
}

impl TryFrom<PlaceHold> for NewHold {
    type Error = ApiError;
    fn try_from(dto: PlaceHold) -> Result<Self, ApiError> {
        Ok(NewHold {
            scope: field("scope", Subject::parse(&dto.scope))?,
            kind: field("kind", dto.kind.parse())?,
            matter: field("matter", MatterRef::parse(&dto.matter))?,
            reason: field("reason", Reason::parse(&dto.reason))?,
        })
    }
}

/// `POST /v1/holds/{id}/lift`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftHold {
    pub reason: String,
}

// ------------------------------------------------------------- answers

/// The answer to commands on a deletion request.
#[derive(Debug, Serialize)]
pub struct RequestAnswer {
    pub request_id: String,
    pub scope: String,
    pub state: &'static str,
    pub due_at: DateTime<Utc>,
    pub blocked_by: Vec<HoldId>,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub completed_at: Option<DateTime<Utc>>,
    pub residual_copies_purged_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_code: Option<String>,
}

impl From<RequestSummary> for RequestAnswer {
    fn from(s: RequestSummary) -> Self {
        RequestAnswer {
            request_id: s.request_id.to_string(),
            scope: s.scope,
            state: s.state,
            due_at: s.due_at,
            blocked_by: s.blocked_by,
            tasks_total: s.tasks_total,
            tasks_done: s.tasks_done,
            completed_at: s.completed_at,
            residual_copies_purged_by: s.residual_copies_purged_by,
            confirmation_code: s.confirmation_code,
        }
    }
}

/// The answer to a claim.
#[derive(Debug, Serialize)]
pub struct ClaimAnswer {
    pub task_id: String,
    pub request_id: String,
    pub step: String,
    pub target: String,
    pub lease_until: DateTime<Utc>,
}

impl From<ClaimedTask> for ClaimAnswer {
    fn from(c: ClaimedTask) -> Self {
        ClaimAnswer {
            task_id: c.task_id.to_string(),
            request_id: c.request_id.to_string(),
            step: c.step,
            target: c.target,
            lease_until: c.lease_until,
        }
    }
}
