//! Abuse limits through real connections: repeated failed authentications from one address
//! are answered ever more slowly and counted, `--maxConnsPerIP` closes an address's extra
//! connections, and the request rate limits refuse with 462 and the labels that make drivers
//! back off; all of it shows in `/metrics` and the log.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, op_msg, reply_body};
use mongodb::Client;
use mongodb::bson::{Bson, doc};

/// The value of an unlabeled metric line `name value` in `/metrics`.
fn metric(server: &TestServer, line_start: &str) -> Option<f64> {
    let (_, body) = server.http_get("/metrics");
    body.lines().find_map(|l| l.strip_prefix(line_start)).and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn repeated_failed_authentications_slow_down_their_address() {
    let server = TestServer::start(&[]);
    server.admin(doc! { "createUser": "ann", "pwd": "right", "roles": [] }).await.expect("createUser");
    let attempt = |password: &'static str| {
        let uri = server.uri("authSource=admin&authMechanism=SCRAM-SHA-256").replacen(
            "mongodb://",
            &format!("mongodb://ann:{password}@"),
            1,
        );
        async move {
            let client = Client::with_uri_str(uri).await.expect("client");
            let started = Instant::now();
            let outcome = client.database("admin").run_command(doc! { "ping": 1 }).await;
            (outcome.is_ok(), started.elapsed())
        }
    };
    let mut took = Vec::new();
    for _ in 0..4 {
        let (ok, elapsed) = attempt("wrong").await;
        assert!(!ok);
        took.push(elapsed);
    }
    // No delay for the first failure, then 100 ms doubling: the fourth waits at least 400 ms.
    assert!(took.get(3).is_some_and(|d| *d >= Duration::from_millis(400)), "{took:?}");
    assert_eq!(metric(&server, "monarch_auth_failures_total "), Some(4.0));
    assert_eq!(metric(&server, "monarch_auth_delayed_total "), Some(3.0));
    // A success from the address forgets its failures.
    assert!(attempt("right").await.0);
    let (ok, _) = attempt("wrong").await;
    assert!(!ok);
    assert_eq!(metric(&server, "monarch_auth_delayed_total "), Some(3.0));
}

#[test]
fn an_address_gets_at_most_max_conns_per_ip_connections() {
    let server = TestServer::start(&["--maxConnsPerIP", "2"]);
    let ping = op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" });
    let mut first = server.raw();
    let mut second = server.raw();
    for connection in [&mut first, &mut second] {
        connection.send(&ping);
        assert!(connection.receive().is_some());
    }
    let mut third = server.raw();
    assert!(third.is_closed(), "the third connection from one address was kept");
    assert!(common::eventually(Duration::from_secs(5), || server
        .log_lines()
        .iter()
        .any(|l| l.contains("too many open connections") && l.contains("maxConnsPerIP"))));
    assert_eq!(metric(&server, "monarch_connections_rejected_per_ip_total "), Some(1.0));
    // A closed connection gives its slot back.
    drop(first);
    assert!(common::eventually(Duration::from_secs(5), || {
        let mut again = server.raw();
        again.send(&ping);
        again.receive().is_some()
    }));
}

#[test]
fn requests_over_the_rate_limit_are_refused_with_462() {
    let server = TestServer::start(&["--rateLimitPerIP", "5"]);
    let mut connection = server.raw();
    let mut refused = None;
    for id in 1..=20 {
        connection.send(&op_msg(id, 0, &doc! { "find": "c", "$db": "shop" }));
        let reply = reply_body(&connection.receive().expect("a reply"));
        if reply.get_i32("code").ok() == Some(462) {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("20 requests at once passed a limit of 5 per second");
    assert_eq!(refused.get_str("codeName").ok(), Some("IngressRequestRateLimitExceeded"));
    assert_eq!(
        refused.get_array("errorLabels").ok(),
        Some(&vec![Bson::from("SystemOverloadedError"), Bson::from("RetryableError")])
    );
    // The handshake is never limited.
    connection.send(&op_msg(99, 0, &doc! { "hello": 1, "$db": "admin" }));
    assert_eq!(reply_body(&connection.receive().expect("a reply")).get_f64("ok").ok(), Some(1.0));
    assert!(metric(&server, "monarch_requests_rate_limited_total{scope=\"address\"} ").is_some_and(|n| n >= 1.0));
    assert!(server.log_lines().iter().any(|l| l.contains("Request rate limit reached")));
}
