//! The read commands: `request show`, `audit`, `report deadlines`,
//! `resources`, `projections rebuild`, `policies`.

use std::process::ExitCode;

use std::io::IsTerminal;

use adapters::http::queries;
use adapters::readmodel::{AuditQuery, ExportFormat, ResourceQuery, PAGE_ROWS_MAX};
use clap::{Args, Subcommand};
use domain::ids::{RequestId, WorkspaceId};
use domain::subject::Subject;
use projections::ProjectionName;
use serde_json::Value;

use super::{caught_up_read_models, open_ledger, Format, PolicyArgs, StoreArg};

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
    let arg = &store;
    let (store, ledger) = open_ledger(arg).await?;
    let (models, _) = caught_up_read_models(arg, &store, &ledger).await?;
    let Some(detail) = models
        .request_detail(&id.to_string(), ledger.policies(), ledger.clock().now())
        .await?
    else {
        anyhow::bail!("request {id} not found");
    };
    let mut detail = queries::request_json(&detail);
    models.reveal_json(&mut detail).await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    for key in [
        "request_id",
        "scope",
        "channel",
        "policy",
        "asked_policy",
        "state",
        "received_at",
        "due_at",
        "deadline_label",
        "verified",
        "blocked_by",
        "completed_at",
        "residual_copies_purged_by",
        "confirmation_code",
        "confirm_receipt_by",
        "receipt_confirmed_at",
        "receipt",
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
    if let Some(after) = detail["tasks_next_after"].as_i64() {
        println!(
            "(the first {} of {} tasks; GET /v1/deletion-requests/{id}?tasks_after={after} \
             pages on)",
            detail["tasks"].as_array().map_or(0, Vec::len),
            text(&detail["tasks_total"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// KIND:ID of the subject, resource, request or hold.
    #[arg(long)]
    subject: String,
    /// table, json (JSON Lines, one entry a line) or csv.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run_audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let subject = Subject::parse(&args.subject)?;
    let arg = &args.store;
    let (store, ledger) = open_ledger(arg).await?;
    let (models, _) = caught_up_read_models(arg, &store, &ledger).await?;
    let query = AuditQuery {
        subject: Some(subject.to_string()),
        limit: PAGE_ROWS_MAX,
        ..AuditQuery::default()
    };
    match args.format {
        Format::Json | Format::Csv => {
            let format = if args.format == Format::Csv {
                ExportFormat::Csv
            } else {
                ExportFormat::JsonLines
            };
            models
                .export_audit(query, format)
                .write_to(&mut tokio::io::stdout())
                .await?;
        }
        Format::Table => {
            println!(
                "{:>8} {:<28} {:<28} {:<24} SUMMARY",
                "POSITION", "OCCURRED", "EVENT", "ACTOR"
            );
            let mut query = query;
            loop {
                let page = models.audit(&query).await?;
                for entry in &page.entries {
                    println!(
                        "{:>8} {:<28} {:<28} {:<24} {}",
                        entry.position,
                        entry.occurred_at.to_rfc3339(),
                        entry.event_type,
                        entry.actor,
                        entry.summary
                    );
                }
                match page.next_after {
                    Some(after) => query.after = after,
                    None => break,
                }
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
    let arg = &store;
    let (store, ledger) = open_ledger(arg).await?;
    let (models, position) = caught_up_read_models(arg, &store, &ledger).await?;
    let report = models
        .deadline_report(
            &queries::report_range(None, None, None),
            ledger.policies(),
            ledger.clock().now(),
        )
        .await?;
    match format {
        Format::Csv => {
            let mut csv = queries::report_csv(&report);
            models.reveal(&mut [&mut csv]).await?;
            print!("{csv}");
        }
        Format::Json => {
            let mut report = queries::report_json(&report, position);
            models.reveal_json(&mut report).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Table => {
            let mut report = queries::report_json(&report, position);
            models.reveal_json(&mut report).await?;
            for key in [
                "received",
                "completed",
                "refused",
                "on_time_rate",
                "receipts_late",
            ] {
                println!("{key:<26} {}", text(&report[key]));
            }
            println!(
                "\n{:<38} {:<22} {:<22} {:<26} STATUS",
                "REQUEST", "POLICY", "STATE", "DUE"
            );
            for row in report["rows"].as_array().into_iter().flatten() {
                println!(
                    "{:<38} {:<22} {:<22} {:<26} {}",
                    text(&row["request"]),
                    match row["asked_policy"].as_str() {
                        Some(asked) => format!("{} (asked {asked})", text(&row["policy"])),
                        None => text(&row["policy"]),
                    },
                    text(&row["state"]),
                    text(&row["due_at"]),
                    text(&row["status"]["status"])
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PoliciesArgs {
    /// `table` or `json` (the body of `GET /v1/policies`).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    policies: PolicyArgs,
}

/// Prints the policy table that the same flags and environment give
/// every other command, so that an operator sees what `serve` decides by.
pub fn run_policies(args: &PoliciesArgs) -> anyhow::Result<ExitCode> {
    let table = args.policies.table();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&queries::policies_json(&table))?
        ),
        Format::Csv => anyhow::bail!("policies print as table or json"),
        Format::Table => {
            for terms in table.terms() {
                let fixed = if terms.configurable {
                    "configurable"
                } else {
                    "fixed"
                };
                println!("{} ({fixed})", terms.policy);
                println!("  due        {}", terms.due);
                println!("  extension  {}", terms.extension);
                if let Some(also) = &terms.also {
                    println!("  also       {also}");
                }
            }
            println!(
                "\nresidual copies in backups and logs dropped within {} days of completion (R13)",
                table.residual_copies_days
            );
            println!(
                "a request due within {} hours counts as at risk",
                table.at_risk_hours
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    #[arg(long)]
    workspace: String,
    /// active, disconnected, deletion-pending, blocked-by-hold, retained
    /// or erased.
    #[arg(long)]
    state: Option<String>,
    /// table, json (one resource a line) or csv.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run_resources(args: ResourcesArgs) -> anyhow::Result<ExitCode> {
    let workspace = WorkspaceId::parse(&args.workspace)?;
    let arg = &args.store;
    let (store, ledger) = open_ledger(arg).await?;
    let (models, _) = caught_up_read_models(arg, &store, &ledger).await?;
    let mut query = ResourceQuery {
        scope: format!("workspace:{workspace}"),
        state: args.state,
        after: None,
        limit: PAGE_ROWS_MAX,
    };
    match args.format {
        Format::Json => {}
        Format::Csv => print!(
            "{}",
            projections::csv::record(&["resource", "kind", "state", "holds"])
        ),
        Format::Table => println!("{:<40} {:<22} {:<18} HOLDS", "RESOURCE", "KIND", "STATE"),
    }
    loop {
        let page = models.resources(&query).await?;
        for view in &page.resources {
            let mut view = view.clone();
            let mut texts: Vec<&mut String> = vec![&mut view.row.subject];
            texts.extend(view.row.external_account.as_mut());
            texts.extend(view.row.scopes.iter_mut());
            models.reveal(&mut texts).await?;
            let view = &view;
            let holds = view.holds.join(" ");
            match args.format {
                Format::Json => println!("{}", serde_json::to_string(view)?),
                Format::Csv => print!(
                    "{}",
                    projections::csv::record(&[
                        view.row.subject.as_str(),
                        view.row.kind.as_str(),
                        view.display_state.as_str(),
                        holds.as_str(),
                    ])
                ),
                Format::Table => println!(
                    "{:<40} {:<22} {:<18} {holds}",
                    view.row.subject, view.row.kind, view.display_state
                ),
            }
        }
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
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
    let ProjectionsCommand::Rebuild { name, store } = command;
    let which = name
        .as_deref()
        .map(str::parse::<ProjectionName>)
        .transpose()?;
    let arg = &store;
    let url = &arg.store;
    let (store, ledger) = open_ledger(arg).await?;
    let models = super::open_read_models(url, &ledger).await?;
    let what = which.map_or("every read model".to_owned(), |n| format!("read model {n}"));
    if std::io::stderr().is_terminal() {
        eprint!("Rebuilding {what} from position 0 (queries keep answering meanwhile)...");
    }
    let report = models.rebuild(store.as_ref(), which).await?;
    if std::io::stderr().is_terminal() {
        eprintln!(" done.");
    }
    println!(
        "rebuilt {} from {} events; swapped in at log position {}",
        report.projections.join(", "),
        report.events,
        report.position
    );
    Ok(ExitCode::SUCCESS)
}
