//! Each read model as a snapshot: the story's events in, the rows out.
//! `UPDATE_EXPECT=1 cargo test -p projections` rewrites the snapshots;
//! review the diff like code.

use chrono::Duration;
use domain::deadline::PolicyTable;
use expect_test::{expect, Expect};
use projections::memory::MemoryReadModels;
use projections::report::{deadline_row, SummaryBuilder};
use projections::testkit::{recorded, story, task_id};
use projections::ProjectionName;

async fn projected() -> MemoryReadModels {
    let mut models = MemoryReadModels::new();
    models
        .apply_all(&recorded(&story()))
        .await
        .expect("the story projects");
    models
}

async fn check(name: ProjectionName, expect: Expect) {
    let models = projected().await;
    expect.assert_eq(&models.dump().render_one(name, false));
}

#[tokio::test]
async fn audit_trail() {
    check(ProjectionName::Audit, expect![[r#"
        == audit
        1 2026-03-01T10:01:00.000000Z WorkspaceCreated by service:test
            workspace ws-1 created, owned by account alice
            subjects: account:alice workspace:ws-1
        2 2026-03-01T10:02:00.000000Z MemberAdded by service:test
            account bob added to workspace ws-1 as admin by member alice
            subjects: account:bob workspace:ws-1
        3 2026-03-01T10:03:00.000000Z ResourceRegistered by service:test
            file:f-1 registered in workspace ws-1
            subjects: file:f-1 workspace:ws-1
        4 2026-03-01T10:04:00.000000Z ResourceRegistered by service:test
            transcript:t-1 registered in workspace ws-1, derived from file:f-1
            subjects: file:f-1 transcript:t-1 workspace:ws-1
        5 2026-03-01T10:05:00.000000Z ResourceRegistered by service:test
            billing-record:b-1 registered in workspace ws-1
            subjects: billing-record:b-1 workspace:ws-1
        6 2026-03-01T10:06:00.000000Z IntegrationConnected by service:test
            integration ig-1 (instagram account 17841400000000001) connected to workspace ws-1 by the platform
            subjects: instagram:17841400000000001 integration:ig-1 workspace:ws-1
        7 2026-03-01T10:07:00.000000Z IntegrationConnected by service:test
            integration yt-1 (youtube account UC123) connected to workspace ws-1 by the platform
            subjects: integration:yt-1 workspace:ws-1 youtube:UC123
        8 2026-03-01T10:08:00.000000Z HoldPlaced by legal:dana
            legal hold 01900000-0000-7000-8000-000000000101 placed on file:f-1 (matter M-1) by legal:dana
            why: litigation
            subjects: file:f-1 hold:01900000-0000-7000-8000-000000000101
        9 2026-03-01T10:09:00.000000Z DeletionRequested by service:file-manager
            deletion of file:f-1 requested by member alice via in-product (request 01900000-0000-7000-8000-000000000201, policy gdpr, due 2026-04-01T23:59:59.999999Z)
            subjects: file:f-1 request:01900000-0000-7000-8000-000000000201
        10 2026-03-01T10:10:00.000000Z DeletionBlocked by service:file-manager
            request 01900000-0000-7000-8000-000000000201 blocked by hold 01900000-0000-7000-8000-000000000101
            subjects: hold:01900000-0000-7000-8000-000000000101 request:01900000-0000-7000-8000-000000000201
        11 2026-03-03T10:11:00.000000Z HoldLifted by legal:dana
            hold 01900000-0000-7000-8000-000000000101 on file:f-1 lifted by legal:dana
            why: settled
            subjects: file:f-1 hold:01900000-0000-7000-8000-000000000101
        12 2026-03-03T10:12:00.000000Z DeletionResumed by lethe:reactor
            request 01900000-0000-7000-8000-000000000201 resumed: no active hold covers it any more
            subjects: request:01900000-0000-7000-8000-000000000201
        13 2026-03-03T10:13:00.000000Z TaskReleased by lethe:reactor
            task 01900000-0000-7000-8000-000000000301 of request 01900000-0000-7000-8000-000000000201 released to workers: remove-record on file:f-1
            subjects: file:f-1 request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000301 workspace:ws-1
        14 2026-03-03T10:14:00.000000Z TaskReleased by lethe:reactor
            task 01900000-0000-7000-8000-000000000302 of request 01900000-0000-7000-8000-000000000201 released to workers: purge-derived-artifact on transcript:t-1
            subjects: file:f-1 request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000302 transcript:t-1 workspace:ws-1
        15 2026-03-03T10:15:00.000000Z TaskClaimed by service:storage-worker
            task 01900000-0000-7000-8000-000000000301 of request 01900000-0000-7000-8000-000000000201 claimed by worker-1 until 2026-03-03T10:20:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000301
        16 2026-03-03T10:16:00.000000Z TaskFailed by service:storage-worker
            task 01900000-0000-7000-8000-000000000301 of request 01900000-0000-7000-8000-000000000201 failed on worker-1 (attempt 1); next attempt at 2026-03-03T10:17:00.000000Z
            why: storage timeout
            subjects: request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000301
        17 2026-03-03T10:17:00.000000Z TaskClaimed by service:storage-worker
            task 01900000-0000-7000-8000-000000000301 of request 01900000-0000-7000-8000-000000000201 claimed by worker-2 until 2026-03-03T10:22:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000301
        18 2026-03-03T10:18:00.000000Z TaskCompleted by service:storage-worker
            task 01900000-0000-7000-8000-000000000301 of request 01900000-0000-7000-8000-000000000201 done by worker-2: remove-record on file:f-1
            subjects: file:f-1 request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000301
        19 2026-03-03T10:19:00.000000Z TaskClaimed by service:storage-worker
            task 01900000-0000-7000-8000-000000000302 of request 01900000-0000-7000-8000-000000000201 claimed by worker-2 until 2026-03-03T10:24:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000302
        20 2026-03-03T10:20:00.000000Z TaskCompleted by service:storage-worker
            task 01900000-0000-7000-8000-000000000302 of request 01900000-0000-7000-8000-000000000201 done by worker-2: purge-derived-artifact on transcript:t-1
            subjects: request:01900000-0000-7000-8000-000000000201 task:01900000-0000-7000-8000-000000000302 transcript:t-1
        21 2026-03-03T10:21:00.000000Z DeletionCompleted by service:storage-worker
            request 01900000-0000-7000-8000-000000000201 completed; residual copies in backups and logs purged by 2026-04-07T10:21:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000201
        22 2026-03-03T10:22:00.000000Z DeletionRequested by meta-callback
            deletion of instagram:17841400000000001 requested by the platform via meta-callback (request 01900000-0000-7000-8000-000000000202, policy internal, due 2026-04-02T10:22:00.000000Z)
            subjects: instagram:17841400000000001 request:01900000-0000-7000-8000-000000000202
        23 2026-03-03T10:23:00.000000Z TaskReleased by meta-callback
            task 01900000-0000-7000-8000-000000000303 of request 01900000-0000-7000-8000-000000000202 released to workers: deactivate-connection-record on integration:ig-1
            subjects: integration:ig-1 request:01900000-0000-7000-8000-000000000202 task:01900000-0000-7000-8000-000000000303 workspace:ws-1
        24 2026-03-03T10:24:00.000000Z TaskReleased by meta-callback
            task 01900000-0000-7000-8000-000000000304 of request 01900000-0000-7000-8000-000000000202 released to workers: remove-analytics-rows on integration:ig-1
            subjects: integration:ig-1 request:01900000-0000-7000-8000-000000000202 task:01900000-0000-7000-8000-000000000304 workspace:ws-1
        25 2026-03-03T10:25:00.000000Z HoldPlaced by trust:sam
            moderation hold 01900000-0000-7000-8000-000000000102 placed on workspace:ws-1 (matter case-9) by trust:sam
            why: reported content under review
            subjects: hold:01900000-0000-7000-8000-000000000102 workspace:ws-1
        26 2026-03-03T10:26:00.000000Z DeletionBlocked by lethe:reactor
            request 01900000-0000-7000-8000-000000000202 blocked by hold 01900000-0000-7000-8000-000000000102
            subjects: hold:01900000-0000-7000-8000-000000000102 request:01900000-0000-7000-8000-000000000202
        27 2026-03-03T10:27:00.000000Z DeadlineExtended by operator:dana
            deadline of request 01900000-0000-7000-8000-000000000202 extended to 2026-05-02T10:22:00.000000Z
            why: moderation review pending
            subjects: request:01900000-0000-7000-8000-000000000202
        28 2026-03-03T10:28:00.000000Z DeletionRequested by operator:dana
            deletion of account:alice requested by member alice via email-to-support (request 01900000-0000-7000-8000-000000000203, policy ccpa, due 2026-04-17T10:28:00.000000Z); recorded by operator:dana; requester contact alice@example.com; verification pending
            subjects: account:alice request:01900000-0000-7000-8000-000000000203
        29 2026-03-03T10:29:00.000000Z RequestVerified by operator:dana
            request 01900000-0000-7000-8000-000000000203 verified by operator:dana: replied from the account's e-mail address
            subjects: request:01900000-0000-7000-8000-000000000203
        30 2026-03-03T10:30:00.000000Z DeletionRefused by lethe:reactor
            request 01900000-0000-7000-8000-000000000203 refused (sole-owner-of-shared-workspace)
            why: the account is the sole owner of a workspace that other members use (ws-1); transfer ownership or remove the other members first
            subjects: request:01900000-0000-7000-8000-000000000203
        31 2026-03-03T10:31:00.000000Z DeletionRequested by service:billing
            deletion of billing-record:b-1 requested by the platform via retention-policy (request 01900000-0000-7000-8000-000000000204, policy internal, due 2026-04-02T10:31:00.000000Z)
            subjects: billing-record:b-1 request:01900000-0000-7000-8000-000000000204
        32 2026-03-03T10:32:00.000000Z RetentionExceptionRecorded by service:billing
            billing-record:b-1 kept until 2033-03-01T10:31:00.000000Z on basis billing (request 01900000-0000-7000-8000-000000000204)
            why: kept for tax and accounting
            subjects: billing-record:b-1 request:01900000-0000-7000-8000-000000000204
        33 2026-03-03T10:33:00.000000Z DeletionCompleted by service:billing
            request 01900000-0000-7000-8000-000000000204 completed; residual copies in backups and logs purged by 2026-04-07T10:33:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000204
        34 2026-03-03T10:34:00.000000Z IntegrationDisconnected by service:integrations
            integration yt-1 (youtube) disconnected from workspace ws-1 by member alice via in-product; syncs stopped. data held by YouTube itself is not deleted
            why: not used any more
            subjects: integration:yt-1 workspace:ws-1 youtube:UC123
        35 2026-03-03T10:35:00.000000Z DeletionRequested by service:integrations
            deletion of integration:yt-1 requested by member alice via in-product (request 01900000-0000-7000-8000-000000000205, policy youtube-api-user-data, due 2026-03-10T10:35:00.000000Z)
            subjects: integration:yt-1 request:01900000-0000-7000-8000-000000000205
        36 2026-03-03T10:36:00.000000Z TaskReleased by service:integrations
            task 01900000-0000-7000-8000-000000000305 of request 01900000-0000-7000-8000-000000000205 released to workers: revoke-tokens on integration:yt-1
            subjects: integration:yt-1 request:01900000-0000-7000-8000-000000000205 task:01900000-0000-7000-8000-000000000305 workspace:ws-1
        37 2026-03-03T10:37:00.000000Z CallbackRefused by meta-callback
            callback to /meta/data-deletion refused; nothing was deleted
            why: signature does not match
            subjects: 
        38 2026-03-03T10:38:00.000000Z MemberRemoved by service:workspaces
            account bob removed from workspace ws-1 by member alice; what they created stays
            subjects: account:bob workspace:ws-1
        39 2026-03-03T10:39:00.000000Z SubjectForgotten by admin:dpo
            personal data of request:01900000-0000-7000-8000-000000000205 forgotten (on request): its data key is destroyed, its values read [erased]
            subjects: request:01900000-0000-7000-8000-000000000205
        40 2026-03-03T10:40:00.000000Z ReceiptConfirmed by operator:dana
            receipt of request 01900000-0000-7000-8000-000000000203 confirmed to the requester at 2026-03-03T10:39:00.000000Z
            subjects: request:01900000-0000-7000-8000-000000000203
    "#]]).await;
}

#[tokio::test]
async fn active_resources() {
    check(ProjectionName::Resources, expect![[r#"
        == resources
        billing-record:b-1 retained kind=billing-record ws=ws-1 acct=- parent=- from=- ext=- pending=0 erased=- retained=billing/2033-03-01T10:31:00.000000Z disconnected=- registered=2026-03-01T10:05:00.000000Z since=2026-03-03T10:32:00.000000Z pos=32
            scopes: billing-record:b-1 workspace:ws-1
        file:f-1 erased kind=file ws=ws-1 acct=- parent=- from=- ext=- pending=0 erased=2026-03-03T10:18:00.000000Z retained=-/- disconnected=- registered=2026-03-01T10:03:00.000000Z since=2026-03-03T10:18:00.000000Z pos=18
            scopes: file:f-1 workspace:ws-1
        integration:ig-1 deletion-pending kind=integration ws=ws-1 acct=- parent=- from=- ext=instagram:17841400000000001 pending=2 erased=- retained=-/- disconnected=- registered=2026-03-01T10:06:00.000000Z since=2026-03-03T10:23:00.000000Z pos=24
            scopes: instagram:17841400000000001 integration:ig-1 workspace:ws-1
        integration:yt-1 deletion-pending kind=integration ws=ws-1 acct=- parent=- from=- ext=youtube:UC123 pending=1 erased=- retained=-/- disconnected=2026-03-03T10:34:00.000000Z registered=2026-03-01T10:07:00.000000Z since=2026-03-03T10:36:00.000000Z pos=36
            scopes: integration:yt-1 workspace:ws-1 youtube:UC123
        transcript:t-1 erased kind=transcript ws=ws-1 acct=- parent=- from=file:f-1 ext=- pending=0 erased=2026-03-03T10:20:00.000000Z retained=-/- disconnected=- registered=2026-03-01T10:04:00.000000Z since=2026-03-03T10:20:00.000000Z pos=20
            scopes: file:f-1 transcript:t-1 workspace:ws-1
        workspace:ws-1 active kind=workspace ws=ws-1 acct=- parent=- from=- ext=- pending=0 erased=- retained=-/- disconnected=- registered=2026-03-01T10:01:00.000000Z since=2026-03-01T10:01:00.000000Z pos=1
            scopes: workspace:ws-1
    "#]]).await;
}

#[tokio::test]
async fn requests_and_deadlines() {
    check(ProjectionName::Requests, expect![[r#"
        == requests
        01900000-0000-7000-8000-000000000201 completed scope=file:f-1 policy=gdpr channel=in-product by=member:alice recorded_by=- verified=true
            received=2026-03-01T10:09:00.000000Z due=2026-04-01T23:59:59.999999Z original_due=2026-04-01T23:59:59.999999Z extension=-
            blocked_by=[] blocked_since=- blocked_s=172920 tasks=2/2 retained=0
            refusal=- - at -
            completed=2026-03-03T10:21:00.000000Z purge_by=2026-04-07T10:21:00.000000Z code=- receipt_confirmed=- updated=2026-03-03T10:21:00.000000Z pos=21
        01900000-0000-7000-8000-000000000202 blocked scope=instagram:17841400000000001 policy=internal channel=meta-callback by=platform recorded_by=- verified=true
            received=2026-03-03T10:22:00.000000Z due=2026-05-02T10:22:00.000000Z original_due=2026-04-02T10:22:00.000000Z extension=moderation review pending
            blocked_by=[01900000-0000-7000-8000-000000000102] blocked_since=2026-03-03T10:26:00.000000Z blocked_s=0 tasks=0/2 retained=0
            refusal=- - at -
            completed=- purge_by=- code=LTH000000000202 receipt_confirmed=- updated=2026-03-03T10:27:00.000000Z pos=27
        01900000-0000-7000-8000-000000000203 refused scope=account:alice policy=ccpa channel=email-to-support by=member:alice recorded_by=operator:dana verified=true
            received=2026-03-03T10:28:00.000000Z due=2026-04-17T10:28:00.000000Z original_due=2026-04-17T10:28:00.000000Z extension=-
            blocked_by=[] blocked_since=- blocked_s=0 tasks=0/0 retained=0
            refusal=sole-owner-of-shared-workspace the account is the sole owner of a workspace that other members use (ws-1); transfer ownership or remove the other members first at 2026-03-03T10:30:00.000000Z
            completed=- purge_by=- code=- receipt_confirmed=2026-03-03T10:39:00.000000Z updated=2026-03-03T10:40:00.000000Z pos=40
        01900000-0000-7000-8000-000000000204 completed scope=billing-record:b-1 policy=internal channel=retention-policy by=platform recorded_by=- verified=true
            received=2026-03-03T10:31:00.000000Z due=2026-04-02T10:31:00.000000Z original_due=2026-04-02T10:31:00.000000Z extension=-
            blocked_by=[] blocked_since=- blocked_s=0 tasks=0/0 retained=1
            refusal=- - at -
            completed=2026-03-03T10:33:00.000000Z purge_by=2026-04-07T10:33:00.000000Z code=- receipt_confirmed=- updated=2026-03-03T10:33:00.000000Z pos=33
        01900000-0000-7000-8000-000000000205 in-progress scope=integration:yt-1 policy=youtube-api-user-data channel=in-product by=member:alice recorded_by=- verified=true
            received=2026-03-03T10:35:00.000000Z due=2026-03-10T10:35:00.000000Z original_due=2026-03-10T10:35:00.000000Z extension=-
            blocked_by=[] blocked_since=- blocked_s=0 tasks=0/1 retained=0
            refusal=- - at -
            completed=- purge_by=- code=- receipt_confirmed=- updated=2026-03-03T10:36:00.000000Z pos=36
    "#]]).await;
}

#[tokio::test]
async fn holds_register() {
    check(ProjectionName::Holds, expect![[r#"
        == holds
        01900000-0000-7000-8000-000000000101 lifted on file:f-1 kind=legal matter=M-1 placed=2026-03-01T10:08:00.000000Z by legal:dana at 8 reason="litigation"
            lifted=2026-03-03T10:11:00.000000Z by legal:dana at 11 reason="settled"
        01900000-0000-7000-8000-000000000102 active on workspace:ws-1 kind=moderation matter=case-9 placed=2026-03-03T10:25:00.000000Z by trust:sam at 25 reason="reported content under review"
            lifted=- by - at - reason="-"
    "#]]).await;
}

#[tokio::test]
async fn erasure_task_queue() {
    check(ProjectionName::Tasks, expect![[r#"
        == tasks
        01900000-0000-7000-8000-000000000301 completed remove-record on file:f-1 request=01900000-0000-7000-8000-000000000201 ws=ws-1 lease=-@- attempts=1 next=2026-03-03T10:17:00.000000Z error="storage timeout"
            released=2026-03-03T10:13:00.000000Z at 13 completed=2026-03-03T10:18:00.000000Z by worker-2 pos=18
            covered_by: file:f-1 workspace:ws-1
        01900000-0000-7000-8000-000000000302 completed purge-derived-artifact on transcript:t-1 request=01900000-0000-7000-8000-000000000201 ws=ws-1 lease=-@- attempts=0 next=- error="-"
            released=2026-03-03T10:14:00.000000Z at 14 completed=2026-03-03T10:20:00.000000Z by worker-2 pos=20
            covered_by: file:f-1 transcript:t-1 workspace:ws-1
        01900000-0000-7000-8000-000000000303 released deactivate-connection-record on integration:ig-1 request=01900000-0000-7000-8000-000000000202 ws=ws-1 lease=-@- attempts=0 next=- error="-"
            released=2026-03-03T10:23:00.000000Z at 23 completed=- by - pos=23
            covered_by: integration:ig-1 workspace:ws-1
        01900000-0000-7000-8000-000000000304 released remove-analytics-rows on integration:ig-1 request=01900000-0000-7000-8000-000000000202 ws=ws-1 lease=-@- attempts=0 next=- error="-"
            released=2026-03-03T10:24:00.000000Z at 24 completed=- by - pos=24
            covered_by: integration:ig-1 workspace:ws-1
        01900000-0000-7000-8000-000000000305 released revoke-tokens on integration:yt-1 request=01900000-0000-7000-8000-000000000205 ws=ws-1 lease=-@- attempts=0 next=- error="-"
            released=2026-03-03T10:36:00.000000Z at 36 completed=- by - pos=36
            covered_by: integration:yt-1 workspace:ws-1
    "#]]).await;
}

#[tokio::test]
async fn applying_twice_from_the_checkpoint_changes_nothing() {
    let mut models = projected().await;
    let before = models.dump();
    models.apply_all(&recorded(&story())).await.expect("replay");
    assert_eq!(models.dump(), before);
}

#[tokio::test]
async fn tasks_under_an_active_hold_are_not_claimable() {
    let models = projected().await;
    let last = models.checkpoint;
    let now = models.audit[&last].occurred_at + Duration::minutes(1);
    let ids = |models: &MemoryReadModels| -> Vec<String> {
        models
            .claimable(now)
            .iter()
            .map(|t| t.task.clone())
            .collect()
    };
    // Tasks 3, 4 and 5 are open, but the moderation hold on workspace:ws-1
    // covers all of them.
    assert_eq!(ids(&models), Vec::<String>::new());
    let mut lifted = models.clone();
    for hold in lifted.holds.values_mut() {
        hold.lifted_at = Some(now);
    }
    assert_eq!(
        ids(&lifted),
        vec![
            task_id(3).to_string(),
            task_id(4).to_string(),
            task_id(5).to_string()
        ]
    );
}

#[tokio::test]
async fn meta_status_explains_itself() {
    let models = projected().await;
    let lines: Vec<String> = models
        .requests
        .values()
        .map(|row| {
            format!(
                "{} {}: {}",
                row.scope,
                row.state,
                projections::requests::explain(row, projections::testkit::start())
            )
        })
        .collect();
    expect![[r#"
        file:f-1 completed: Your data was deleted on 2026-03-03. Copies in backups and logs are purged by 2026-04-07.
        instagram:17841400000000001 blocked: We received your deletion request on 2026-03-03. Deletion is paused while the data is under a legal or moderation review; it resumes by itself when the review ends.
        account:alice refused: Your deletion request of 2026-03-03 was refused: the account is the sole owner of a workspace that other members use (ws-1); transfer ownership or remove the other members first.
        billing-record:b-1 completed: Your data was deleted on 2026-03-03. Copies in backups and logs are purged by 2026-04-07. 1 record(s) are kept for a recorded reason (such as tax, security or a legal duty), and deleted when that period ends.
        integration:yt-1 in-progress: We received your deletion request on 2026-03-03 and are deleting your data: 0 of 1 steps done. It will be completed by 2026-03-10."#]].assert_eq(&lines.join("\n"));
    // Past its due date, an open request says it is late, not that it
    // will be done by a day gone by.
    let late = projections::testkit::start() + Duration::days(30);
    let yt = models
        .requests
        .values()
        .find(|row| row.scope == "integration:yt-1")
        .unwrap();
    expect![[r#"We received your deletion request on 2026-03-03 and are deleting your data: 0 of 1 steps done. It was due by 2026-03-10; it is late, and we are completing it."#]]
        .assert_eq(&projections::requests::explain(yt, late));
}

#[tokio::test]
async fn deadline_report_at_an_instant() {
    let models = projected().await;
    let table = PolicyTable::default();
    let now = projections::testkit::start() + Duration::days(40);
    let mut summary = SummaryBuilder::default();
    let mut lines = Vec::new();
    for row in models.requests.values() {
        let line = deadline_row(row, &table, now);
        summary.add(&line);
        lines.push(format!(
            "{} {} status={} days={:?} on_time={:?} blocked_s={}",
            line.policy,
            line.scope,
            line.status.label(),
            line.days_to_complete.map(|d| (d * 100.0).round() / 100.0),
            line.on_time,
            line.blocked_seconds
        ));
    }
    for s in summary.finish() {
        lines.push(format!("{s:?}"));
    }
    expect![[r#"
        gdpr file:f-1 status=completed on time days=Some(2.01) on_time=Some(true) blocked_s=172920
        internal instagram:17841400000000001 status=blocked by hold 01900000-0000-7000-8000-000000000102 days=None on_time=None blocked_s=3281640
        ccpa account:alice status=refused days=None on_time=None blocked_s=0
        internal billing-record:b-1 status=completed on time days=Some(0.0) on_time=Some(true) blocked_s=0
        youtube-api-user-data integration:yt-1 status=overdue days=None on_time=None blocked_s=0
        SummaryRow { policy: "ccpa", month: "2026-03", received: 1, completed: 0, completed_on_time: 0, refused: {"sole-owner-of-shared-workspace": 1}, on_time_rate: None, median_days: None, p95_days: None, overdue: 0, at_risk: 0, blocked: 0, open: 0, receipts_late: 0 }
        SummaryRow { policy: "gdpr", month: "2026-03", received: 1, completed: 1, completed_on_time: 1, refused: {}, on_time_rate: Some(1.0), median_days: Some(2.0083333333333333), p95_days: Some(2.0083333333333333), overdue: 0, at_risk: 0, blocked: 0, open: 0, receipts_late: 0 }
        SummaryRow { policy: "internal", month: "2026-03", received: 2, completed: 1, completed_on_time: 1, refused: {}, on_time_rate: Some(1.0), median_days: Some(0.001388888888888889), p95_days: Some(0.001388888888888889), overdue: 0, at_risk: 0, blocked: 1, open: 1, receipts_late: 0 }
        SummaryRow { policy: "youtube-api-user-data", month: "2026-03", received: 1, completed: 0, completed_on_time: 0, refused: {}, on_time_rate: Some(0.0), median_days: None, p95_days: None, overdue: 1, at_risk: 0, blocked: 0, open: 1, receipts_late: 0 }"#]].assert_eq(&lines.join("\n"));
}
