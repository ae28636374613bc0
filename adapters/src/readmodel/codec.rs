//! Rows to SQL arguments and back, in the column order of `schema`.

use projections::rows::{
    AuditEntry, HoldRow, RequestRow, ResourceRow, ResourceState, TaskRow, TaskState,
};
use projections::ReadModelError;

use super::db::{list, Row, Val};

pub(crate) fn audit_vals(e: &AuditEntry) -> Vec<Val> {
    vec![
        e.position.into(),
        e.event_id.to_string().into(),
        e.stream.clone().into(),
        e.event_type.clone().into(),
        e.occurred_at.into(),
        e.recorded_at.into(),
        e.actor.clone().into(),
        e.source_channel.clone().into(),
        e.correlation_id.map(|u| u.to_string()).into(),
        e.causation_id.map(|u| u.to_string()).into(),
        e.summary.clone().into(),
        e.reason.clone().into(),
        list(&e.subjects),
    ]
}

pub(crate) fn audit_from(r: &Row) -> Result<AuditEntry, ReadModelError> {
    Ok(AuditEntry {
        position: r.pos("position")?,
        event_id: r.uuid("event_id")?,
        stream: r.text("stream")?,
        event_type: r.text("event_type")?,
        occurred_at: r.time("occurred_at")?,
        recorded_at: r.time("recorded_at")?,
        actor: r.text("actor")?,
        source_channel: r.opt_text("source_channel")?,
        correlation_id: r.opt_uuid("correlation_id")?,
        causation_id: r.opt_uuid("causation_id")?,
        summary: r.text("summary")?,
        reason: r.opt_text("reason")?,
        subjects: r.list("subjects")?,
    })
}

pub(crate) fn resource_vals(x: &ResourceRow) -> Vec<Val> {
    vec![
        x.subject.clone().into(),
        x.kind.clone().into(),
        x.workspace.clone().into(),
        x.account.clone().into(),
        x.parent.clone().into(),
        x.derived_from.clone().into(),
        x.external_account.clone().into(),
        list(&x.scopes),
        x.registered_at.into(),
        x.disconnected_at.into(),
        x.tasks_pending.into(),
        x.erased_at.into(),
        x.retained_basis.clone().into(),
        x.retained_until.into(),
        x.state.as_str().into(),
        x.since.into(),
        x.position.into(),
    ]
}

pub(crate) fn resource_from(r: &Row) -> Result<ResourceRow, ReadModelError> {
    let state = r.text("state")?;
    Ok(ResourceRow {
        subject: r.text("subject")?,
        kind: r.text("kind")?,
        workspace: r.opt_text("workspace")?,
        account: r.opt_text("account")?,
        parent: r.opt_text("parent")?,
        derived_from: r.opt_text("derived_from")?,
        external_account: r.opt_text("external_account")?,
        scopes: r.list("scopes")?,
        registered_at: r.time("registered_at")?,
        disconnected_at: r.opt_time("disconnected_at")?,
        tasks_pending: r.int("tasks_pending")?,
        erased_at: r.opt_time("erased_at")?,
        retained_basis: r.opt_text("retained_basis")?,
        retained_until: r.opt_time("retained_until")?,
        state: ResourceState::parse(&state)
            .ok_or_else(|| ReadModelError::Corrupt(format!("resource state {state:?}")))?,
        since: r.time("since")?,
        position: r.pos("position")?,
    })
}

pub(crate) fn hold_vals(x: &HoldRow) -> Vec<Val> {
    vec![
        x.hold.clone().into(),
        x.scope.clone().into(),
        x.kind.clone().into(),
        x.matter.clone().into(),
        x.reason.clone().into(),
        x.placed_by.clone().into(),
        x.placed_at.into(),
        x.placed_position.into(),
        x.lifted_by.clone().into(),
        x.lifted_at.into(),
        x.lift_reason.clone().into(),
        Val::Int(x.lifted_position.map(super::db::int)),
    ]
}

pub(crate) fn hold_from(r: &Row) -> Result<HoldRow, ReadModelError> {
    Ok(HoldRow {
        hold: r.text("hold")?,
        scope: r.text("scope")?,
        kind: r.text("kind")?,
        matter: r.text("matter")?,
        reason: r.text("reason")?,
        placed_by: r.text("placed_by")?,
        placed_at: r.time("placed_at")?,
        placed_position: r.pos("placed_position")?,
        lifted_by: r.opt_text("lifted_by")?,
        lifted_at: r.opt_time("lifted_at")?,
        lift_reason: r.opt_text("lift_reason")?,
        lifted_position: r.opt_pos("lifted_position")?,
    })
}

pub(crate) fn request_vals(x: &RequestRow) -> Vec<Val> {
    vec![
        x.request.clone().into(),
        x.scope.clone().into(),
        x.channel.clone().into(),
        x.policy.clone().into(),
        x.requested_by.clone().into(),
        x.recorded_by.clone().into(),
        x.received_at.into(),
        x.original_due_at.into(),
        x.due_at.into(),
        x.extension_reason.clone().into(),
        x.verified.into(),
        x.state.clone().into(),
        list(&x.blocked_by),
        x.blocked_since.into(),
        x.blocked_seconds.into(),
        x.tasks_total.into(),
        x.tasks_done.into(),
        x.retained.into(),
        x.refusal_code.clone().into(),
        x.refusal_reason.clone().into(),
        x.refused_at.into(),
        x.completed_at.into(),
        x.residual_copies_purged_by.into(),
        x.confirmation_code.clone().into(),
        x.receipt_confirmed_at.into(),
        x.asked_policy.clone().into(),
        x.updated_at.into(),
        x.position.into(),
    ]
}

pub(crate) fn request_from(r: &Row) -> Result<RequestRow, ReadModelError> {
    Ok(RequestRow {
        request: r.text("request")?,
        scope: r.text("scope")?,
        channel: r.text("channel")?,
        policy: r.text("policy")?,
        asked_policy: r.opt_text("asked_policy")?,
        requested_by: r.text("requested_by")?,
        recorded_by: r.opt_text("recorded_by")?,
        received_at: r.time("received_at")?,
        original_due_at: r.time("original_due_at")?,
        due_at: r.time("due_at")?,
        extension_reason: r.opt_text("extension_reason")?,
        verified: r.bool("verified")?,
        state: r.text("state")?,
        blocked_by: r.list("blocked_by")?,
        blocked_since: r.opt_time("blocked_since")?,
        blocked_seconds: r.int("blocked_seconds")?,
        tasks_total: r.int("tasks_total")?,
        tasks_done: r.int("tasks_done")?,
        retained: r.int("retained")?,
        refusal_code: r.opt_text("refusal_code")?,
        refusal_reason: r.opt_text("refusal_reason")?,
        refused_at: r.opt_time("refused_at")?,
        completed_at: r.opt_time("completed_at")?,
        residual_copies_purged_by: r.opt_time("residual_copies_purged_by")?,
        confirmation_code: r.opt_text("confirmation_code")?,
        receipt_confirmed_at: r.opt_time("receipt_confirmed_at")?,
        updated_at: r.time("updated_at")?,
        position: r.pos("position")?,
    })
}

pub(crate) fn task_vals(x: &TaskRow) -> Vec<Val> {
    vec![
        x.task.clone().into(),
        x.request.clone().into(),
        x.step.clone().into(),
        x.target.clone().into(),
        x.workspace.clone().into(),
        list(&x.covered_by),
        x.state.as_str().into(),
        x.lease_holder.clone().into(),
        x.lease_until.into(),
        x.attempts.into(),
        x.next_attempt_at.into(),
        x.last_error.clone().into(),
        x.released_at.into(),
        x.released_position.into(),
        x.completed_at.into(),
        x.completed_by.clone().into(),
        x.position.into(),
    ]
}

pub(crate) fn task_from(r: &Row) -> Result<TaskRow, ReadModelError> {
    let state = r.text("state")?;
    Ok(TaskRow {
        task: r.text("task")?,
        request: r.text("request")?,
        step: r.text("step")?,
        target: r.text("target")?,
        workspace: r.opt_text("workspace")?,
        covered_by: r.list("covered_by")?,
        state: TaskState::parse(&state)
            .ok_or_else(|| ReadModelError::Corrupt(format!("task state {state:?}")))?,
        lease_holder: r.opt_text("lease_holder")?,
        lease_until: r.opt_time("lease_until")?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.opt_time("next_attempt_at")?,
        last_error: r.opt_text("last_error")?,
        released_at: r.time("released_at")?,
        released_position: r.pos("released_position")?,
        completed_at: r.opt_time("completed_at")?,
        completed_by: r.opt_text("completed_by")?,
        position: r.pos("position")?,
    })
}
