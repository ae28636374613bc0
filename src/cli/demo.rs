//! `lethe demo`: a realistic story, so that a newcomer sees every view
//! filled. Runs once per store; a second run says so and changes nothing.

use std::process::ExitCode;

use adapters::meta;
use clap::Args;
use commands::ledger::{Context, DeletionRequestInput};
use commands::log::EventStore;
use commands::{CommandError, Ledger};
use domain::deadline::PolicyName;
use domain::error::DomainError;
use domain::ids::{AccountId, ExternalAccountId, IntegrationId, RequestId, WorkspaceId};
use domain::membership::Registration;
use domain::subject::{Platform, Subject};
use domain::text::{Contact, MatterRef, Note, Reason};
use domain::values::{Channel, HoldKind, Initiator, Role};

use super::{caught_up_read_models, open_ledger, StoreArg};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    store: StoreArg,
}

const WORKSPACE: &str = "ws-northwind";
const INSTAGRAM_USER: &str = "17841400000000001";

fn step(text: &str) {
    eprintln!("  - {text}");
}

fn service(name: &str) -> Context {
    Context::new(format!("service:{name}"), "demo")
}

fn s(raw: &str) -> Subject {
    Subject::parse(raw).expect("demo subjects are valid")
}

fn member(id: &str) -> Initiator {
    Initiator::Member {
        account: AccountId::parse(id).expect("demo ids are valid"),
    }
}

async fn register(
    ledger: &Ledger,
    resource: &str,
    parent: Option<&str>,
    derived_from: Option<&str>,
) -> Result<(), CommandError> {
    ledger
        .register_resource(
            &service("file-manager"),
            Registration {
                resource: s(resource),
                workspace: Some(WorkspaceId::parse(WORKSPACE).expect("valid")),
                account: None,
                parent: parent.map(s),
                derived_from: derived_from.map(s),
                references: Vec::new(),
                created_by: Some(AccountId::parse("acct-olivia").expect("valid")),
            },
        )
        .await
}

/// Claims and completes every task of `request` that can be claimed, or
/// only the first `limit`.
async fn work(ledger: &Ledger, request: RequestId, limit: usize) -> Result<usize, CommandError> {
    let ctx = service("storage-worker");
    let tasks: Vec<_> = ledger
        .request(request)
        .await?
        .tasks
        .keys()
        .copied()
        .collect();
    let mut done = 0;
    for task in tasks.into_iter().take(limit) {
        ledger
            .claim_task(&ctx, task, "storage-worker-1", 300)
            .await?;
        ledger.complete_task(&ctx, task, "storage-worker-1").await?;
        done += 1;
    }
    Ok(done)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (store, ledger) = open_ledger(&args.store).await?;
    let workspace = WorkspaceId::parse(WORKSPACE)?;
    // The log keeps every event for good: the story goes only into a store
    // of its own, never beside real data.
    let loaded = !store
        .read_stream(&commands::ledger::streams::workspace(&workspace), 0, 1)
        .await?
        .is_empty();
    if !loaded && store.head().await? > 0 {
        eprintln!(
            "lethe demo: {} holds other events; the demo story, which can never be removed \
             from a log, loads only into an empty store (give another --store)",
            adapters::store::redacted(&args.store.store)
        );
        return Ok(ExitCode::from(2));
    }
    eprintln!(
        "Loading the demo story into {}:",
        adapters::store::redacted(&args.store.store)
    );
    match ledger
        .create_workspace(
            &service("workspace-service"),
            workspace.clone(),
            AccountId::parse("acct-olivia")?,
        )
        .await
    {
        Ok(()) => step("workspace ws-northwind, owned by acct-olivia"),
        Err(CommandError::Rejected(DomainError::AlreadyExists(_) | DomainError::Erased(_))) => {
            eprintln!("The demo is loaded already in this store; nothing changed.");
            caught_up_read_models(&args.store, &store, &ledger).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error.into()),
    }
    for (account, role) in [
        ("acct-sam", Role::Admin),
        ("acct-jo", Role::Member),
        ("acct-ravi", Role::Member),
    ] {
        ledger
            .add_member(
                &service("workspace-service"),
                workspace.clone(),
                AccountId::parse(account)?,
                role,
                member("acct-olivia"),
            )
            .await?;
    }
    step("members acct-sam (admin), acct-jo, acct-ravi");

    register(&ledger, "project:p-launch", None, None).await?;
    for file in ["f-interview", "f-keynote", "f-promo"] {
        let file_subject = format!("file:{file}");
        register(&ledger, &file_subject, Some("project:p-launch"), None).await?;
        for kind in [
            "transcript",
            "thumbnail",
            "embedding",
            "search-index-entry",
            "ai-summary",
        ] {
            register(
                &ledger,
                &format!("{kind}:{file}-{kind}"),
                None,
                Some(&file_subject),
            )
            .await?;
        }
    }
    step("project p-launch with 3 files, each with transcript, thumbnail, embedding, index entry, AI summary");

    ledger
        .connect_integration(
            &service("integrations"),
            IntegrationId::parse("yt-northwind")?,
            workspace.clone(),
            Platform::Youtube,
            ExternalAccountId::parse("UCnorthwind01")?,
            member("acct-sam"),
        )
        .await?;
    ledger
        .connect_integration(
            &service("integrations"),
            IntegrationId::parse("ig-northwind")?,
            workspace.clone(),
            Platform::Instagram,
            ExternalAccountId::parse(INSTAGRAM_USER)?,
            member("acct-sam"),
        )
        .await?;
    step("YouTube and Instagram connections");

    let legal = Context::new("legal:demo-counsel", "demo");
    let hold = ledger
        .place_hold(
            &legal,
            s("file:f-keynote"),
            HoldKind::Legal,
            MatterRef::parse("MATTER-2026-014")?,
            Reason::parse("litigation hold: keynote recording requested in discovery")?,
        )
        .await?;
    step(&format!("legal hold {hold} on file:f-keynote"));

    let gdpr = ledger
        .request_deletion(
            &service("file-manager"),
            DeletionRequestInput {
                scope: s("file:f-interview"),
                channel: Channel::InProduct,
                policy: Some(PolicyName::Gdpr),
                requested_by: member("acct-olivia"),
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
        )
        .await?;
    let done = work(&ledger, gdpr.request_id, usize::MAX).await?;
    step(&format!(
        "GDPR deletion of file:f-interview, {done} steps done: completed ({})",
        gdpr.request_id
    ));

    let ccpa = ledger
        .request_deletion(
            &service("file-manager"),
            DeletionRequestInput {
                scope: s("file:f-keynote"),
                channel: Channel::InProduct,
                policy: Some(PolicyName::Ccpa),
                requested_by: member("acct-olivia"),
                recorded_by: None,
                verification: None,
                contact: None,
                received_at: None,
            },
        )
        .await?;
    step(&format!(
        "CCPA deletion of file:f-keynote: {} by the hold ({})",
        ccpa.state, ccpa.request_id
    ));

    let youtube = ledger
        .disconnect_integration(
            &service("integrations"),
            IntegrationId::parse("yt-northwind")?,
            member("acct-sam"),
            Channel::InProduct,
            Some(Reason::parse("channel moved to another agency")?),
        )
        .await?;
    let done = work(&ledger, youtube.request_id, 2).await?;
    step(&format!(
        "YouTube disconnected; clean-up under the 7-day policy, {done} steps done, in progress ({})",
        youtube.request_id
    ));

    let meta_ctx = Context::new("meta:callback", "meta-callback");
    let key = meta::sign(
        b"demo",
        &serde_json::json!({ "algorithm": "HMAC-SHA256", "user_id": INSTAGRAM_USER, "issued_at": 0 }),
    );
    let meta_request = ledger
        .meta_data_deletion(&meta_ctx, ExternalAccountId::parse(INSTAGRAM_USER)?, &key)
        .await?;
    step(&format!(
        "Meta data-deletion callback for instagram:{INSTAGRAM_USER}: confirmation code {}",
        meta_request.confirmation_code.clone().unwrap_or_default()
    ));
    ledger
        .record_refused_callback(
            &meta_ctx,
            "/callbacks/meta/data-deletion",
            "Malformed request: the signature does not match the payload",
        )
        .await?;
    step("a forged Meta callback, refused and recorded");

    let email = ledger
        .request_deletion(
            &service("support-desk"),
            DeletionRequestInput {
                scope: s("account:acct-ravi"),
                channel: Channel::EmailToSupport,
                policy: Some(PolicyName::Gdpr),
                requested_by: member("acct-ravi"),
                recorded_by: Some("support:maria".into()),
                verification: Some(Note::parse(
                    "requester replied from the registered address and confirmed the last invoice date",
                )?),
                contact: Some(Contact::parse("ravi@example.com")?),
                received_at: None,
            },
        )
        .await?;
    step(&format!(
        "account deletion for acct-ravi received by e-mail, recorded by support: {} ({})",
        email.state, email.request_id
    ));
    let instagram_email = ledger
        .request_deletion(
            &service("support-desk"),
            DeletionRequestInput {
                scope: s(&format!("instagram:{INSTAGRAM_USER}")),
                channel: Channel::EmailToSupport,
                policy: Some(PolicyName::Ccpa),
                requested_by: Initiator::Platform,
                recorded_by: Some("support:maria".into()),
                verification: Some(Note::parse(
                    "requester proved control of the Instagram account by a direct message",
                )?),
                contact: Some(Contact::parse("june.park@example.org")?),
                received_at: None,
            },
        )
        .await?;
    step(&format!(
        "CCPA deletion of an Instagram account's analytics received by e-mail: {} ({})",
        instagram_email.state, instagram_email.request_id
    ));
    let (_, position) = caught_up_read_models(&args.store, &store, &ledger).await?;
    step(&format!("read models caught up to log position {position}"));
    eprintln!(
        "Done. Try: lethe report deadlines; lethe hold list; lethe audit --subject file:f-keynote"
    );
    Ok(ExitCode::SUCCESS)
}
