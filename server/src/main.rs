//! The `skapi-server` command (its commands: `cli/`).

mod cli;

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: a request's memory is made on one thread and freed on
/// another (runtime workers, the SQLite writer), and glibc then takes the arena's lock; under
/// load the waits on it were a tenth of the process's time (BENCHMARKS.md, "Server").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run()
}
