//! The audit trail: every event as a human-readable entry — who, what,
//! when, why, about which subjects — found by subject, actor, event type
//! and time, paged by log position.

use std::fmt;

use commands::log::RecordedEvent;
use domain::events::{
    CallbackEvent, ForgetCause, HoldEvent, IntegrationEvent, LedgerEvent, PrivacyEvent,
    RequestEvent, ResourceEvent, WorkspaceEvent,
};
use domain::subject::Subject;
use domain::values::{Initiator, Verification};

use crate::error::ReadModelError;
use crate::rows::{AuditEntry, ReadModelTx};

pub async fn apply(
    tx: &mut dyn ReadModelTx,
    recorded: &RecordedEvent,
    event: &LedgerEvent,
) -> Result<(), ReadModelError> {
    tx.append_audit(entry(recorded, event)).await
}

/// The audit entry of one event.
pub fn entry(recorded: &RecordedEvent, event: &LedgerEvent) -> AuditEntry {
    let (summary, reason) = describe(event);
    AuditEntry {
        position: recorded.position,
        event_id: recorded.event_id,
        stream: recorded.stream.as_str().to_owned(),
        event_type: recorded.event_type.clone(),
        occurred_at: recorded.occurred_at,
        recorded_at: recorded.recorded_at,
        actor: recorded.metadata.actor.clone(),
        source_channel: recorded.metadata.source_channel.clone(),
        correlation_id: recorded.metadata.correlation_id,
        causation_id: recorded.metadata.causation_id,
        summary,
        reason,
        subjects: subjects(recorded),
    }
}

/// The subjects an event is about: those of its stored tags that are
/// subjects written as a subject is written (`file:f-9`, `instagram:…`,
/// `request:…`), not the technical ones (`hold-scope:…`, `erased:…`).
/// Taken from the stored tags because the lookup of a subject's entries
/// reads the log's tag index: an entry names exactly the subjects under
/// which that lookup finds it.
pub fn subjects(recorded: &RecordedEvent) -> Vec<String> {
    let mut subjects: Vec<&str> = recorded
        .tags
        .iter()
        .map(|tag| tag.as_str())
        .filter(|tag| is_subject(tag))
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects.into_iter().map(str::to_owned).collect()
}

/// Whether a stored tag names a subject in its canonical form, the form
/// an audit lookup by subject searches for.
pub fn is_subject(tag: &str) -> bool {
    Subject::parse(tag).is_ok_and(|subject| displays_as(&subject, tag))
}

/// Whether `value` displays as exactly `text`, compared piece by piece
/// as it is written: every event's tags are checked, so the text is
/// never made.
fn displays_as(value: &impl fmt::Display, text: &str) -> bool {
    /// Accepts what is written while it continues `rest`.
    struct Continues<'a> {
        rest: &'a str,
    }
    impl fmt::Write for Continues<'_> {
        fn write_str(&mut self, written: &str) -> fmt::Result {
            self.rest = self.rest.strip_prefix(written).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut sink = Continues { rest: text };
    fmt::write(&mut sink, format_args!("{value}")).is_ok() && sink.rest.is_empty()
}

fn who(initiator: &Initiator) -> String {
    match initiator {
        Initiator::Member { account } => format!("member {account}"),
        Initiator::Platform => "the platform".to_owned(),
    }
}

/// What happened, in words, and why when the event says.
pub fn describe(event: &LedgerEvent) -> (String, Option<String>) {
    match event {
        LedgerEvent::Workspace(event) => match event {
            WorkspaceEvent::WorkspaceCreated { workspace, owner } => (
                format!("workspace {workspace} created, owned by account {owner}"),
                None,
            ),
            WorkspaceEvent::MemberAdded {
                workspace,
                account,
                role,
                added_by,
            } => (
                format!(
                    "account {account} added to workspace {workspace} as {role} by {}",
                    who(added_by)
                ),
                None,
            ),
            WorkspaceEvent::MemberRemoved {
                workspace,
                account,
                removed_by,
            } => (
                format!(
                    "account {account} removed from workspace {workspace} by {}; what they created stays",
                    who(removed_by)
                ),
                None,
            ),
        },
        LedgerEvent::Resource(ResourceEvent::ResourceRegistered {
            resource,
            workspace,
            account,
            parent,
            derived_from,
            references,
            ..
        }) => {
            let mut text = format!("{resource} registered");
            if let Some(workspace) = workspace {
                text.push_str(&format!(" in workspace {workspace}"));
            }
            if let Some(account) = account {
                text.push_str(&format!(" for account {account}"));
            }
            if let Some(parent) = parent {
                text.push_str(&format!(", inside {parent}"));
            }
            if let Some(source) = derived_from {
                text.push_str(&format!(", derived from {source}"));
            }
            if !references.is_empty() {
                let list: Vec<String> = references.iter().map(ToString::to_string).collect();
                text.push_str(&format!(", refers to {}", list.join(", ")));
            }
            (text, None)
        }
        LedgerEvent::Integration(event) => match event {
            IntegrationEvent::IntegrationConnected {
                integration,
                workspace,
                platform,
                external_account,
                connected_by,
            } => (
                format!(
                    "integration {integration} ({platform} account {external_account}) connected to workspace {workspace} by {}",
                    who(connected_by)
                ),
                None,
            ),
            IntegrationEvent::IntegrationDisconnected {
                integration,
                workspace,
                platform,
                disconnected_by,
                channel,
                reason,
                platform_data_notice,
                ..
            } => (
                // R2: the trail says what disconnecting does not delete.
                format!(
                    "integration {integration} ({platform}) disconnected from workspace {workspace} by {} via {channel}; syncs stopped. {platform_data_notice}",
                    who(disconnected_by)
                ),
                reason.as_ref().map(ToString::to_string),
            ),
        },
        LedgerEvent::Hold(event) => match event {
            HoldEvent::HoldPlaced {
                hold,
                scope,
                kind,
                matter,
                reason,
                placed_by,
            } => (
                format!("{kind} hold {hold} placed on {scope} (matter {matter}) by {placed_by}"),
                Some(reason.to_string()),
            ),
            HoldEvent::HoldLifted {
                hold,
                scope,
                reason,
                lifted_by,
            } => (
                format!("hold {hold} on {scope} lifted by {lifted_by}"),
                Some(reason.to_string()),
            ),
        },
        LedgerEvent::Request(event) => describe_request(event),
        LedgerEvent::Callback(CallbackEvent::CallbackRefused {
            endpoint, reason, ..
        }) => (
            format!("callback to {endpoint} refused; nothing was deleted"),
            Some(reason.clone()),
        ),
        LedgerEvent::Callback(CallbackEvent::AccessRefused {
            route,
            status,
            principal,
            reason,
            ..
        }) => (
            format!(
                "{route} refused ({status}){}; nothing was done",
                match (principal, status) {
                    (Some(name), _) => format!(" to {name}"),
                    (None, 401) => " without a known token".to_owned(),
                    (None, _) => String::new(),
                }
            ),
            Some(reason.clone()),
        ),
        LedgerEvent::Privacy(PrivacyEvent::SubjectForgotten { subject, cause, .. }) => (
            format!(
                "personal data of {subject} forgotten ({}): its data key is destroyed, its values read [erased]",
                match cause {
                    ForgetCause::OnRequest => "on request",
                    ForgetCause::AfterRequestCompleted => "set time after the request completed",
                    ForgetCause::AfterRequestRefused => "set time after the request was refused",
                }
            ),
            None,
        ),
    }
}

fn describe_request(event: &RequestEvent) -> (String, Option<String>) {
    match event {
        RequestEvent::DeletionRequested {
            request,
            scope,
            channel,
            policy,
            asked_policy,
            due_at,
            requested_by,
            recorded_by,
            verification,
            contact,
            ..
        } => {
            let mut text = format!(
                "deletion of {scope} requested by {} via {channel} (request {request}, policy {policy}, due {})",
                who(requested_by),
                commands::log::rfc3339_micros(*due_at)
            );
            if let Some(asked) = asked_policy {
                text.push_str(&format!("; asked under {asked}, held to {policy} (R3)"));
            }
            if let Some(operator) = recorded_by {
                text.push_str(&format!("; recorded by {operator}"));
            }
            if let Some(contact) = contact {
                text.push_str(&format!("; requester contact {contact}"));
            }
            match verification {
                Verification::NotRequired => {}
                Verification::Pending => text.push_str("; verification pending"),
                Verification::Verified { method, by } => {
                    text.push_str(&format!("; verified by {by}: {method}"));
                }
            }
            (text, None)
        }
        RequestEvent::RequestVerified {
            request,
            method,
            verified_by,
        } => (
            format!("request {request} verified by {verified_by}: {method}"),
            None,
        ),
        RequestEvent::DeletionRefused { request, reason } => (
            format!("request {request} refused ({})", reason.code()),
            Some(reason.explain()),
        ),
        RequestEvent::DeletionBlocked { request, holds } => {
            let list: Vec<String> = holds.iter().map(ToString::to_string).collect();
            (
                format!("request {request} blocked by hold {}", list.join(", ")),
                None,
            )
        }
        RequestEvent::DeletionResumed { request } => (
            format!("request {request} resumed: no active hold covers it any more"),
            None,
        ),
        RequestEvent::DeadlineExtended {
            request,
            due_at,
            reason,
        } => (
            format!(
                "deadline of request {request} extended to {}",
                commands::log::rfc3339_micros(*due_at)
            ),
            Some(reason.to_string()),
        ),
        RequestEvent::ReceiptConfirmed {
            request,
            confirmed_at,
        } => (
            format!(
                "receipt of request {request} confirmed to the requester at {}",
                commands::log::rfc3339_micros(*confirmed_at)
            ),
            None,
        ),
        RequestEvent::TaskReleased {
            request,
            task,
            step,
            target,
            ..
        } => (
            format!("task {task} of request {request} released to workers: {step} on {target}"),
            None,
        ),
        RequestEvent::TaskClaimed {
            request,
            task,
            worker,
            lease_until,
        } => (
            format!(
                "task {task} of request {request} claimed by {worker} until {}",
                commands::log::rfc3339_micros(*lease_until)
            ),
            None,
        ),
        RequestEvent::TaskFailed {
            request,
            task,
            worker,
            attempt,
            error,
            next_attempt_at,
        } => (
            format!(
                "task {task} of request {request} failed on {worker} (attempt {attempt}); next attempt at {}",
                commands::log::rfc3339_micros(*next_attempt_at)
            ),
            Some(error.to_string()),
        ),
        RequestEvent::TaskCompleted {
            request,
            task,
            step,
            target,
            worker,
        } => (
            format!("task {task} of request {request} done by {worker}: {step} on {target}"),
            None,
        ),
        RequestEvent::RetentionExceptionRecorded {
            request,
            target,
            basis,
            until,
            note,
        } => (
            format!(
                "{target} kept until {} on basis {basis} (request {request})",
                commands::log::rfc3339_micros(*until)
            ),
            Some(note.to_string()),
        ),
        RequestEvent::DeletionCompleted {
            request,
            residual_copies_purged_by,
            ..
        } => (
            format!(
                "request {request} completed; residual copies in backups and logs purged by {}",
                commands::log::rfc3339_micros(*residual_copies_purged_by)
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::is_subject;
    use domain::subject::Subject;

    #[test]
    fn only_subjects_in_their_written_form_are_subjects() {
        for tag in [
            "file:f-9",
            "workspace:ws-42",
            "instagram:17841400000000001",
            "ai-result:r:1",
            "hold:0190a0b0-0000-7000-8000-000000000001",
        ] {
            assert!(is_subject(tag), "{tag}");
        }
        for tag in [
            // Technical tags, and text that is no subject at all.
            "hold-scope:workspace:ws-42",
            "erased:file:f-9",
            "file",
            "",
        ] {
            assert!(!is_subject(tag), "{tag}");
        }
        // Subjects, but written otherwise than a subject is written: the
        // lookup would not find them under these tags.
        for tag in [
            "hold:0190A0B0-0000-7000-8000-000000000001",
            "hold:0190a0b0000070008000000000000001",
        ] {
            assert!(Subject::parse(tag).is_ok(), "{tag}");
            assert!(!is_subject(tag), "{tag}");
        }
    }
}
