//! What the figures were measured on: machine, kernel, versions.

use serde_json::{json, Value};

/// The workspace's lock file, for the exact versions of the libraries.
const CARGO_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `version` of package `name` in Cargo.lock.
pub fn locked_version(name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = CARGO_LOCK.find(&needle)? + needle.len();
    let end = CARGO_LOCK[start..].find('"')?;
    Some(CARGO_LOCK[start..start + end].to_owned())
}

pub fn memory_total_mb() -> Option<u64> {
    let meminfo = read("/proc/meminfo")?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

pub fn describe() -> Value {
    let cpu = read("/proc/cpuinfo").and_then(|info| {
        info.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
    });
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu": cpu,
        "memory_mb": memory_total_mb(),
        "kernel": read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned()),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "load_average": read("/proc/loadavg").map(|l| l.trim().to_owned()),
    })
}

pub fn versions() -> Value {
    json!({
        "lethe": env!("CARGO_PKG_VERSION"),
        "lethe_commit": command("git", &["rev-parse", "--short", "HEAD"]),
        "lethe_tree_dirty": command("git", &["status", "--porcelain"]).map(|s| !s.is_empty()),
        "rustc": command("rustc", &["--version"]),
        "sqlx": locked_version("sqlx"),
        "cqrs_es": locked_version("cqrs-es"),
        "postgres_es": locked_version("postgres-es"),
        "tokio": locked_version("tokio"),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}
