//! The status page: one server-rendered HTML document with its CSS inline — no scripts,
//! fonts, images or stylesheets from anywhere else, so it works offline, behind any proxy
//! and in a screenshot. maud escapes every value it is given, so names and messages from
//! inputs can never become markup.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use obs_model::{Event, Severity};

use crate::render::{severity_label, step_status};
use crate::report::{ago, Health, IncidentReport, Overall, Report, ServiceReport};
use crate::uptime::Slot;

/// Seconds between the page's own refreshes (a meta refresh, not a script).
const REFRESH_SECONDS: u32 = 30;
/// Services drawn with an uptime bar (about 10 KB of SVG each), the first of the page: the
/// others show their uptime figure only, so a page of 1000 services stays under 1 MB.
pub const BARS_SHOWN: usize = 50;

const CSS: &str = r#"
:root{--bg:#f4f6f9;--card:#fff;--ink:#1c2430;--muted:#667085;--line:#e6e9ef;
--green:#16a34a;--green-bg:#e8f6ee;--amber:#d97706;--amber-bg:#fdf3e3;--red:#dc2626;--red-bg:#fdecec;
--blue:#2563eb;--blue-bg:#e9f0fe;--grey-bg:#eef0f4}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
.wrap{max-width:980px;margin:0 auto;padding:0 24px}
header.top{background:#111827;color:#f9fafb}
header.top .wrap{display:flex;justify-content:space-between;align-items:center;height:56px}
.brand{font-weight:650;font-size:17px;letter-spacing:.2px}
.brand span{color:#9ca3af;font-weight:400}
.updated{color:#9ca3af;font-size:13px}
main.wrap{padding-top:28px;padding-bottom:40px}
.banner{display:flex;align-items:center;gap:16px;border-radius:12px;padding:20px 24px;margin-bottom:20px;color:#fff}
.banner h1{margin:0;font-size:22px;font-weight:650}
.banner p{margin:2px 0 0;opacity:.9;font-size:14px}
.banner .icon{width:40px;height:40px;border-radius:50%;background:rgba(255,255,255,.22);
display:flex;align-items:center;justify-content:center;font-size:22px;font-weight:700;flex:none}
.banner-operational{background:linear-gradient(135deg,#16a34a,#15803d)}
.banner-degraded{background:linear-gradient(135deg,#f59e0b,#d97706)}
.banner-major_outage{background:linear-gradient(135deg,#ef4444,#b91c1c)}
.notice{background:var(--amber-bg);border:1px solid #f5d9a8;color:#7a4a05;border-radius:10px;padding:10px 14px;margin-bottom:16px;font-size:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;margin-bottom:20px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.card>h2{margin:0;padding:16px 22px;font-size:16px;font-weight:650;border-bottom:1px solid var(--line);display:flex;justify-content:space-between;align-items:baseline}
.card>h2 small{font-weight:400;color:var(--muted);font-size:13px}
.empty{padding:18px 22px;color:var(--muted)}
.summary,.more{padding:12px 22px;color:var(--muted);font-size:14px;border-bottom:1px solid var(--line)}
.more{border-bottom:0}
.svc{padding:14px 22px;border-bottom:1px solid var(--line)}
.svc:last-child{border-bottom:0}
.svc-head{display:flex;align-items:center;gap:10px;margin-bottom:8px}
.svc-name{font-weight:600}
.svc-detail{color:var(--muted);font-size:13px;flex:1;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.svc-pct{font-variant-numeric:tabular-nums;font-size:13px;color:var(--muted)}
.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:600;line-height:20px;white-space:nowrap}
.h-operational{background:var(--green-bg);color:var(--green)}
.h-degraded{background:var(--amber-bg);color:var(--amber)}
.h-down{background:var(--red-bg);color:var(--red)}
.h-unknown{background:var(--grey-bg);color:var(--muted)}
.bar{display:block;width:100%;height:30px}
.bar .up{fill:#22c55e}.bar .degraded{fill:#f59e0b}.bar .down{fill:#ef4444}.bar .none{fill:#e5e7eb}
.bar-axis{display:flex;justify-content:space-between;color:#98a2b3;font-size:11px;margin-top:3px}
.incident{padding:18px 22px;border-bottom:1px solid var(--line);border-left:4px solid var(--blue)}
.incident:last-child{border-bottom:0;border-bottom-left-radius:12px}
.incident.sev-critical{border-left-color:var(--red)}
.incident.sev-warning{border-left-color:var(--amber)}
.incident h3{margin:0 0 6px;font-size:16px;font-weight:650}
.meta{display:flex;flex-wrap:wrap;gap:8px;align-items:center;color:var(--muted);font-size:13px;margin-bottom:8px}
.s-critical{background:var(--red-bg);color:var(--red)}
.s-warning{background:var(--amber-bg);color:var(--amber)}
.s-info{background:var(--blue-bg);color:var(--blue)}
.prio{background:#111827;color:#fff}
.message{margin:0 0 10px}
.plan{background:#f8fafc;border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.plan-title{font-weight:600;font-size:14px;margin-bottom:6px}
.plan ol{margin:0;padding-left:22px}
.plan li{margin:6px 0}
.plan li .reason{display:block;color:var(--muted);font-size:13px}
.tag{display:inline-block;margin-left:6px;border-radius:6px;padding:0 6px;font-size:11px;font-weight:600;background:var(--grey-bg);color:var(--muted);vertical-align:1px}
.tag.succeeded{background:var(--green-bg);color:var(--green)}
.tag.failed{background:var(--red-bg);color:var(--red)}
.resolved{padding:10px 22px;border-bottom:1px solid var(--line);display:flex;gap:10px;align-items:center;font-size:14px}
.resolved:last-child{border-bottom:0}
.resolved .when{margin-left:auto;color:var(--muted);font-size:13px;white-space:nowrap}
table{width:100%;border-collapse:collapse;font-size:14px}
td{padding:8px 22px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
td.time{color:var(--muted);white-space:nowrap;font-variant-numeric:tabular-nums;width:1%}
td.svc-col{font-weight:600;white-space:nowrap;width:1%}
td.detail{color:var(--muted)}
td.type{width:1%;white-space:nowrap}
.legend{display:flex;gap:14px;font-weight:400;color:var(--muted);font-size:13px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.legend .up{background:#22c55e}.legend .degraded{background:#f59e0b}.legend .down{background:#ef4444}
.ev{display:inline-block;border-radius:6px;padding:0 8px;font-size:12px;font-weight:600;background:var(--grey-bg);color:#475467}
.ev-good{background:var(--green-bg);color:var(--green)}
.ev-bad{background:var(--red-bg);color:var(--red)}
.ev-warn{background:var(--amber-bg);color:var(--amber)}
.ev-info{background:#e6f7fa;color:#0e7490}
footer{color:var(--muted);font-size:13px;text-align:center;padding-bottom:32px}
footer a{color:var(--muted)}
"#;

pub fn render(report: &Report) -> String {
    page(report).into_string()
}

fn page(report: &Report) -> Markup {
    let now = report.generated_at;
    let unavailable: Vec<_> = report.sources.iter().filter(|s| !s.available).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                title { (report.title) " status — " (report.headline) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top { div.wrap {
                    div.brand { (report.title) " " span { "status" } }
                    div.updated { "Updated " (now.format("%Y-%m-%d %H:%M:%S UTC")) }
                } }
                main.wrap {
                    (banner(report))
                    @for source in &unavailable {
                        div.notice {
                            strong { (source.name) " unavailable" }
                            ": " (source.error.as_deref().unwrap_or("no answer"))
                            " — what it knows is missing below."
                        }
                    }
                    (services(report))
                    (incidents(report))
                    @if !report.resolved.is_empty() { (resolved(report)) }
                    (events(&report.events, now))
                }
                footer {
                    "Generated by the obs-fleet synthesizer · "
                    a href="/v1/report?format=json" { "JSON" } " · "
                    a href="/v1/report?format=md" { "Markdown" } " · "
                    a href="/docs" { "API" }
                }
            }
        }
    }
}

fn banner(report: &Report) -> Markup {
    let icon = match report.overall {
        Overall::Operational => "✓",
        Overall::Degraded => "!",
        Overall::MajorOutage => "✕",
    };
    let counts = &report.service_counts;
    let down = counts.down;
    let open = report.incidents_total;
    html! {
        section class=(format!("banner banner-{}", report.overall.as_str())) {
            div.icon { (icon) }
            div {
                h1 { (report.headline) }
                p {
                    (plural(counts.total, "service")) " · "
                    @if down > 0 { (down) " down · " }
                    @if counts.degraded > 0 { (counts.degraded) " degraded · " }
                    (plural(open, "open incident"))
                }
            }
        }
    }
}

fn services(report: &Report) -> Markup {
    let counts = &report.service_counts;
    let shown = report.services.len();
    html! {
        section.card {
            h2 {
                "Services"
                span.legend {
                    span { i.up {} "operational" }
                    span { i.degraded {} "degraded" }
                    span { i.down {} "down" }
                    span { "· last 24 hours" }
                }
            }
            @if counts.total == 0 {
                div.empty { "No services known yet." }
            } @else if shown < counts.total {
                div.summary {
                    (plural(counts.total, "service")) ": "
                    (counts.down) " down · " (counts.degraded) " degraded · "
                    (counts.unknown) " unknown · " (counts.operational) " operational. "
                    "Listing " (shown) ", what is wrong first."
                }
            }
            @for (index, service) in report.services.iter().enumerate() {
                (service_row(service, report, index < BARS_SHOWN))
            }
            @if let Some(next) = &report.services_next {
                div.more {
                    a href=(format!("/?after={next}&limit={shown}")) { "Next " (shown) " services →" }
                }
            }
        }
    }
}

fn service_row(service: &ServiceReport, report: &Report, with_bar: bool) -> Markup {
    let health = match service.health {
        Health::Operational => "Operational",
        Health::Degraded => "Degraded",
        Health::Down => "Down",
        Health::Unknown => "Unknown",
    };
    html! {
        div.svc {
            div.svc-head {
                span.svc-name { (service.name) }
                span class=(format!("pill h-{}", service.health.as_str())) { (health) }
                span.svc-detail {
                    @if let Some(detail) = &service.detail { (detail) }
                    @if service.open_incidents > 0 {
                        @if service.detail.is_some() { " · " }
                        (plural(service.open_incidents, "open incident"))
                    }
                }
                span.svc-pct {
                    @match &service.uptime {
                        Some(uptime) => { (format!("{:.2} % uptime", uptime.percent)) }
                        None => { "uptime unknown" }
                    }
                }
            }
            @if with_bar {
                (bar(service, report))
                div.bar-axis { span { "24 h ago" } span { "now" } }
            }
        }
    }
}

/// The uptime bar: one rect per slot, each with a tooltip of its time and state.
fn bar(service: &ServiceReport, report: &Report) -> Markup {
    const STEP: usize = 10;
    const WIDTH: usize = 8;
    let slots: Vec<Option<Slot>> = match &service.uptime {
        Some(uptime) => uptime.slots.iter().copied().map(Some).collect(),
        None => vec![None; crate::uptime::SLOTS],
    };
    let slot_length = chrono::Duration::seconds(report.window.slot_seconds as i64);
    let view = format!("0 0 {} 30", slots.len() * STEP - (STEP - WIDTH));
    html! {
        svg.bar viewBox=(view) preserveAspectRatio="none" role="img"
            aria-label=(format!("{} uptime, last 24 hours", service.name)) {
            @for (index, slot) in slots.iter().enumerate() {
                @let from = report.window.start + slot_length * index as i32;
                rect x=(index * STEP) y="0" width=(WIDTH) height="30" rx="2"
                    class=(slot.map(Slot::as_str).unwrap_or("none")) {
                    title {
                        (from.format("%H:%M")) "–" ((from + slot_length).format("%H:%M")) " UTC: "
                        (slot.map(Slot::as_str).unwrap_or("no data"))
                    }
                }
            }
        }
    }
}

fn incidents(report: &Report) -> Markup {
    let now = report.generated_at;
    html! {
        section.card {
            h2 { "Open incidents" small { "most urgent first" } }
            @if report.incidents.is_empty() {
                div.empty { "No open incidents." }
            }
            @for incident in &report.incidents { (incident_card(incident, now)) }
            @if report.incidents_total > report.incidents.len() {
                div.more {
                    "Showing the " (report.incidents.len()) " most urgent of "
                    (report.incidents_total) " · "
                    a href="/v1/plans?state=open" { "all open plans (JSON)" }
                }
            }
        }
    }
}

fn severity_class(severity: Severity) -> &'static str {
    severity.as_str()
}

fn incident_card(incident: &IncidentReport, now: DateTime<Utc>) -> Markup {
    let plan = &incident.plan;
    html! {
        article class=(format!("incident sev-{}", severity_class(incident.severity))) {
            h3 { (incident.title) }
            div.meta {
                span class=(format!("pill s-{}", severity_class(incident.severity))) {
                    (severity_label(incident.severity))
                }
                span.pill.prio { (plan.priority.as_str()) }
                span { (incident.service) }
                span { "·" }
                span title=(incident.first_seen.to_rfc3339()) { "open for " (ago(incident.first_seen, now)) }
                @if let Some(by) = &incident.acknowledged_by {
                    span { "·" } span { "acknowledged by " (by) }
                }
                @if incident.count > 1 {
                    span { "·" } span { "seen " (incident.count) " times" }
                }
            }
            @if !incident.message.is_empty() { p.message { (incident.message) } }
            div.plan {
                div.plan-title { "Plan: " (plan.summary) }
                ol {
                    @for step in &plan.steps {
                        li {
                            (step.title)
                            @if step.safe { span.tag { "automatic" } }
                            @if let Some(outcome) = &step.outcome {
                                span class=(format!("tag {}", step_status(outcome.status))) {
                                    (step_status(outcome.status))
                                }
                            }
                            span.reason { (step.reason) }
                        }
                    }
                }
            }
        }
    }
}

fn resolved(report: &Report) -> Markup {
    let now = report.generated_at;
    html! {
        section.card {
            h2 { "Resolved lately" small { "last 24 hours" } }
            @for incident in &report.resolved {
                div.resolved {
                    span.pill.h-operational { "Resolved" }
                    span { strong { (incident.service) } " — " (incident.title) }
                    span.when {
                        @if let Some(at) = incident.resolved_at { (ago(at, now)) " ago" }
                    }
                }
            }
        }
    }
}

/// Colour by what an event means: green start, red die/OOM, yellow stop, cyan restart.
fn event_class(event_type: &str) -> &'static str {
    match event_type {
        "start" | "success" | "recovered" | "up" | "healthy" => "ev ev-good",
        "die" | "oom" | "down" | "failure" | "fail" | "failed" | "crash" | "error"
        | "unhealthy" | "probe_failed" => "ev ev-bad",
        "stop" | "kill" | "pause" | "timeout" => "ev ev-warn",
        "restart" | "deploy" | "health_status" => "ev ev-info",
        _ => "ev",
    }
}

fn events(events: &[Event], now: DateTime<Utc>) -> Markup {
    html! {
        section.card {
            h2 { "Recent events" small { "newest first" } }
            @if events.is_empty() {
                div.empty { "No events." }
            } @else {
                table { tbody {
                    @for event in events {
                        tr {
                            td.time title=(event.timestamp.to_rfc3339()) {
                                (event.timestamp.format("%H:%M:%S")) " · " (ago(event.timestamp, now)) " ago"
                            }
                            td.svc-col { (event.service) }
                            td.type { span class=(event_class(&event.event_type)) { (event.event_type) } }
                            td.detail {
                                @if let Some(container) = &event.container { (container) " " }
                                @if let Some(detail) = &event.detail { (detail) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
