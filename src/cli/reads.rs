//! The read commands: `request show`, `audit`, `report deadlines`,
//! `resources`, `projections rebuild`.

use std::process::ExitCode;

use adapters::http::queries;
use clap::{Args, Subcommand};
use commands::log::READ_EVENTS_MAX;
use domain::ids::{RequestId, WorkspaceId};
use domain::subject::Subject;
use serde_json::Value;

use super::{open_ledger, Format, StoreArg};

fn api(error: adapters::http::ApiError) -> anyhow::Error {
    anyhow::Error::msg(error.detail)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// A deletion request in full: state, deadline, holds, tasks.
    Show {
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub async fn run_request(command: RequestCommand) -> anyhow::Result<ExitCode> {
    let RequestCommand::Show { id, format, store } = command;
    let id = RequestId::parse(&id)?;
    let (_store, ledger) = open_ledger(&store.store).await?;
    let request = ledger.request(id).await?;
    let detail = queries::request_detail(&request, ledger.policies(), ledger.clock().now());
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    for key in [
        "request_id",
        "scope",
        "channel",
        "policy",
        "state",
        "received_at",
        "due_at",
        "deadline_label",
        "verified",
        "blocked_by",
        "completed_at",
        "residual_copies_purged_by",
        "confirmation_code",
    ] {
        println!("{key:<26} {}", text(&detail[key]));
    }
    if let Some(refusal) = detail["refusal"].get("explanation") {
        println!("{:<26} {}", "refusal", text(refusal));
    }
    println!(
        "\n{:<38} {:<28} {:<32} {:<5} ATTEMPTS",
        "TASK", "STEP", "TARGET", "DONE"
    );
    for task in detail["tasks"].as_array().into_iter().flatten() {
        println!(
            "{:<38} {:<28} {:<32} {:<5} {}",
            text(&task["task_id"]),
            text(&task["step"]),
            text(&task["target"]),
            if task["completed"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            },
            text(&task["attempts"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// KIND:ID of the subject, resource, request or hold.
    #[arg(long)]
    subject: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run_audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let subject = Subject::parse(&args.subject)?;
    let (store, _ledger) = open_ledger(&args.store.store).await?;
    let mut after = 0;
    let mut entries = Vec::new();
    loop {
        let page = queries::audit_trail(store.as_ref(), &subject, after, READ_EVENTS_MAX)
            .await
            .map_err(api)?;
        let full = page.len() == READ_EVENTS_MAX;
        if let Some(last) = page.last() {
            after = last.position;
        }
        entries.extend(page.iter().map(queries::audit_entry));
        if !full {
            break;
        }
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Csv => {
            println!("{}", queries::EXPORT_CSV_HEADER);
            for entry in &entries {
                println!("{}", queries::export_csv_row(entry));
            }
        }
        Format::Table => {
            println!(
                "{:>8} {:<28} {:<28} {:<28}",
                "POSITION", "RECORDED", "EVENT", "ACTOR"
            );
            for entry in &entries {
                println!(
                    "{:>8} {:<28} {:<28} {:<28}",
                    text(&entry["position"]),
                    text(&entry["recorded_at"]),
                    text(&entry["event_type"]),
                    text(&entry["actor"])
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Deadline compliance: counts, on-time rate, median and p95 time to
    /// complete, overdue, at-risk and held requests.
    Deadlines {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub async fn run_report(command: ReportCommand) -> anyhow::Result<ExitCode> {
    let ReportCommand::Deadlines { format, store } = command;
    let (store, ledger) = open_ledger(&store.store).await?;
    let view = queries::scan(store.as_ref()).await.map_err(api)?;
    let report = queries::deadline_report_of(&view, ledger.policies(), ledger.clock().now());
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print!("{}", queries::deadline_report_csv(&report)),
        Format::Table => {
            for key in [
                "received",
                "completed",
                "refused",
                "on_time_rate",
                "median_hours_to_complete",
                "p95_hours_to_complete",
            ] {
                println!("{key:<26} {}", text(&report[key]));
            }
            println!(
                "\n{:<38} {:<22} {:<22} {:<26} STATUS",
                "REQUEST", "POLICY", "STATE", "DUE"
            );
            for row in report["requests"].as_array().into_iter().flatten() {
                println!(
                    "{:<38} {:<22} {:<22} {:<26} {}",
                    text(&row["request_id"]),
                    text(&row["policy"]),
                    text(&row["state"]),
                    text(&row["due_at"]),
                    text(&row["label"])
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    #[arg(long)]
    workspace: String,
    /// active, held, retained, erased or disconnected.
    #[arg(long)]
    state: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run_resources(args: ResourcesArgs) -> anyhow::Result<ExitCode> {
    let workspace = WorkspaceId::parse(&args.workspace)?;
    let (store, _ledger) = open_ledger(&args.store.store).await?;
    let view = queries::scan(store.as_ref()).await.map_err(api)?;
    let rows = queries::resources_of(&view, &workspace, args.state.as_deref());
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Csv | Format::Table => {
            let csv = args.format == Format::Csv;
            if csv {
                println!("resource,kind,state");
            } else {
                println!("{:<40} {:<22} STATE", "RESOURCE", "KIND");
            }
            for row in &rows {
                if csv {
                    println!(
                        "{},{},{}",
                        queries::csv_field(&text(&row["resource"])),
                        text(&row["kind"]),
                        text(&row["state"])
                    );
                } else {
                    println!(
                        "{:<40} {:<22} {}",
                        text(&row["resource"]),
                        text(&row["kind"]),
                        text(&row["state"])
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild one read model (or all) from position zero.
    Rebuild {
        name: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
}

pub async fn run_projections(command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let ProjectionsCommand::Rebuild { name, store: _ } = command;
    eprintln!(
        "lethe projections rebuild{}: the read-model storage is not wired into this build yet; \
         the queries are answered from the log directly, so there is nothing to rebuild",
        name.map(|n| format!(" {n}")).unwrap_or_default()
    );
    Ok(ExitCode::from(2))
}
