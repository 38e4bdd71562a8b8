//! A real SIGTERM, delivered to this test process (its own binary, so no other test sees
//! it): readiness turns 503 at once, the in-flight request finishes, the run ends cleanly.

mod common;

use std::time::Duration;

use common::EchoRole;
use obs_core::{shutdown_signal, Service};
use obs_testkit::{eventually, test_config};

#[actix_web::test]
async fn sigterm_drains_an_in_flight_request_then_stops_cleanly() {
    let (config, _state) = test_config("echo");
    let service = Service::new(config).unwrap();
    let role = EchoRole::new(&service).await.unwrap();
    let app = service.bind(role).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let running = obs_core::actix_web::rt::spawn(app.run_until(shutdown_signal()));
    let client = obs_testkit::client();

    eventually("the role to be ready", Duration::from_secs(5), || {
        let request = client.get(format!("{base}/readyz")).send();
        async move { (request.await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    let slow = tokio::spawn(client.get(format!("{base}/v1/slow?ms=1500")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SAFETY: signalling our own process; the role's handler catches it.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
    eventually(
        "readiness to turn 503 after SIGTERM",
        Duration::from_secs(2),
        || {
            let request = client.get(format!("{base}/readyz")).send();
            async move { (request.await.ok()?.status() == 503).then_some(()) }
        },
    )
    .await;

    let slow = slow
        .await
        .unwrap()
        .expect("the in-flight request is not cut off");
    assert_eq!(slow.status(), 200);
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops within the grace")
        .unwrap();
    outcome.expect("a clean stop after SIGTERM");
}
