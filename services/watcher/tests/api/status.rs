//! `GET /status` in pages: bounded, trouble first, every service counted in every page, a
//! cursor that walks every service exactly once while new names keep arriving.

use std::collections::HashSet;

use serde_json::{json, Value};
use watcher::WatcherConfig;

use crate::helpers::{get, heartbeat, spawn};

const FLEET: usize = 2_500;
const FAILED: usize = 30;

fn names(page: &Value) -> Vec<String> {
    page["services"]
        .as_array()
        .expect("a list of services")
        .iter()
        .map(|service| service["service"].as_str().expect("a name").to_string())
        .collect()
}

async fn fleet(app: &obs_testkit::TestApp) {
    for n in 0..FLEET {
        heartbeat(app, json!({"service": format!("cam-{n:05}")})).await;
    }
    // Named to sort last by name, so only the order by state puts them first.
    for n in 0..FAILED {
        let (status, body) = get(app, &format!("/ping/zz-job-{n:03}/fail")).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[actix_web::test]
async fn pages_walk_every_service_once_trouble_first_while_names_arrive() {
    let app = spawn(WatcherConfig::for_tests()).await;
    fleet(&app).await;

    let (status, first) = get(&app, "/status").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["service_counts"],
        json!({"total": FLEET + FAILED, "up": FLEET, "down": FAILED, "failed": FAILED})
    );
    // The default page is the largest: a fleet of up to 1,000 is listed whole, as before.
    assert_eq!(names(&first).len(), 1000);
    assert!(first["services_next"].is_string());
    assert_eq!(names(&first)[0], "zz-job-000", "down first");

    // Walk it 97 at a time while another client adds 300 new names.
    let arriving = async {
        for n in 0..300 {
            heartbeat(&app, json!({"service": format!("new-{n:04}")})).await;
        }
    };
    let walking = async {
        let mut seen: Vec<String> = Vec::new();
        let mut states: Vec<String> = Vec::new();
        let mut path = "/status?limit=97".to_string();
        let mut pages = 0;
        loop {
            let (status, page) = get(&app, &path).await;
            assert_eq!(status, 200, "{page}");
            let listed = page["services"].as_array().unwrap();
            assert!(listed.len() <= 97);
            let counts = &page["service_counts"];
            assert_eq!(counts["down"], FAILED, "every page counts the whole fleet");
            assert_eq!(
                counts["total"].as_u64().unwrap(),
                counts["up"].as_u64().unwrap() + counts["down"].as_u64().unwrap()
            );
            seen.extend(names(&page));
            states.extend(
                listed
                    .iter()
                    .map(|s| s["status"].as_str().unwrap().to_string()),
            );
            pages += 1;
            assert!(pages < 100, "the walk ends");
            match page["services_next"].as_str() {
                Some(next) => path = format!("/status?limit=97&after={next}"),
                None => break,
            }
            // Let the new names in between pages.
            tokio::task::yield_now().await;
        }
        (seen, states)
    };
    let ((), (seen, states)) = tokio::join!(arriving, walking);

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no service listed twice");
    for n in 0..FLEET {
        assert!(unique.contains(&format!("cam-{n:05}")), "cam-{n:05} listed");
    }
    for n in 0..FAILED {
        assert!(unique.contains(&format!("zz-job-{n:03}")));
    }
    let first_up = states.iter().position(|s| s == "up").unwrap();
    assert_eq!(first_up, FAILED, "the down ones first");
    assert!(states[first_up..].iter().all(|s| s == "up"));
    let ups = &seen[first_up..];
    assert!(ups.windows(2).all(|pair| pair[0] < pair[1]), "then by name");

    let (_, last) = get(&app, "/status?limit=1").await;
    assert_eq!(last["service_counts"]["total"], FLEET + FAILED + 300);
}

#[actix_web::test]
async fn filters_by_state_and_name_prefix() {
    let app = spawn(WatcherConfig::for_tests()).await;
    fleet(&app).await;

    let (_, down) = get(&app, "/status?state=down&limit=1000").await;
    assert_eq!(names(&down).len(), FAILED);
    assert!(down["services_next"].is_null());
    assert!(down["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "down" && s["reason"] == "failed"));
    assert_eq!(
        down["service_counts"]["total"],
        FLEET + FAILED,
        "counts ignore the filters"
    );

    let (_, cams) = get(&app, "/status?prefix=cam-0012&state=up").await;
    let want: Vec<String> = (120..130).map(|n| format!("cam-{n:05}")).collect();
    assert_eq!(names(&cams), want);

    let (_, some) = get(&app, "/status?names=cam-00007,zz-job-001,nobody,cam-02499").await;
    assert_eq!(names(&some), ["zz-job-001", "cam-00007", "cam-02499"]);
    let too_many: Vec<String> = (0..1001).map(|n| format!("n{n}")).collect();
    let (status, body) = get(&app, &format!("/status?names={}", too_many.join(","))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("names"));

    let (_, none) = get(&app, "/status?prefix=nobody").await;
    assert!(names(&none).is_empty());
    assert!(none["services_next"].is_null());
}

#[actix_web::test]
async fn bad_page_parameters_are_a_400_naming_the_field() {
    let app = spawn(WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "api"})).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=many", "limit"),
        ("after=zz", "after"),
        ("after=7.6170", "after"),
        ("after=1.6", "after"),
        ("after=3.61", "after"),
        ("state=sideways", "state"),
        ("prefix=a%20b", "prefix"),
        ("prefix=a/b", "prefix"),
        ("names=api,a%20b", "names"),
    ];
    for (query, field) in cases {
        let (status, body) = get(&app, &format!("/status?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_field", "{query}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{query}: {message}");
    }
    let (status, body) = get(&app, "/status?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["api"]);
}
