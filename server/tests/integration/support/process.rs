//! skapi-server as its own process: the CLI, and `serve` printing the URL it listens on.

use super::{Api, SECRET, SERVICE};

/// The `skapi-server` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_skapi-server");

/// `skapi-server keys add` through the CLI, the value on standard input.
pub fn cli_add_key(data: &std::path::Path, name: &str) {
    cli_add_key_with(data, name, &[]);
}

/// The same, with environment variables (e.g. `SKAPI_DATABASE`).
pub fn cli_add_key_with(data: &std::path::Path, name: &str, envs: &[(&str, &str)]) {
    use std::io::Write;
    let mut add = std::process::Command::new(BIN)
        .args(["keys", "add", "--any-destination", "--service", SERVICE, "--name", name, "--data-dir"])
        .arg(data)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(SECRET.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
}

/// Starts `skapi-server serve` on `data` with `stderr` for its log; returns it and a client of
/// the URL it printed.
pub fn spawn_server(data: &std::path::Path, stderr: std::process::Stdio, envs: &[(&str, &str)]) -> (std::process::Child, Api) {
    spawn_server_with(data, stderr, envs, |_| {})
}

/// The same, with the command adjusted first (e.g. its resource limits).
pub fn spawn_server_with(
    data: &std::path::Path,
    stderr: std::process::Stdio,
    envs: &[(&str, &str)],
    adjust: impl FnOnce(&mut std::process::Command),
) -> (std::process::Child, Api) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-upstreams", "--data-dir"])
        .arg(data)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    // No server outlives its test: it is killed when the thread that started it (the test's)
    // ends, a failed test's included, rather than keep its database and its CPU.
    // SAFETY: only prctl, async-signal-safe, between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    adjust(&mut command);
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, Api::new(url))
}
