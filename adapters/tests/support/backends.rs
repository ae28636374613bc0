//! `on_both_backends!(a, b, ...)`: for each listed `async fn name(kind:
//! Kind)` of the invoking file, one test per SQL backend, in modules
//! `sqlite` and `postgres`. Shared by the store and read-model test
//! binaries.

#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await;
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use on_both_backends;
