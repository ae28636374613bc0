//! `lethe serve` as an operator runs it: it stops cleanly on SIGTERM (a
//! service manager's stop), not only on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/lethe.db", dir.path().display());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--store", &url, "--listen", "127.0.0.1:0"])
        .env_remove("LETHE_STORE")
        .env_remove("LETHE_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run lethe serve");
    let stdout = serve.stdout.take().unwrap();
    let listening = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.starts_with("Lethe listening on"))
    });
    assert!(
        listening.join().unwrap(),
        "serve never said it was listening"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status:?} on SIGTERM");
}
