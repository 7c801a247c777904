//! What a restart does to unfinished records: running ones end INTERRUPTED (never sent twice),
//! pending ones run, in order.

use crate::support::*;
use serde_json::json;
use skapi_core::wire::{CsrBody, Status};
use skapi_core::{ErrorCode, Method};
use skapi_server::domain::{NewRecord, Outcome};
use skapi_server::keyring::{Keyring, NewKey};
use skapi_server::secrets::MasterKey;
use skapi_server::store::sqlite::{SqliteStore, DB_FILE};
use skapi_server::store::{Db, Store};
use std::sync::Arc;

fn record(id: &str, url: &str, created: u64) -> NewRecord {
    let request: CsrBody = serde_json::from_value(json!({
        "service": SERVICE, "owner": OWNER, "url": url, "clientSecretName": "openai", "method": "post",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"n": created}
    }))
    .unwrap();
    NewRecord {
        id: id.into(),
        service: SERVICE.into(),
        owner: OWNER.into(),
        caller: "pid:caller-a".into(),
        counted_as: vec!["pid:caller-a".into()],
        key_name: "openai".into(),
        method: Method::Post,
        url: url.into(),
        key_v1: skapi_core::id::key_v1(Method::Post, url, Some("q")),
        key_v2: skapi_core::id::key_v2(Method::Post, url, SERVICE),
        queue: Some("q".into()),
        queue_key: Some("k".into()),
        request,
        request_body: Some(json!({"n": created})),
        created,
        expires: u64::MAX / 2,
    }
}

async fn restart_interrupts_running_and_resumes_pending_in_order(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("{api}/echo");
    {
        // A previous process: one request was running when it died, two were waiting.
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join(DB_FILE)).unwrap());
        let master = Arc::new(MasterKey::load_or_create(dir.path()).unwrap());
        let keyring = Keyring::new(Db::new(store.clone()), master);
        let key = NewKey {
            service: SERVICE.into(),
            name: "openai".into(),
            secret: SECRET.into(),
            destinations: skapi_server::destination::Destinations::Any,
            ..Default::default()
        };
        keyring.add(key, false).await.unwrap();
        let now = skapi_server::clock::now_ms();
        store.insert_record(&record("1:running", &url, now), None).await.unwrap();
        let claim = skapi_server::domain::Claim { now, lease_until: now + 60_000, token: "previous.1".into() };
        assert!(store.claim("1:running", &claim).await.unwrap().is_some());
        store.insert_record(&record("2:first", &url, now + 1), None).await.unwrap();
        store.insert_record(&record("3:second", &url, now + 2), None).await.unwrap();
    }
    let server = start_server_with(dir.clone(), config(engine, dir.path())).await;
    let interrupted = server.state.db.store().get_record("1:running").await.unwrap().unwrap();
    assert_eq!(interrupted.status, Status::Failed);
    match interrupted.outcome {
        Some(Outcome::Failed { error, .. }) => assert_eq!(error.code, ErrorCode::Interrupted),
        other => panic!("{other:?}"),
    }
    for _ in 0..200 {
        let mut done = true;
        for id in ["2:first", "3:second"] {
            done &= server.state.db.store().get_record(id).await.unwrap().unwrap().status.is_final();
        }
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for id in ["2:first", "3:second"] {
        assert_eq!(server.state.db.store().get_record(id).await.unwrap().unwrap().status, Status::Resolved, "{id}");
    }
    let bodies: Vec<serde_json::Value> = stand_in.seen().iter().map(|s| serde_json::from_slice(&s.body).unwrap()).collect();
    assert_eq!(bodies.len(), 2, "the interrupted request was not sent again: {bodies:?}");
    assert!(bodies[0]["n"].as_u64() < bodies[1]["n"].as_u64(), "pending requests ran in arrival order: {bodies:?}");
}

engine_tests! {
  both: [],
  sqlite: [
    restart_interrupts_running_and_resumes_pending_in_order,
  ],
}
