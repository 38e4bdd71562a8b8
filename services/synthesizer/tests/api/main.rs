//! The synthesizer over real HTTP: a real server on a loopback port per test, a real
//! watcher and a real archivist for the facts, real webhook receivers for notifications,
//! and headless Chromium for the status page.

mod bad_input;
mod digest;
mod fleet;
mod helpers;
mod notify;
mod page;
mod plans;
mod report;
mod routing;
mod storage;
