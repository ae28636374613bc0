//! The options every connection pool of Lethe starts from.

use sqlx::pool::PoolOptions;
use sqlx::Database;

/// A pool with no reaper: connections are neither closed after a time
/// idle nor after a lifetime, so sqlx starts no maintenance task for it.
///
/// Why: sqlx 0.8's maintenance task sweeps `0..num_idle` idle connections
/// without yielding, and a connection returned while another is taken can
/// make it read that count mid-update as `usize::MAX` (sqlx issue 3645).
/// The task then holds a core for good, and the runtime never finishes
/// shutting down: seen here as an API test that hung after its last
/// assertion, with one worker spinning in that sweep. Lethe's pools are
/// a few connections each (a SQLite file's, or a small PostgreSQL read
/// pool); keeping them open costs little, and a broken one is found when
/// it is next acquired (sqlx tests a connection before handing it out).
pub(crate) fn without_reaper<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new().idle_timeout(None).max_lifetime(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx spawns its maintenance task only when a pool has an idle
    /// timeout, a lifetime or a minimum of connections.
    #[test]
    fn a_pool_without_reaper_has_nothing_to_maintain() {
        let options = without_reaper::<sqlx::Sqlite>();
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
        assert_eq!(options.get_min_connections(), 0);
        let options = without_reaper::<sqlx::Postgres>();
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
        assert_eq!(options.get_min_connections(), 0);
    }
}
