//! skapi-server's integration tests, one program (one link on a slow machine), a module per area.
//! A test that runs on both storage engines is written once, as `async fn name(engine: Engine)`,
//! and runs as `<area>::sqlite::name` and `<area>::postgres::name` (see `support::engine_tests`).

mod support;

mod api;
mod bytes;
mod cli;
mod engine;
mod forwarding;
mod instances;
mod kill;
mod operating;
mod outage;
mod quotas;
mod reliability;
mod replay;
mod restart;
mod rules;
mod security;
mod shutdown;
mod store;
mod stream;
