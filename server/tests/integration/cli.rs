//! The `skapi-server keys` commands, run as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_skapi-server");
const SECRET: &str = "sk-cli-0123456789";

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn keys_add_list_remove_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let add = ["keys", "add", "--data-dir", data, "--service", "svc", "--name", "openai", "--locked", "--destination", "https://api.openai.com/v1"];
    let out = run(&add, &format!("{SECRET}\n"));
    assert!(out.status.success(), "{}", text(&out));

    let again = run(&add, "other\n");
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    let list = run(&["keys", "list", "--data-dir", data, "--json"], "");
    assert!(list.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys[0]["name"], "openai");
    assert_eq!(keys[0]["locked"], true);
    assert_eq!(keys[0]["destinations"][0], "https://api.openai.com/v1");
    let table = run(&["keys", "list", "--data-dir", data], "");
    assert!(text(&table).contains("openai"));
    for out in [&list, &table] {
        assert!(!text(out).contains(SECRET), "list never prints a value");
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }

    let empty = run(&["keys", "add", "--data-dir", data, "--service", "svc", "--name", "blank", "--any-destination"], "\n");
    assert!(!empty.status.success());
    assert!(text(&empty).contains("must not be empty"));
    let bad = run(&["keys", "add", "--data-dir", data, "--service", "svc", "--name", "x", "--destination", "ftp://x"], "v");
    assert!(!bad.status.success());

    let remove = run(&["keys", "remove", "--data-dir", data, "--service", "svc", "--name", "openai"], "");
    assert!(remove.status.success(), "{}", text(&remove));
    let missing = run(&["keys", "remove", "--data-dir", data, "--service", "svc", "--name", "openai"], "");
    assert!(!missing.status.success());
}

#[test]
fn a_key_needs_a_destination_unless_any_is_chosen_explicitly_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let none = run(&["keys", "add", "--data-dir", data, "--service", "svc", "--name", "k"], SECRET);
    assert!(!none.status.success());
    assert!(text(&none).contains("--destination"), "{}", text(&none));

    let any = run(&["keys", "add", "--data-dir", data, "--service", "svc", "--name", "k", "--any-destination"], SECRET);
    assert!(any.status.success(), "{}", text(&any));
    assert!(text(&any).contains("warning"), "{}", text(&any));
    let list = run(&["keys", "list", "--data-dir", data, "--json"], "");
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys[0]["destinations"], "any");
    assert!(text(&run(&["keys", "list", "--data-dir", data], "")).contains("(any destination)"));

    let wildcard = run(&["keys", "edit", "--data-dir", data, "--service", "svc", "--name", "k", "--destination", "https://*.Example.com/v1"], "");
    assert!(wildcard.status.success(), "{}", text(&wildcard));
    let list = run(&["keys", "list", "--data-dir", data, "--json"], "");
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys[0]["destinations"], serde_json::json!(["https://*.example.com/v1"]));
    let apex_wildcard = run(&["keys", "edit", "--data-dir", data, "--service", "svc", "--name", "k", "--destination", "https://*.com/"], "");
    assert!(!apex_wildcard.status.success());
}

#[test]
fn the_data_directory_and_database_files_are_private_on_sqlite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let add = run(&["keys", "add", "--data-dir", data.to_str().unwrap(), "--service", "svc", "--name", "k", "--any-destination"], SECRET);
    assert!(add.status.success(), "{}", text(&add));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
