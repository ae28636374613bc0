//! The read models over real databases, SQLite and PostgreSQL: the same
//! rows as the in-memory reference, incremental run equal to a rebuild,
//! crash safety of the checkpoint, the holds invariant on the log, the
//! indexes behind the audit lookup and the compliance report, and (on
//! PostgreSQL) queries that keep answering while live tables are replaced.

mod rm_support;

use adapters::readmodel::{AuditQuery, DeadlineQuery, ExportFormat, HoldQuery, ResourceQuery};
use chrono::Duration;
use commands::log::{AppendRequest, EventStore, ExpectedVersion};
use domain::deadline::PolicyTable;
use domain::events::{HoldEvent, LedgerEvent, RequestEvent};
use expect_test::expect;
use projections::testkit;
use projections::{ProjectionName, ReadModelError};
use rm_support::{history, Harness, Kind};
use std::collections::{BTreeMap, BTreeSet};

rm_support::on_both_backends!(
    the_story_gives_the_reference_rows_and_answers_queries,
    a_large_history_rebuilds_to_the_same_rows,
    a_crash_between_rows_and_checkpoint_loses_and_doubles_nothing,
    no_task_is_claimed_under_an_active_hold,
    a_changed_table_schema_is_refilled_from_the_log,
    an_upgrade_drops_the_tables_a_schema_retired,
    the_dump_refuses_entries_the_tag_index_disagrees_with,
);

/// A query that holds one of the resource tables and then asks for the
/// other, while a rebuild's swap holds that other and waits for the first:
/// the swap gives way, the query answers, and the rebuild still swaps in.
/// (PostgreSQL; SQLite locks the whole database, not tables.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_swap_gives_way_to_a_query_holding_a_live_table() {
    let Some(h) = story_caught_up(Kind::Postgres).await else {
        return;
    };

    let rebuilt = a_reader_holds_across(&h.url, || {
        let models = h.models.clone();
        let store = h.store.clone();
        tokio::spawn(async move {
            models
                .rebuild(store.as_ref(), Some(ProjectionName::Resources))
                .await
        })
    })
    .await;
    let report = rebuilt.expect("the rebuild swaps in once the query is done");
    assert_eq!(report.projections, vec!["resources".to_owned()]);
    assert_eq!(
        h.models.dump().await.unwrap().render(true),
        h.reference().await.dump().render(true)
    );
    h.finish().await;
}

/// The same with a schema change: a new version recreating the resource
/// tables while an older one's reader holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_schema_change_gives_way_to_a_query_holding_a_live_table() {
    let Some(h) = story_caught_up(Kind::Postgres).await else {
        return;
    };
    let before = h.models.dump().await.unwrap().render(true);
    h.age_schema("resources").await;

    let opened = a_reader_holds_across(&h.url, || {
        let url = h.url.clone();
        tokio::spawn(async move { adapters::readmodel::ReadModels::open(&url).await })
    })
    .await;
    let reopened = opened.expect("the new version opens once the query is done");
    assert_eq!(reopened.catch_up(h.store.as_ref()).await.unwrap(), 40);
    assert_eq!(reopened.dump().await.unwrap().render(true), before);
    reopened.close().await;
    h.finish().await;
}

/// A reader's transaction reads `rm_resource_scopes`, then `replace`
/// starts replacing the resource tables, which takes `rm_resources` first.
/// Once that waits for `rm_resource_scopes` (holding `rm_resources`), the
/// reader reads `rm_resources`, as the resource lookup does, and must be
/// answered. Returns what `replace` came to.
async fn a_reader_holds_across<T: Send + 'static>(
    url: &str,
    replace: impl FnOnce() -> tokio::task::JoinHandle<T>,
) -> T {
    use sqlx::Connection as _;
    let mut reader = sqlx::PgConnection::connect(url).await.unwrap();
    let mut reading = reader.begin().await.unwrap();
    let scopes: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_resource_scopes")
        .fetch_one(&mut *reading)
        .await
        .unwrap();
    assert!(scopes > 0);

    let replacing = replace();
    waits_for_resource_scopes(url, || replacing.is_finished()).await;

    let resources: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_resources")
        .fetch_one(&mut *reading)
        .await
        .expect("the query is answered, not chosen as a deadlock's victim");
    assert!(resources > 0);
    reading.commit().await.unwrap();
    reader.close().await.unwrap();
    replacing.await.unwrap()
}

/// Returns once some transaction waits for an exclusive lock on
/// `rm_resource_scopes`; fails if `finished` turns true first, or after a
/// minute.
async fn waits_for_resource_scopes(url: &str, finished: impl Fn() -> bool) {
    use sqlx::Connection as _;
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'rm_resource_scopes' AND l.mode = 'AccessExclusiveLock' \
             AND NOT l.granted)",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting {
            watcher.close().await.unwrap();
            return;
        }
        assert!(
            !finished(),
            "it ended without waiting for the table the reader holds"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A harness whose log holds the story (40 events) and whose read
/// models have caught up with it; `None` when the PostgreSQL suite is
/// skipped.
async fn story_caught_up(kind: Kind) -> Option<Harness> {
    let h = Harness::new(kind).await?;
    append_story(&h).await;
    assert_eq!(h.models.catch_up(h.store.as_ref()).await.unwrap(), 40);
    Some(h)
}

async fn append_story(h: &Harness) {
    for e in testkit::story() {
        h.store
            .append(AppendRequest {
                stream: e.stream.clone(),
                expected: ExpectedVersion::Any,
                condition: None,
                idempotency_key: None,
                events: vec![e.new_event()],
            })
            .await
            .expect("append a story event");
    }
}

async fn the_story_gives_the_reference_rows_and_answers_queries(kind: Kind) {
    let Some(h) = story_caught_up(kind).await else {
        return;
    };
    // The rows equal those the projection snapshots pin (in memory).
    let mut snapshot = projections::memory::MemoryReadModels::new();
    snapshot
        .apply_all(&testkit::recorded(&testkit::story()))
        .await
        .unwrap();
    let sql = h.models.dump().await.unwrap();
    assert_eq!(sql.render(false), snapshot.dump().render(false));
    assert_eq!(sql.render(true), h.reference().await.dump().render(true));

    // The queries, as the HTTP layer calls them.
    let m = &h.models;
    let mut out = String::new();
    let page = m
        .audit(&AuditQuery {
            subject: Some("instagram:17841400000000001".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for e in &page.entries {
        out.push_str(&format!("audit {} {}\n", e.position, e.summary));
    }
    let two = m
        .audit(&AuditQuery {
            actor: Some("service:storage-worker".into()),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let rest = m
        .audit(&AuditQuery {
            actor: Some("service:storage-worker".into()),
            after: two.next_after.unwrap(),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    out.push_str(&format!(
        "worker pages: {:?} then {:?} (next {:?})\n",
        two.entries.iter().map(|e| e.position).collect::<Vec<_>>(),
        rest.entries.iter().map(|e| e.position).collect::<Vec<_>>(),
        rest.next_after
    ));
    for scope in ["workspace:ws-1", "instagram:17841400000000001"] {
        let page = m
            .resources(&ResourceQuery {
                scope: scope.into(),
                ..ResourceQuery::default()
            })
            .await
            .unwrap();
        for r in &page.resources {
            out.push_str(&format!(
                "{scope}: {} {} holds={}\n",
                r.row.subject,
                r.display_state,
                r.holds.len()
            ));
        }
    }
    let blocked = m
        .resources(&ResourceQuery {
            scope: "workspace:ws-1".into(),
            state: Some("blocked-by-hold".into()),
            ..ResourceQuery::default()
        })
        .await
        .unwrap();
    out.push_str(&format!(
        "blocked-by-hold: {:?}\n",
        blocked
            .resources
            .iter()
            .map(|r| r.row.subject.as_str())
            .collect::<Vec<_>>()
    ));
    for hold in m.holds(&HoldQuery::default()).await.unwrap() {
        out.push_str(&format!(
            "hold on {} active={} blocks requests={} tasks={} resources={}\n",
            hold.hold.scope,
            hold.active,
            hold.blocked_requests.len(),
            hold.tasks_stopped,
            hold.resources_covered
        ));
    }
    let now = testkit::start() + Duration::days(3);
    out.push_str(&format!(
        "claimable now: {}\n",
        m.claimable_tasks(now, 0, None, 10).await.unwrap().len()
    ));
    let code = commands::ledger::confirmation_code(testkit::request_id(2));
    let status = m.meta_status(&code, now).await.unwrap().unwrap();
    out.push_str(&format!(
        "meta {code}: {} — {}\n",
        status.state, status.explanation
    ));
    assert!(m
        .meta_status("LTH000000000000", now)
        .await
        .unwrap()
        .is_none());
    let report = m
        .deadline_report(
            &DeadlineQuery {
                received_from: testkit::start(),
                received_to: testkit::start() + Duration::days(31),
                policy: None,
            },
            &PolicyTable::default(),
            testkit::start() + Duration::days(33),
        )
        .await
        .unwrap();
    for s in &report.summary {
        out.push_str(&format!(
            "summary {} {}: received={} completed={} refused={:?} on_time={:?} median={:?} open={} overdue={} at_risk={} blocked={}\n",
            s.policy, s.month, s.received, s.completed, s.refused, s.on_time_rate,
            s.median_days.map(|d| (d * 100.0).round() / 100.0), s.open, s.overdue, s.at_risk, s.blocked
        ));
    }
    out.push_str(&format!(
        "overdue={} at_risk={} blocked={}\n",
        report.overdue.len(),
        report.at_risk.len(),
        report.blocked.len()
    ));
    let detail = m
        .request_detail(
            &testkit::request_id(1).to_string(),
            &PolicyTable::default(),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    out.push_str(&format!(
        "detail: {} tasks, {}\n",
        detail.tasks.len(),
        detail.deadline.status.label()
    ));
    let mut csv = Vec::new();
    let rows = m
        .export_audit(
            AuditQuery {
                subject: Some("file:f-1".into()),
                ..AuditQuery::default()
            },
            ExportFormat::Csv,
        )
        .write_to(&mut csv)
        .await
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    out.push_str(&format!(
        "csv: {rows} rows, {} lines, header {}\n",
        csv.lines().count(),
        csv.lines().next().unwrap_or_default()
    ));
    expect![[r#"
        audit 6 integration ig-1 (instagram account 17841400000000001) connected to workspace ws-1 by the platform
        audit 22 deletion of instagram:17841400000000001 requested by the platform via meta-callback (request 01900000-0000-7000-8000-000000000202, policy internal, due 2026-04-02T10:22:00.000000Z)
        audit 23 task 01900000-0000-7000-8000-000000000303 of request 01900000-0000-7000-8000-000000000202 released to workers: deactivate-connection-record on integration:ig-1
        audit 24 task 01900000-0000-7000-8000-000000000304 of request 01900000-0000-7000-8000-000000000202 released to workers: remove-analytics-rows on integration:ig-1
        audit 26 request 01900000-0000-7000-8000-000000000202 blocked by hold 01900000-0000-7000-8000-000000000102
        audit 27 deadline of request 01900000-0000-7000-8000-000000000202 extended to 2026-05-02T10:22:00.000000Z
        worker pages: [15, 16] then [17, 18, 19, 20, 21] (next None)
        workspace:ws-1: billing-record:b-1 retained holds=1
        workspace:ws-1: file:f-1 erased holds=1
        workspace:ws-1: integration:ig-1 blocked-by-hold holds=1
        workspace:ws-1: integration:yt-1 blocked-by-hold holds=1
        workspace:ws-1: transcript:t-1 erased holds=1
        workspace:ws-1: workspace:ws-1 active holds=1
        instagram:17841400000000001: integration:ig-1 blocked-by-hold holds=1
        blocked-by-hold: ["integration:ig-1", "integration:yt-1"]
        hold on file:f-1 active=false blocks requests=0 tasks=0 resources=0
        hold on workspace:ws-1 active=true blocks requests=1 tasks=3 resources=4
        claimable now: 0
        meta LTH000000000202: blocked — We received your deletion request on 2026-03-03. Deletion is paused while the data is under a legal or moderation review; it resumes by itself when the review ends.
        summary ccpa 2026-03: received=1 completed=0 refused={"sole-owner-of-shared-workspace": 1} on_time=None median=None open=0 overdue=0 at_risk=0 blocked=0
        summary gdpr 2026-03: received=1 completed=1 refused={} on_time=Some(1.0) median=Some(2.01) open=0 overdue=0 at_risk=0 blocked=0
        summary internal 2026-03: received=2 completed=1 refused={} on_time=Some(1.0) median=Some(0.0) open=1 overdue=0 at_risk=0 blocked=1
        summary youtube-api-user-data 2026-03: received=1 completed=0 refused={} on_time=Some(0.0) median=None open=1 overdue=1 at_risk=0 blocked=0
        overdue=1 at_risk=0 blocked=1
        detail: 2 tasks, completed on time
        csv: 16 rows, 17 lines, header position,occurred_at,recorded_at,actor,event_type,summary,reason,subjects,event_id,stream,source_channel,correlation_id,causation_id
    "#]].assert_eq(&out);
    h.finish().await;
}

/// The event types in the log, to show a history covers them all.
async fn event_types(h: &Harness) -> BTreeMap<String, usize> {
    let mut types = BTreeMap::new();
    for e in h.all_events().await {
        *types.entry(e.event_type).or_insert(0) += 1;
    }
    types
}

async fn a_large_history_rebuilds_to_the_same_rows(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    // Tenants are made by the Ledger in memory (fast), then appended to
    // the real store concurrently while the runner follows the log.
    let started = std::time::Instant::now();
    let mut tenants = history::generate_in_memory(76, 2).await;
    let late = tenants.split_off(72);
    eprintln!("{kind:?}: history made in {:?}", started.elapsed());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = {
        let models = h.models.clone();
        let store = h.store.clone();
        tokio::spawn(async move { models.follow(store.as_ref(), stopped).await })
    };
    let started = std::time::Instant::now();
    history::replay(h.store.clone(), tenants).await;
    eprintln!("{kind:?}: history written in {:?}", started.elapsed());
    stop.send(true).unwrap();
    follower.await.unwrap().unwrap();
    let head = h.store.head().await.unwrap();
    assert!(head >= 10_000, "only {head} events");
    let types = event_types(&h).await;
    let missing: Vec<&str> = LedgerEvent::all_types()
        .into_iter()
        .filter(|t| !types.contains_key(*t))
        .collect();
    assert!(missing.is_empty(), "event types never written: {missing:?}");
    assert_eq!(h.models.catch_up(h.store.as_ref()).await.unwrap(), head);

    let incremental = h.models.dump().await.unwrap().render(true);
    let reference = h.reference().await.dump().render(true);
    assert!(
        incremental == reference,
        "the SQL rows differ from the reference"
    );

    // A rebuild of everything, with queries answering meanwhile. Its
    // pages are of the live runner's size, so that this history crosses
    // ten of them (a rebuild's own pages would make five).
    let paged = h.models.clone().with_rebuild_page_events(1_000);
    let started = std::time::Instant::now();
    let rebuild = {
        let models = paged.clone();
        let store = h.store.clone();
        tokio::spawn(async move { models.rebuild(store.as_ref(), None).await })
    };
    let mut answered = 0;
    while !rebuild.is_finished() {
        let page = h
            .models
            .audit(&AuditQuery {
                subject: Some("workspace:ws-1".into()),
                ..AuditQuery::default()
            })
            .await
            .expect("queries answer during a rebuild");
        assert!(!page.entries.is_empty());
        answered += 1;
        // Paced like a person paging, so the rebuild keeps the cores.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let report = rebuild.await.unwrap().unwrap();
    eprintln!(
        "{kind:?}: rebuilt {} events in {:?}; {answered} queries answered meanwhile",
        report.events,
        started.elapsed()
    );
    assert_eq!(report.position, head);
    let rebuilt = h.models.dump().await.unwrap().render(true);
    assert!(
        rebuilt == incremental,
        "the rebuild differs from the incremental run"
    );
    // A rebuild that fails part way (on PostgreSQL, some projections'
    // shadow pages committed, others not) leaves the live rows alone; the
    // next rebuild starts afresh and ends with the same rows.
    paged.inject_fault_after(4);
    let failed = paged.rebuild(h.store.as_ref(), None).await;
    assert!(
        matches!(failed, Err(ReadModelError::Injected(_))),
        "{failed:?}"
    );
    assert!(h.models.dump().await.unwrap().render(true) == incremental);
    // The next one, in a rebuild's own pages.
    h.models.rebuild(h.store.as_ref(), None).await.unwrap();
    assert!(h.models.dump().await.unwrap().render(true) == incremental);

    // One projection alone, twice (index names change with each generation).
    for _ in 0..2 {
        h.models
            .rebuild(h.store.as_ref(), Some(ProjectionName::Tasks))
            .await
            .unwrap();
    }
    assert!(h.models.dump().await.unwrap().render(true) == incremental);
    let checkpoints = h.models.checkpoints().await.unwrap();
    assert!(
        checkpoints
            .iter()
            .all(|(name, at)| !name.contains('@') && *at == head),
        "{checkpoints:?}"
    );

    // A rebuild while the log grows and the live runner follows it: the
    // swap brings the new tables up to the live checkpoint first.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = {
        let models = h.models.clone();
        let store = h.store.clone();
        tokio::spawn(async move { models.follow(store.as_ref(), stopped).await })
    };
    let writer = tokio::spawn(history::replay(h.store.clone(), late));
    h.models.rebuild(h.store.as_ref(), None).await.unwrap();
    writer.await.unwrap();
    stop.send(true).unwrap();
    follower.await.unwrap().unwrap();
    let head = h.store.head().await.unwrap();
    assert_eq!(h.models.catch_up(h.store.as_ref()).await.unwrap(), head);
    let grown = h.models.dump().await.unwrap().render(true);
    assert!(
        grown == h.reference().await.dump().render(true),
        "rows after a rebuild under writes differ from the reference"
    );

    // Exports stream every entry of a subject, in pages.
    let subject = "workspace:ws-3";
    let mut all = Vec::new();
    let mut query = AuditQuery {
        subject: Some(subject.into()),
        limit: 7,
        ..AuditQuery::default()
    };
    loop {
        let page = h.models.audit(&query).await.unwrap();
        all.extend(page.entries.iter().map(|e| e.position));
        match page.next_after {
            Some(after) => query.after = after,
            None => break,
        }
    }
    let mut jsonl = Vec::new();
    let exported = h
        .models
        .export_audit(
            AuditQuery {
                subject: Some(subject.into()),
                ..AuditQuery::default()
            },
            ExportFormat::JsonLines,
        )
        .write_to(&mut jsonl)
        .await
        .unwrap();
    assert_eq!(exported as usize, all.len());
    let positions: Vec<u64> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, all);

    if kind == Kind::Postgres {
        every_table_has_its_primary_key(&h).await;
        plans_use_indexes(&h).await;
    }
    if kind == Kind::Sqlite {
        sqlite_audit_lookup_searches_both_tag_tables(&h).await;
    }
    h.finish().await;
}

/// After rebuilds, every read-model table has its primary key, those a
/// rebuild adds after filling the table (the audit trail's) included.
async fn every_table_has_its_primary_key(h: &Harness) {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&h.url).await.unwrap();
    let tables: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::TEXT, \
             (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k \
              WHERE k.conrelid = c.oid AND k.contype = 'p') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND c.relname LIKE 'rm\\_%' AND n.nspname = current_schema() \
         ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let keys: BTreeMap<String, Option<String>> = tables.into_iter().collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
    assert_eq!(
        keys["rm_audit"].as_deref(),
        Some("PRIMARY KEY (\"position\")")
    );
    let keyless: Vec<&String> = keys
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(t, _)| t)
        .collect();
    assert!(
        keyless.is_empty(),
        "tables without a primary key: {keyless:?}"
    );
}

/// The audit lookup for one subject and the compliance report's range
/// query use indexes, not sequential scans, once PostgreSQL knows the data.
async fn plans_use_indexes(h: &Harness) {
    h.execute("ANALYZE").await;
    let audit = audit_plan(h, "request:00000000-0000-7000-8000-000000000000").await;
    let audit_by_file = audit_plan(h, "file:f-7-1").await;
    let report = h
        .models
        .explain_report(&DeadlineQuery {
            received_from: history::start() + Duration::days(30),
            received_to: history::start() + Duration::days(37),
            policy: None,
        })
        .await
        .unwrap();
    eprintln!("audit plan:\n{audit_by_file}\nreport plan:\n{report}");
    for plan in [&audit, &audit_by_file] {
        for table in ["events", "event_tags", "rm_audit"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table} "))
                    && !plan.ends_with(&format!("Seq Scan on {table}")),
                "sequential scan on {table}:\n{plan}"
            );
        }
    }
    assert!(!report.contains("Seq Scan on events"), "{report}");
    assert!(!report.contains("Seq Scan on rm_requests"), "{report}");
}

/// On SQLite the log's tag index is two tables (settled and recent):
/// the audit lookup of one subject searches each by its key, and scans
/// neither, nor the events or the audit trail.
async fn sqlite_audit_lookup_searches_both_tag_tables(h: &Harness) {
    let plan = audit_plan(h, "file:f-7-1").await;
    eprintln!("audit plan:\n{plan}");
    // Both tables go by the alias `s`: one keyed search each.
    let keyed = plan
        .lines()
        .filter(|step| *step == "SEARCH s USING PRIMARY KEY (tag=? AND position>?)")
        .count();
    assert_eq!(keyed, 2, "{plan}");
    for table in [
        "event_tags_settled",
        "event_tags_recent",
        "events",
        "rm_audit",
        "s",
        "a",
    ] {
        assert!(
            !plan.lines().any(|step| step == format!("SCAN {table}")
                || step.starts_with(&format!("SCAN {table} "))),
            "a scan of {table}:\n{plan}"
        );
    }
}

/// The database's plan for the audit lookup of `subject`.
async fn audit_plan(h: &Harness, subject: &str) -> String {
    h.models
        .explain_audit(&AuditQuery {
            subject: Some(subject.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// Read models stored under an older schema version (an upgrade of
/// Lethe that changed a projection's tables) are recreated empty when the
/// read models are opened, and the runner fills them again from the log:
/// the same rows, nothing lost. Projections whose version did not change
/// keep their rows and checkpoints.
async fn a_changed_table_schema_is_refilled_from_the_log(kind: Kind) {
    let Some(h) = story_caught_up(kind).await else {
        return;
    };
    let before = h.models.dump().await.unwrap().render(true);

    // What an older version left behind: the tasks projection's tables
    // at a lower schema version, and a rebuild of them that never
    // finished, whose shadow table holds the next generation's index name.
    h.age_schema("tasks").await;
    let generation = h
        .scalar("SELECT generation FROM read_model_checkpoints WHERE projection = 'tasks'")
        .await;
    h.execute("CREATE TABLE rm_tasks__next (task TEXT)").await;
    h.execute(&format!(
        "CREATE INDEX rm_tasks_g{}_request ON rm_tasks__next (task)",
        generation + 1
    ))
    .await;

    let reopened = adapters::readmodel::ReadModels::open(&h.url).await.unwrap();
    let checkpoints: BTreeMap<String, u64> =
        reopened.checkpoints().await.unwrap().into_iter().collect();
    assert_eq!(checkpoints.len(), 5, "{checkpoints:?}");
    for (projection, at) in &checkpoints {
        let expected = if projection == "tasks" { 0 } else { 40 };
        assert_eq!(*at, expected, "{projection}: {checkpoints:?}");
    }
    assert!(
        reopened.dump().await.unwrap().render(true) != before,
        "the tasks tables were not recreated"
    );
    assert_eq!(reopened.catch_up(h.store.as_ref()).await.unwrap(), 40);
    assert!(
        reopened.dump().await.unwrap().render(true) == before,
        "the refilled read models differ from those before the upgrade"
    );
    reopened.close().await;
    h.finish().await;
}

/// Tables an older schema had and this one does not (the audit subject
/// table of version 2, with a rebuild's copy of it) are dropped when the
/// read models are opened; the audit lookup by subject answers from the
/// log's tag index as before.
async fn an_upgrade_drops_the_tables_a_schema_retired(kind: Kind) {
    let Some(h) = story_caught_up(kind).await else {
        return;
    };
    let subject = AuditQuery {
        subject: Some("file:f-1".into()),
        ..AuditQuery::default()
    };
    let found = h.models.audit(&subject).await.unwrap();
    assert!(!found.entries.is_empty());
    let before = h.models.dump().await.unwrap().render(true);

    for table in ["rm_audit_subjects", "rm_audit_subjects__next"] {
        h.execute(&format!(
            "CREATE TABLE {table} (subject TEXT NOT NULL, position BIGINT NOT NULL, \
             PRIMARY KEY (subject, position))"
        ))
        .await;
        h.execute(&format!("INSERT INTO {table} VALUES ('file:f-1', 1)"))
            .await;
    }
    h.execute("UPDATE read_model_checkpoints SET schema_version = 2 WHERE projection = 'audit'")
        .await;

    let reopened = adapters::readmodel::ReadModels::open(&h.url).await.unwrap();
    // Creating them again succeeds only if they are gone.
    for table in ["rm_audit_subjects", "rm_audit_subjects__next"] {
        h.execute(&format!("CREATE TABLE {table} (subject TEXT)"))
            .await;
        h.execute(&format!("DROP TABLE {table}")).await;
    }
    assert_eq!(reopened.catch_up(h.store.as_ref()).await.unwrap(), 40);
    assert_eq!(reopened.audit(&subject).await.unwrap(), found);
    assert_eq!(reopened.dump().await.unwrap().render(true), before);
    reopened.close().await;
    h.finish().await;
}

/// An audit entry names the subjects under which the lookup by subject
/// finds it, the subject tags in the log's tag index; the dump checks that
/// the two agree and names the first position where they do not.
async fn the_dump_refuses_entries_the_tag_index_disagrees_with(kind: Kind) {
    let Some(h) = story_caught_up(kind).await else {
        return;
    };
    h.models.dump().await.expect("entries and tag index agree");

    h.execute(
        "DELETE FROM event_tags WHERE tag = 'file:f-1' \
         AND position = (SELECT min(position) FROM event_tags WHERE tag = 'file:f-1')",
    )
    .await;
    let refused = h.models.dump().await;
    assert!(
        matches!(&refused, Err(ReadModelError::Corrupt(message))
            if message.contains("subject file:f-1")),
        "{refused:?}"
    );
    h.finish().await;
}

async fn a_crash_between_rows_and_checkpoint_loses_and_doubles_nothing(kind: Kind) {
    let Some(h) = Harness::new(kind).await else {
        return;
    };
    let (ledger, clock) = history::ledger(h.store.clone());
    history::generate(&ledger, &clock, 3, 3, 1).await;
    let head = h.store.head().await.unwrap();

    // Two pages go through; the third fails after writing its rows.
    let page = 40;
    h.models.inject_fault_after(2);
    assert_eq!(
        h.models.run_page(h.store.as_ref(), page).await.unwrap(),
        page
    );
    assert_eq!(
        h.models.run_page(h.store.as_ref(), page).await.unwrap(),
        page
    );
    let failed = h.models.run_page(h.store.as_ref(), page).await;
    assert!(
        matches!(failed, Err(ReadModelError::Injected(_))),
        "{failed:?}"
    );
    let checkpoints = h.models.checkpoints().await.unwrap();
    assert!(
        checkpoints.iter().all(|(_, at)| *at == 80),
        "{checkpoints:?}"
    );
    // Nothing of the failed page is visible: the rows are those of 80 events.
    let mut first = projections::memory::MemoryReadModels::new();
    first
        .apply_all(h.all_events().await.iter().take(80))
        .await
        .unwrap();
    assert!(h.models.dump().await.unwrap().render(true) == first.dump().render(true));

    // "Restart": a new process opens the read models and catches up.
    h.models.close().await;
    let restarted = adapters::readmodel::ReadModels::open(&h.url).await.unwrap();
    assert_eq!(restarted.catch_up(h.store.as_ref()).await.unwrap(), head);
    let after = restarted.dump().await.unwrap();
    assert_eq!(
        after.audit.len() as u64,
        head,
        "each event once in the audit trail"
    );
    assert!(after.render(true) == h.reference().await.dump().render(true));
    restarted.close().await;
    h.finish().await;
}

/// A small deterministic generator, so that a failing schedule can be
/// replayed from its seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Holds placed and lifted, deletions requested and tasks claimed by
/// concurrent actors on a seeded schedule; then the log must show no
/// claim at a position where an active hold covered the claimed task.
async fn no_task_is_claimed_under_an_active_hold(kind: Kind) {
    for seed in [1_u64, 2, 3] {
        let Some(h) = Harness::new(kind).await else {
            return;
        };
        holds_schedule(&h, seed).await;
        h.finish().await;
    }
}

async fn holds_schedule(h: &Harness, seed: u64) {
    use domain::ids::HoldId;
    use domain::subject::Subject;
    use domain::text::{MatterRef, Reason};
    use domain::values::HoldKind;

    let (ledger, clock) = history::ledger(h.store.clone());
    // Tenants 0 and 1, each with files and open requests.
    history::generate(&ledger, &clock, 2, 2, 0).await;
    let scopes = [
        "workspace:ws-0",
        "workspace:ws-1",
        "project:p-0",
        "file:f-0-3",
        "file:f-1-3",
        "transcript:transcript-0-3",
        "account:o-0",
    ];
    let files = ["file:f-0-3", "file:f-1-3", "canvas:c-0", "canvas:c-1"];
    let mut handles = Vec::new();
    for actor in 0..6_u64 {
        let ledger = ledger.clone();
        let clock = clock.clone();
        let models = h.models.clone();
        let store = h.store.clone();
        let mut rng = SplitMix(seed * 1_000 + actor);
        handles.push(tokio::spawn(async move {
            let ctx = history::ctx(&format!("service:actor-{actor}"));
            let legal = history::ctx("legal:dana");
            let mut held: Vec<HoldId> = Vec::new();
            let mut claims = 0;
            for _ in 0..14 {
                match rng.below(4) {
                    0 => {
                        let scope = scopes[rng.below(scopes.len() as u64) as usize];
                        if let Ok(hold) = ledger
                            .place_hold(
                                &legal,
                                Subject::parse(scope).unwrap(),
                                HoldKind::Legal,
                                MatterRef::parse("M-race").unwrap(),
                                Reason::parse("race").unwrap(),
                            )
                            .await
                        {
                            held.push(hold);
                        }
                    }
                    1 if !held.is_empty() => {
                        let hold = held.swap_remove(rng.below(held.len() as u64) as usize);
                        ledger
                            .lift_hold(&legal, hold, Reason::parse("done").unwrap())
                            .await
                            .unwrap();
                    }
                    2 => {
                        let file = files[rng.below(files.len() as u64) as usize];
                        let _ = ledger
                            .request_deletion(
                                &ctx,
                                commands::ledger::DeletionRequestInput {
                                    scope: Subject::parse(file).unwrap(),
                                    channel: domain::values::Channel::InProduct,
                                    policy: None,
                                    requested_by: domain::values::Initiator::Platform,
                                    recorded_by: None,
                                    verification: None,
                                    contact: None,
                                    received_at: None,
                                },
                            )
                            .await;
                    }
                    _ => {
                        // The service's flow: candidates from the read
                        // models, the claim decided by the log.
                        clock.advance(Duration::seconds(30));
                        models.catch_up(store.as_ref()).await.unwrap();
                        let now = ledger.clock().now();
                        let candidates = models.claimable_tasks(now, 0, None, 5).await.unwrap();
                        for task in candidates {
                            let id = domain::ids::TaskId::parse(&task.task).unwrap();
                            let worker = format!("w-{actor}");
                            if ledger.claim_task(&ctx, id, &worker, 20).await.is_ok() {
                                claims += 1;
                                if rng.below(2) == 0 {
                                    let _ = ledger.complete_task(&ctx, id, &worker).await;
                                }
                                break;
                            }
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
            claims
        }));
    }
    let mut claims = 0;
    for handle in handles {
        claims += handle.await.unwrap();
    }
    assert!(claims > 0, "seed {seed}: the schedule made no claim");

    // The log is the proof.
    let mut active: BTreeMap<String, usize> = BTreeMap::new();
    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut checked = 0;
    for recorded in h.all_events().await {
        match projections::decode(&recorded).unwrap() {
            LedgerEvent::Hold(HoldEvent::HoldPlaced { scope, .. }) => {
                *active.entry(scope.to_string()).or_default() += 1;
            }
            LedgerEvent::Hold(HoldEvent::HoldLifted { scope, .. }) => {
                *active.entry(scope.to_string()).or_default() -= 1;
            }
            LedgerEvent::Request(RequestEvent::TaskReleased {
                task, covered_by, ..
            }) => {
                let scopes: BTreeSet<String> = covered_by.iter().map(ToString::to_string).collect();
                for scope in &scopes {
                    assert_eq!(
                        active.get(scope).copied().unwrap_or(0),
                        0,
                        "seed {seed}: task {task} released at {} under a hold on {scope}",
                        recorded.position
                    );
                }
                covered.insert(task.to_string(), scopes.into_iter().collect());
            }
            LedgerEvent::Request(RequestEvent::TaskClaimed { task, .. }) => {
                checked += 1;
                for scope in &covered[&task.to_string()] {
                    assert_eq!(
                        active.get(scope).copied().unwrap_or(0),
                        0,
                        "seed {seed}: task {task} claimed at {} under a hold on {scope}",
                        recorded.position
                    );
                }
            }
            _ => {}
        }
    }
    assert!(checked > 0);
    // And the read model agrees with the reference on what is claimable.
    h.models.catch_up(h.store.as_ref()).await.unwrap();
    let now = ledger.clock().now() + Duration::hours(1);
    let sql: Vec<String> = h
        .models
        .claimable_tasks(now, 0, None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task)
        .collect();
    let reference = h.reference().await;
    let memory: Vec<String> = reference
        .claimable(now)
        .into_iter()
        .map(|t| t.task.clone())
        .collect();
    assert_eq!(sql, memory, "seed {seed}");
}
