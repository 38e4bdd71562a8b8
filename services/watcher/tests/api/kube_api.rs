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
//! - `GET /api/v1/events` and `/api/v1/namespaces/{ns}/events`: core/v1 `Event`s, listed and
//!   watched the same way (no label selector: events carry none).
//! - `GET /api/v1/namespaces/{ns}/pods/{name}/log?container=&previous=&tailLines=&limitBytes=`:
//!   the container's log as text/plain, as the kubelet answers through the API server (400
//!   when there is no previous container, 404 when there is no pod).
//! - Watches end cleanly after their `timeoutSeconds`, as the real server ends them.
//! - Knobs for the failure shapes: [`KubeApi::expire`] (410 Gone on the open watches: the client
//!   must relist), [`KubeApi::cut`] (the stream ends in the middle of an event),
//!   [`KubeApi::forbid`] (403 Forbidden from RBAC on every request), [`KubeApi::forbid_only`]
//!   (403 on one resource: `events`, `pods/log`), [`KubeApi::hang`] (pod lists answer their
//!   headers and the start of the body, then nothing; log fetches nothing at all).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::stream;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, WatchEvent};
use obs_core::actix_web::{self, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Pods,
    Events,
}

// A test server's history of a few dozen objects: size does not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Object {
    Pod(Pod),
    Event(Event),
}

impl Object {
    fn resource(&self) -> Resource {
        match self {
            Object::Pod(_) => Resource::Pods,
            Object::Event(_) => Resource::Events,
        }
    }

    fn namespace(&self) -> Option<String> {
        match self {
            Object::Pod(pod) => pod.metadata.namespace.clone(),
            Object::Event(event) => event.metadata.namespace.clone(),
        }
    }

    fn line(&self, kind: &str) -> web::Bytes {
        match self {
            Object::Pod(pod) => pod_line(pod, kind),
            Object::Event(event) => event_line(&match kind {
                "ADDED" => WatchEvent::Added(event.clone()),
                "DELETED" => WatchEvent::Deleted(event.clone()),
                _ => WatchEvent::Modified(event.clone()),
            }),
        }
    }

    fn selected(&self, selector: &[(String, String)]) -> bool {
        match self {
            Object::Pod(pod) => selects(selector, pod),
            Object::Event(_) => true,
        }
    }
}

struct Watch {
    resource: Resource,
    namespace: Option<String>,
    selector: Vec<(String, String)>,
    sender: mpsc::UnboundedSender<web::Bytes>,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<String, Pod>,
    events: BTreeMap<String, Event>,
    resource_version: u64,
    /// Every change, with the resourceVersion it made: what a resumed watch replays.
    history: Vec<(u64, Object, &'static str)>,
    /// Watches from before this resourceVersion get 410 Gone (etcd compacted them away).
    compacted: u64,
    watches: Vec<Watch>,
    forbidden: bool,
    /// Resources answered 403 (`events`, `pods/log`).
    forbidden_resources: HashSet<String>,
    /// Pod lists and log fetches hang while true.
    hanging: bool,
    /// The bodies of hanging answers: kept so they stay open, with nothing more to send.
    stalled: Vec<mpsc::UnboundedSender<web::Bytes>>,
    /// What was asked of pods: (watch?, namespace, query).
    requests: Vec<(bool, Option<String>, HashMap<String, String>)>,
    /// The same for events.
    event_requests: Vec<(bool, Option<String>, HashMap<String, String>)>,
    /// Log fetches: (namespace/pod, query).
    log_requests: Vec<(String, HashMap<String, String>)>,
    /// Container logs by `namespace/pod/container`: (current, previous).
    logs: HashMap<String, (String, Option<String>)>,
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
        state
            .history
            .push((version, Object::Pod(pod.clone()), kind));
        broadcast(&mut state, &Object::Pod(pod), kind);
    }

    /// Create or change an Event (the kubelet bumps `count` and `lastTimestamp` of a repeated
    /// one): ADDED or MODIFIED to the Event watches of its namespace.
    pub fn event(&self, mut event: Event) {
        let mut state = lock(&self.state);
        state.resource_version += 1;
        let version = state.resource_version;
        event.metadata.resource_version = Some(version.to_string());
        let key = format!(
            "{}/{}",
            event.metadata.namespace.as_deref().unwrap_or("default"),
            event.metadata.name.as_deref().unwrap_or_default()
        );
        let kind = if state.events.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.events.insert(key, event.clone());
        let object = Object::Event(event);
        state.history.push((version, object.clone(), kind));
        broadcast(&mut state, &object, kind);
    }

    /// A container's log: what `kubectl logs` shows now, and with `--previous`.
    pub fn set_logs(&self, key: &str, current: &str, previous: Option<&str>) {
        lock(&self.state).logs.insert(
            key.to_string(),
            (current.to_string(), previous.map(str::to_string)),
        );
    }

    /// 403 Forbidden (RBAC) on one resource (`events`, `pods/log`) while true; its open
    /// watches end.
    pub fn forbid_only(&self, resource: &str, forbidden: bool) {
        let mut state = lock(&self.state);
        if forbidden {
            state.forbidden_resources.insert(resource.to_string());
            if resource == "events" {
                state
                    .watches
                    .retain(|watch| watch.resource != Resource::Events);
            }
        } else {
            state.forbidden_resources.remove(resource);
        }
    }

    /// While true, pod lists send their headers and the start of their body, then nothing;
    /// log fetches send nothing at all. False ends the hanging answers (cut short).
    pub fn hang(&self, hanging: bool) {
        let mut state = lock(&self.state);
        state.hanging = hanging;
        if !hanging {
            state.stalled.clear();
        }
    }

    /// Requests that are hanging now.
    pub fn stalled(&self) -> usize {
        let mut state = lock(&self.state);
        state.stalled.retain(|sender| !sender.is_closed());
        state.stalled.len()
    }

    pub fn event_watches(&self) -> usize {
        lock(&self.state)
            .event_requests
            .iter()
            .filter(|r| r.0)
            .count()
    }

    pub fn event_requests(&self) -> Vec<(bool, Option<String>, HashMap<String, String>)> {
        lock(&self.state).event_requests.clone()
    }

    /// Log fetches: (namespace/pod, query).
    pub fn log_requests(&self) -> Vec<(String, HashMap<String, String>)> {
        lock(&self.state).log_requests.clone()
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
        state
            .history
            .push((version, Object::Pod(pod.clone()), "DELETED"));
        broadcast(&mut state, &Object::Pod(pod), "DELETED");
    }

    /// A BOOKMARK with the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        let mut state = lock(&self.state);
        let version = state.resource_version;
        state.watches.retain(|watch| {
            let kind = match watch.resource {
                Resource::Pods => "Pod",
                Resource::Events => "Event",
            };
            watch.sender.send(bookmark_line(kind, version)).is_ok()
        });
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

    /// Open pod watches.
    pub fn open_watches(&self) -> usize {
        let mut state = lock(&self.state);
        state.watches.retain(|watch| !watch.sender.is_closed());
        state
            .watches
            .iter()
            .filter(|watch| watch.resource == Resource::Pods)
            .count()
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
        {
            let mut state = lock(&self.state);
            state.watches.clear();
            state.stalled.clear();
        }
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

fn event_line<T: serde::Serialize>(event: &WatchEvent<T>) -> web::Bytes {
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
fn bookmark_line(kind: &str, version: u64) -> web::Bytes {
    let mut line = serde_json::to_vec(&json!({
        "type": "BOOKMARK",
        "object": {"kind": kind, "apiVersion": "v1",
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
    event_line(&WatchEvent::<Pod>::ErrorStatus(status(
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

fn broadcast(state: &mut State, object: &Object, kind: &str) {
    let namespace = object.namespace();
    let line = object.line(kind);
    state.watches.retain(|watch| {
        if watch.resource != object.resource() {
            return true;
        }
        if watch.namespace.is_some() && watch.namespace != namespace {
            return true;
        }
        if !object.selected(&watch.selector) {
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

/// `(resource, namespace)` of a list or watch path.
fn collection(path: &str) -> Option<(Resource, Option<String>)> {
    match path {
        "/api/v1/pods" => return Some((Resource::Pods, None)),
        "/api/v1/events" => return Some((Resource::Events, None)),
        _ => {}
    }
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, resource) = rest.split_once('/')?;
    let resource = match resource {
        "pods" => Resource::Pods,
        "events" => Resource::Events,
        _ => return None,
    };
    Some((resource, Some(namespace.to_string())))
}

fn answer(state: &Arc<Mutex<State>>, request: &HttpRequest) -> HttpResponse {
    let path = request.path().to_string();
    if let Some((namespace, name)) = path
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|rest| rest.strip_suffix("/log"))
        .and_then(|rest| rest.split_once("/pods/"))
    {
        return pod_log(state, request, namespace, name);
    }
    let Some((resource, namespace)) = collection(&path) else {
        return json_response(
            404,
            &status(404, "NotFound", format!("the server could not find {path}")),
        );
    };
    let query = query(request);
    let watch = query.get("watch").map(String::as_str) == Some("true");
    let mut state = lock(state);
    match resource {
        Resource::Pods => state
            .requests
            .push((watch, namespace.clone(), query.clone())),
        Resource::Events => {
            state
                .event_requests
                .push((watch, namespace.clone(), query.clone()));
        }
    }
    let resource_name = match resource {
        Resource::Pods => "pods",
        Resource::Events => "events",
    };
    if let Some(authorization) = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
    {
        state.authorizations.push(authorization.to_string());
    }
    if state.forbidden || state.forbidden_resources.contains(resource_name) {
        return json_response(
            403,
            &status(
                403,
                "Forbidden",
                format!(
                    "{resource_name} is forbidden: User \"system:serviceaccount:obs:watcher\" \
                     cannot {} resource \"{resource_name}\" in API group \"\" {}",
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
    let in_scope = |object: &Object| {
        object.resource() == resource
            && (namespace.is_none() || object.namespace() == namespace)
            && object.selected(&selector)
    };
    let metadata = ListMeta {
        resource_version: Some(state.resource_version.to_string()),
        ..ListMeta::default()
    };
    if !watch && resource == Resource::Pods && state.hanging {
        // The headers and the start of the list, then silence: a server stuck mid-answer.
        let (sender, receiver) = mpsc::unbounded_channel();
        let _ = sender.send(web::Bytes::from(format!(
            r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"}},"items":["#,
            state.resource_version
        )));
        state.stalled.push(sender);
        return HttpResponse::Ok()
            .content_type("application/json")
            .streaming(lines(receiver, None));
    }
    if !watch {
        return match resource {
            Resource::Pods => json_response(
                200,
                &k8s_openapi::List::<Pod> {
                    items: state
                        .pods
                        .values()
                        .filter(|pod| in_scope(&Object::Pod((*pod).clone())))
                        .cloned()
                        .collect(),
                    metadata,
                },
            ),
            Resource::Events => json_response(
                200,
                &k8s_openapi::List::<Event> {
                    items: state
                        .events
                        .values()
                        .filter(|event| in_scope(&Object::Event((*event).clone())))
                        .cloned()
                        .collect(),
                    metadata,
                },
            ),
        };
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
            .filter(|(version, object, _)| *version > from && in_scope(object))
            .map(|(_, object, kind)| object.line(kind))
            .collect();
        for line in replay {
            let _ = sender.send(line);
        }
        state.watches.push(Watch {
            resource,
            namespace,
            selector,
            sender,
        });
    }
    // The server ends a watch after its timeoutSeconds, as the real one does.
    let deadline = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .map(|seconds| tokio::time::Instant::now() + std::time::Duration::from_secs(seconds));
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(lines(receiver, deadline))
}

/// A chunked body of what `receiver` gets, ending when its sender goes or at `deadline`.
fn lines(
    receiver: mpsc::UnboundedReceiver<web::Bytes>,
    deadline: Option<tokio::time::Instant>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    stream::unfold(receiver, move |mut receiver| async move {
        let line = match deadline {
            Some(deadline) => tokio::select! {
                line = receiver.recv() => line?,
                _ = tokio::time::sleep_until(deadline) => return None,
            },
            None => receiver.recv().await?,
        };
        Some((Ok::<_, actix_web::Error>(line), receiver))
    })
}

/// `GET …/pods/{name}/log`: the container's log, cut as asked (the last `tailLines` lines, at
/// most `limitBytes`), as text/plain.
fn pod_log(
    state: &Arc<Mutex<State>>,
    request: &HttpRequest,
    namespace: &str,
    name: &str,
) -> HttpResponse {
    let query = query(request);
    let mut state = lock(state);
    state
        .log_requests
        .push((format!("{namespace}/{name}"), query.clone()));
    if state.forbidden || state.forbidden_resources.contains("pods/log") {
        return forbidden("get", "pods/log");
    }
    if state.hanging {
        let (sender, receiver) = mpsc::unbounded_channel();
        state.stalled.push(sender);
        // Not even the headers: the answer itself hangs.
        return HttpResponse::Ok()
            .content_type("text/plain")
            .streaming(lines(receiver, None));
    }
    if !state.pods.contains_key(&format!("{namespace}/{name}")) {
        return json_response(
            404,
            &status(404, "NotFound", format!("pods \"{name}\" not found")),
        );
    }
    let container = query.get("container").cloned().unwrap_or_default();
    let previous = query.get("previous").map(String::as_str) == Some("true");
    let logs = state.logs.get(&format!("{namespace}/{name}/{container}"));
    let text = match (logs, previous) {
        (Some((current, _)), false) => current.clone(),
        (Some((_, Some(previous))), true) => previous.clone(),
        _ if previous => {
            return json_response(
                400,
                &status(
                    400,
                    "BadRequest",
                    format!(
                        "previous terminated container \"{container}\" in pod \"{name}\" not found"
                    ),
                ),
            )
        }
        _ => String::new(),
    };
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(tail) = query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        lines = lines.split_off(lines.len().saturating_sub(tail));
    }
    let mut body: String = lines.iter().map(|line| format!("{line}\n")).collect();
    if let Some(limit) = query
        .get("limitBytes")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut end = limit.min(body.len());
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    HttpResponse::Ok().content_type("text/plain").body(body)
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
    state
        .history
        .push((version, Object::Pod(pod.clone()), "DELETED"));
    broadcast(&mut state, &Object::Pod(pod.clone()), "DELETED");
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
