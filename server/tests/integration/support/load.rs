//! Many tagged requests over many queues from many clients at once.

use super::{tagged, Api, OWNER, SERVICE};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per queue, the tags in acceptance order; and every full id.
pub type Accepted = (HashMap<String, Vec<String>>, Vec<String>);

/// Sends `total` tagged requests over `queues` queues from `clients` clients.
pub async fn send_load(api: &Api, url: &str, round: usize, total: usize, queues: usize, clients: usize) -> Accepted {
    let accepted: Arc<Mutex<Accepted>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (api, url, accepted) = (api.clone(), url.to_owned(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            for i in (c..total).step_by(clients) {
                let queue = format!("q{}", i % queues);
                let tag = format!("{queue}-{round}.{i}");
                let mut body = tagged(&url, &tag);
                body["queue"] = json!(queue);
                body["service"] = json!(SERVICE);
                body["owner"] = json!(OWNER);
                let (status, answer) = api.call("csr", "load", body).await;
                assert_eq!(status, 200, "{answer}");
                let full = format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), answer["id"].as_str().unwrap());
                let mut a = accepted.lock().unwrap();
                a.0.entry(queue).or_default().push(tag);
                a.1.push(full);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(accepted).ok().unwrap().into_inner().unwrap()
}
