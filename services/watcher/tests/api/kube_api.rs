//! A Kubernetes API server in miniature, for the real kube-rs client in the watcher: no API
//! server can be installed here, so this one speaks the part of the protocol a pod watch uses,
//! on a loopback port, with objects built from k8s-openapi's types.
//!
//! - `GET /api/v1/pods` and `/api/v1/namespaces/{ns}/pods`: a `PodList` with the current
//!   resourceVersion (equality label selectors applied, as the real one does).
//! - The same with `watch=true&resourceVersion=N`: a chunked stream of `WatchEvent` lines —
//!   first the changes after N, then live ones — `BOOKMARK`s on demand; a resourceVersion older
//!   than the last compaction is answered with an `ERROR` event carrying 410 Expired, as the
//!   real server does.
//! - Knobs for the failure shapes: [`KubeApi::expire`] (410 Gone on the open watches: the client
//!   must relist), [`KubeApi::cut`] (the stream ends in the middle of an event),
//!   [`KubeApi::forbid`] (403 Forbidden from RBAC on every request).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::stream;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, WatchEvent};
use obs_core::actix_web::{self, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Watch {
    namespace: Option<String>,
    selector: Vec<(String, String)>,
    sender: mpsc::UnboundedSender<web::Bytes>,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<String, Pod>,
    resource_version: u64,
    /// Every change, with the resourceVersion it made: what a resumed watch replays.
    history: Vec<(u64, Pod, &'static str)>,
    /// Watches from before this resourceVersion get 410 Gone (etcd compacted them away).
    compacted: u64,
    watches: Vec<Watch>,
    forbidden: bool,
    /// What was asked: (watch?, namespace, query).
    requests: Vec<(bool, Option<String>, HashMap<String, String>)>,
    authorizations: Vec<String>,
    /// Merge patches received: (path, content type, body).
    patches: Vec<(String, String, Value)>,
}

pub struct KubeApi {
    pub kubeconfig: PathBuf,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
    _folder: tempfile::TempDir,
}

pub const TOKEN: &str = "test-service-account-token";

impl KubeApi {
    /// Start one, with a kubeconfig pointing at it; must run inside an actix system.
    pub async fn start() -> KubeApi {
        let state = Arc::new(Mutex::new(State {
            resource_version: 100,
            ..State::default()
        }));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let state = app_state.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move {
                    match *request.method() {
                        actix_web::http::Method::DELETE => delete_pod(&state, &request),
                        actix_web::http::Method::PATCH => patch(&state, &request, &body),
                        _ => answer(&state, &request),
                    }
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("the API server binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let url = format!("http://127.0.0.1:{port}");
        let folder = tempfile::tempdir().expect("a temporary folder");
        let kubeconfig = folder.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: watcher\n\
                 current-context: test\nusers:\n- name: watcher\n  user:\n    token: {TOKEN}\n"
            ),
        )
        .expect("the kubeconfig is written");
        KubeApi {
            kubeconfig,
            state,
            handle,
            _folder: folder,
        }
    }

    /// Create or change a pod: ADDED or MODIFIED to the watches that select it.
    pub fn apply(&self, mut pod: Pod) {
        let mut state = lock(&self.state);
        state.resource_version += 1;
        let version = state.resource_version;
        pod.metadata.resource_version = Some(version.to_string());
        let key = key(&pod);
        let kind = if state.pods.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.pods.insert(key, pod.clone());
        state.history.push((version, pod.clone(), kind));
        broadcast(&mut state, &pod, kind);
    }

    /// Delete a pod: DELETED with its last state.
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut state = lock(&self.state);
        let Some(mut pod) = state.pods.remove(&format!("{namespace}/{name}")) else {
            panic!("no pod {namespace}/{name} to delete");
        };
        state.resource_version += 1;
        let version = state.resource_version;
        pod.metadata.resource_version = Some(version.to_string());
        state.history.push((version, pod.clone(), "DELETED"));
        broadcast(&mut state, &pod, "DELETED");
    }

    /// A BOOKMARK with the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        let mut state = lock(&self.state);
        let line = bookmark_line(state.resource_version);
        state
            .watches
            .retain(|watch| watch.sender.send(line.clone()).is_ok());
    }

    /// Compact the history: every open watch gets ERROR 410 Expired and ends, and a watch that
    /// resumes from before now gets the same; only a new list helps.
    pub fn expire(&self) {
        let mut state = lock(&self.state);
        state.compacted = state.resource_version;
        let line = gone_line(state.resource_version, state.compacted);
        for watch in state.watches.drain(..) {
            let _ = watch.sender.send(line.clone());
        }
    }

    /// End every open watch in the middle of an event.
    pub fn cut(&self) {
        let mut state = lock(&self.state);
        for watch in state.watches.drain(..) {
            let _ = watch.sender.send(web::Bytes::from_static(
                br#"{"type":"MODIFIED","object":{"kind":"Pod","apiVer"#,
            ));
        }
    }

    /// Answer every request with 403 Forbidden (RBAC) while true; open watches end.
    pub fn forbid(&self, forbidden: bool) {
        let mut state = lock(&self.state);
        state.forbidden = forbidden;
        if forbidden {
            state.watches.clear();
        }
    }

    pub fn lists(&self) -> usize {
        lock(&self.state).requests.iter().filter(|r| !r.0).count()
    }

    pub fn watches(&self) -> usize {
        lock(&self.state).requests.iter().filter(|r| r.0).count()
    }

    pub fn open_watches(&self) -> usize {
        let mut state = lock(&self.state);
        state.watches.retain(|watch| !watch.sender.is_closed());
        state.watches.len()
    }

    /// The resourceVersion each watch asked to start from, in order.
    pub fn watch_versions(&self) -> Vec<String> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.0)
            .map(|r| r.2.get("resourceVersion").cloned().unwrap_or_default())
            .collect()
    }

    /// Every request's (watch?, namespace, query).
    pub fn requests(&self) -> Vec<(bool, Option<String>, HashMap<String, String>)> {
        lock(&self.state).requests.clone()
    }

    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.state).authorizations.clone()
    }

    /// Merge patches received: (path, content type, body).
    pub fn patches(&self) -> Vec<(String, String, Value)> {
        lock(&self.state).patches.clone()
    }

    pub fn has_pod(&self, namespace: &str, name: &str) -> bool {
        lock(&self.state)
            .pods
            .contains_key(&format!("{namespace}/{name}"))
    }

    pub fn resource_version(&self) -> u64 {
        lock(&self.state).resource_version
    }

    pub async fn stop(self) {
        lock(&self.state).watches.clear();
        self.handle.stop(false).await;
    }
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn event_line(event: &WatchEvent<Pod>) -> web::Bytes {
    let mut line = serde_json::to_vec(event).expect("a watch event serializes");
    line.push(b'\n');
    line.into()
}

fn pod_line(pod: &Pod, kind: &str) -> web::Bytes {
    event_line(&match kind {
        "ADDED" => WatchEvent::Added(pod.clone()),
        "DELETED" => WatchEvent::Deleted(pod.clone()),
        _ => WatchEvent::Modified(pod.clone()),
    })
}

/// As the API server sends it: k8s-openapi's own serializer leaves out the bookmark object's
/// kind and apiVersion, which kube-rs (and the real server) have.
fn bookmark_line(version: u64) -> web::Bytes {
    let mut line = serde_json::to_vec(&json!({
        "type": "BOOKMARK",
        "object": {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"resourceVersion": version.to_string()}}
    }))
    .expect("a bookmark serializes");
    line.push(b'\n');
    line.into()
}

fn status(code: u16, reason: &str, message: String) -> Status {
    Status {
        code: Some(code.into()),
        reason: Some(reason.into()),
        message: Some(message),
        status: Some("Failure".into()),
        ..Status::default()
    }
}

fn gone_line(asked: u64, compacted: u64) -> web::Bytes {
    event_line(&WatchEvent::ErrorStatus(status(
        410,
        "Expired",
        format!("too old resource version: {asked} ({compacted})"),
    )))
}

fn selects(selector: &[(String, String)], pod: &Pod) -> bool {
    selector.iter().all(|(label, value)| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(label))
            == Some(value)
    })
}

fn broadcast(state: &mut State, pod: &Pod, kind: &str) {
    let namespace = pod.metadata.namespace.clone();
    let line = pod_line(pod, kind);
    state.watches.retain(|watch| {
        if watch.namespace.is_some() && watch.namespace != namespace {
            return true;
        }
        if !selects(&watch.selector, pod) {
            return true;
        }
        watch.sender.send(line.clone()).is_ok()
    });
}

fn query(request: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn json_response(code: u16, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(code)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    )
    .content_type("application/json")
    .body(serde_json::to_vec(body).expect("a body serializes"))
}

fn answer(state: &Arc<Mutex<State>>, request: &HttpRequest) -> HttpResponse {
    let path = request.path().to_string();
    let namespace = match path.as_str() {
        "/api/v1/pods" => None,
        _ => match path
            .strip_prefix("/api/v1/namespaces/")
            .and_then(|rest| rest.strip_suffix("/pods"))
        {
            Some(namespace) if !namespace.contains('/') => Some(namespace.to_string()),
            _ => {
                return json_response(
                    404,
                    &status(404, "NotFound", format!("the server could not find {path}")),
                )
            }
        },
    };
    let query = query(request);
    let watch = query.get("watch").map(String::as_str) == Some("true");
    let mut state = lock(state);
    state
        .requests
        .push((watch, namespace.clone(), query.clone()));
    if let Some(authorization) = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
    {
        state.authorizations.push(authorization.to_string());
    }
    if state.forbidden {
        return json_response(
            403,
            &status(
                403,
                "Forbidden",
                format!(
                    "pods is forbidden: User \"system:serviceaccount:obs:watcher\" cannot {} \
                     resource \"pods\" in API group \"\" {}",
                    if watch { "watch" } else { "list" },
                    namespace
                        .as_deref()
                        .map(|ns| format!("in the namespace \"{ns}\""))
                        .unwrap_or_else(|| "at the cluster scope".into())
                ),
            ),
        );
    }
    let selector: Vec<(String, String)> = query
        .get("labelSelector")
        .map(|selector| {
            selector
                .split(',')
                .filter_map(|term| term.split_once('='))
                .map(|(label, value)| (label.to_string(), value.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let in_scope = |pod: &Pod| {
        (namespace.is_none() || pod.metadata.namespace == namespace) && selects(&selector, pod)
    };
    if !watch {
        let list = k8s_openapi::List::<Pod> {
            items: state
                .pods
                .values()
                .filter(|pod| in_scope(pod))
                .cloned()
                .collect(),
            metadata: ListMeta {
                resource_version: Some(state.resource_version.to_string()),
                ..ListMeta::default()
            },
        };
        return json_response(200, &list);
    }
    let (sender, receiver) = mpsc::unbounded_channel();
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|version| version.parse().ok())
        .unwrap_or(0);
    if from < state.compacted {
        let _ = sender.send(gone_line(from, state.compacted));
        drop(sender);
    } else {
        let replay: Vec<web::Bytes> = state
            .history
            .iter()
            .filter(|(version, pod, _)| *version > from && in_scope(pod))
            .map(|(_, pod, kind)| pod_line(pod, kind))
            .collect();
        for line in replay {
            let _ = sender.send(line);
        }
        state.watches.push(Watch {
            namespace,
            selector,
            sender,
        });
    }
    let body = stream::unfold(receiver, |mut receiver| async move {
        let line = receiver.recv().await?;
        Some((Ok::<_, actix_web::Error>(line), receiver))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body)
}

fn forbidden(verb: &str, resource: &str) -> HttpResponse {
    json_response(
        403,
        &status(
            403,
            "Forbidden",
            format!("{resource} is forbidden: User \"system:serviceaccount:obs:watcher\" cannot {verb} resource \"{resource}\""),
        ),
    )
}

/// `DELETE /api/v1/namespaces/{ns}/pods/{name}`: the pod goes (DELETED to the watches), and
/// the answer is the pod, as the API server gives it.
fn delete_pod(state: &Arc<Mutex<State>>, request: &HttpRequest) -> HttpResponse {
    let path = request.path().to_string();
    let Some((namespace, name)) = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|rest| rest.split_once("/pods/"))
    else {
        return json_response(404, &status(404, "NotFound", format!("no {path}")));
    };
    let mut state = lock(state);
    if state.forbidden {
        return forbidden("delete", "pods");
    }
    let Some(mut pod) = state.pods.remove(&format!("{namespace}/{name}")) else {
        return json_response(
            404,
            &status(404, "NotFound", format!("pods \"{name}\" not found")),
        );
    };
    state.resource_version += 1;
    let version = state.resource_version;
    pod.metadata.resource_version = Some(version.to_string());
    state.history.push((version, pod.clone(), "DELETED"));
    broadcast(&mut state, &pod, "DELETED");
    json_response(200, &pod)
}

/// `PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}` (or statefulsets, daemonsets): the
/// patch is kept for the test to read; the answer is the object it makes.
fn patch(state: &Arc<Mutex<State>>, request: &HttpRequest, body: &[u8]) -> HttpResponse {
    let path = request.path().to_string();
    let mut state = lock(state);
    if state.forbidden {
        return forbidden("patch", "deployments");
    }
    let Some((namespace, name)) = path
        .strip_prefix("/apis/apps/v1/namespaces/")
        .and_then(|rest| rest.split_once("/deployments/"))
    else {
        return json_response(404, &status(404, "NotFound", format!("no {path}")));
    };
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let patch: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    state
        .patches
        .push((path.clone(), content_type, patch.clone()));
    let deployment = k8s_openapi::api::apps::v1::Deployment {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    json_response(200, &deployment)
}
