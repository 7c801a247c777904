//! One caller against everyone else: labels minted by callers, slots taken by one caller's
//! slow requests, connections that never finish.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn metric_labels_name_configured_hosts_only() {
    let server = server_with(|c| c.admin_token = "admin-token-for-tests".into()).await;
    server.add_key("anywhere", &[]);
    // Hosts of the caller's choosing (loopback, so nothing leaves the machine; nothing listens).
    for i in 0..20 {
        let url = format!("http://127.0.{i}.{}:9/x", 200 + i);
        let id =
            server.submit("caller", json!({"clientSecretName": "anywhere", "url": url, "method": "get", "params": {"k": "$CLIENT_SECRET"}})).await;
        server.poll_until_done("caller", &id).await;
    }
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).bearer_auth("admin-token-for-tests").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"skapi_upstream_calls_total{host="other",outcome="NETWORK_ERROR"}"#), "{metrics}");
    assert!(!metrics.contains("127.0.5.205"), "a caller's host became a label:\n{metrics}");
}
