//! One test over a real socket: the server bound to port 0.

use adapters::auth::ApiRole;

use crate::helpers::{spawn_app, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_tcp() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let report = client
        .get(format!("http://{address}/v1/reports/deadlines"))
        .bearer_auth(app.token(ApiRole::Auditor))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status().as_u16(), 200);
    let unauthenticated = client
        .get(format!("http://{address}/v1/holds"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    server.abort();
    app.finish().await;
}
