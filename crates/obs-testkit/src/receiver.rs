//! A stand-in for a downstream role: a real HTTP server on a loopback port that records
//! every request's JSON body and answers with the status a test sets (200 by default).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use obs_core::actix_web::{self, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::eventually;

/// What a [`Receiver`] was sent: (path, JSON body).
pub type Received = Arc<Mutex<Vec<(String, Value)>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Receiver {
    pub url: String,
    received: Received,
    status: Arc<Mutex<u16>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Start one; must run inside an actix system (`#[actix_web::test]`).
    pub async fn start() -> Receiver {
        let received: Received = Arc::default();
        let status = Arc::new(Mutex::new(200u16));
        let (app_received, app_status) = (received.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (received, status) = (app_received.clone(), app_status.clone());
            App::new()
                .app_data(web::PayloadConfig::default().limit(16 * 1024 * 1024))
                .default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                    let (received, status) = (received.clone(), status.clone());
                    async move {
                        let code = *lock(&status);
                        if code == 200 {
                            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            lock(&received).push((request.path().to_string(), value));
                        }
                        let code = actix_web::http::StatusCode::from_u16(code)
                            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
                        HttpResponse::build(code).json(json!({"stored": 0}))
                    }
                }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("a receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            received,
            status,
            handle,
        }
    }

    /// Answer every request with `status` from now on (anything but 200 records nothing).
    pub fn answer(&self, status: u16) {
        *lock(&self.status) = status;
    }

    /// Every item posted to `path` so far, flattened out of the JSON arrays.
    pub fn items(&self, path: &str) -> Vec<Value> {
        lock(&self.received)
            .iter()
            .filter(|(posted, _)| posted == path)
            .flat_map(|(_, body)| body.as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Every body posted to `path` so far, as posted (for receivers of one object per
    /// request, such as webhooks).
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        lock(&self.received)
            .iter()
            .filter(|(posted, _)| posted == path)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Wait until at least `count` items reached `path`.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} items posted to {path}"),
            Duration::from_secs(20),
            || async {
                let items = self.items(path);
                (items.len() >= count).then_some(items)
            },
        )
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}
