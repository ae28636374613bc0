//! The HTTP API measured from inside the benchmark process: the router of
//! `adapters::http::app` served on a local TCP socket, and one client per
//! writer (one keep-alive connection each) posting deletion requests for
//! files registered beforehand, as a product service would.

use adapters::auth::{ApiRole, Tokens};
use adapters::http::{app, AppState};
use adapters::readmodel::ReadModels;
use anyhow::Context as _;
use async_trait::async_trait;
use commands::ledger::Ledger;
use serde_json::json;
use std::net::SocketAddr;
use tokio::task::JoinHandle;

use crate::lethe;
use crate::measure::Op;

/// The API served on `127.0.0.1:0` for the length of one measurement.
#[derive(Debug)]
pub struct Server {
    pub address: SocketAddr,
    /// A `service` token, made for this run.
    pub token: String,
    tokens: Tokens,
    read_models: ReadModels,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves the API over `ledger` (whose store is at `url`).
    pub async fn start(url: &str, ledger: Ledger) -> anyhow::Result<Self> {
        let tokens = Tokens::connect(url).await?;
        let token = tokens.create("bench-service", ApiRole::Service).await?;
        let read_models = ReadModels::open(url).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a local port")?;
        let address = listener.local_addr()?;
        let state = AppState::new(
            ledger,
            read_models.clone(),
            tokens.clone(),
            None,
            &format!("http://{address}"),
        );
        let task = tokio::spawn(async move { axum::serve(listener, app(state)).await });
        Ok(Self {
            address,
            token,
            tokens,
            read_models,
            task,
        })
    }

    /// Stops serving and closes the pools of the server's state.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.read_models.close().await;
        self.tokens.close().await;
    }
}

/// Posts a deletion request for each of its writer's files once, over
/// its own connection.
#[derive(Debug)]
pub struct PostWriter {
    client: reqwest::Client,
    url: String,
    token: String,
    writer: usize,
    next: usize,
    files: usize,
}

/// One writer per workspace that `lethe::prepare_ledger` made, each with
/// a connection already open (a `GET /health`), so that connecting is not
/// measured.
pub async fn post_writers(
    server: &Server,
    writers: usize,
    files: usize,
) -> anyhow::Result<Vec<PostWriter>> {
    let mut all = Vec::with_capacity(writers);
    for writer in 0..writers {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .context("building an HTTP client")?;
        let health = client
            .get(format!("http://{}/health", server.address))
            .send()
            .await
            .context("GET /health")?;
        anyhow::ensure!(
            health.status().is_success(),
            "GET /health answered {}",
            health.status()
        );
        all.push(PostWriter {
            client,
            url: format!("http://{}/v1/deletion-requests", server.address),
            token: server.token.clone(),
            writer,
            next: 0,
            files,
        });
    }
    Ok(all)
}

#[async_trait]
impl Op for PostWriter {
    async fn run(&mut self) -> anyhow::Result<u64> {
        if self.next == self.files {
            return Ok(0);
        }
        let scope = lethe::file(self.writer, self.next)?;
        self.next += 1;
        let body = json!({
            "scope": scope.to_string(),
            "channel": "in-product",
            "requested_by": format!("account:{}", lethe::owner(self.writer)?),
            "policy": "gdpr",
        });
        let answer = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let text = answer.text().await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::ACCEPTED,
            "POST /v1/deletion-requests answered {status}: {text}"
        );
        Ok(1)
    }
}
