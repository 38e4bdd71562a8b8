//! `obsctl tui`: a live view of the watcher, refreshed every `--interval`.
//!
//! Two loops: an async one fetches a [`Snapshot`] (status, recent events, open issues) every
//! interval and sends it over a channel; a blocking one owns the terminal, draws the latest
//! state and reads keys. A watcher that goes away is shown as unreachable and retried every
//! interval; the last data stays on screen, marked stale.

mod state;
mod view;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::{mpsc, Notify};

pub use state::{Failure, Screen, Snapshot};
pub use view::draw;

use crate::cli::IssueFilter;
use crate::client::WatcherClient;

/// Events kept on screen: more than a tall terminal shows.
const EVENTS_SHOWN: u32 = 100;
/// How often the screen is redrawn without news, so ages (`3s ago`) keep counting.
const TICK: Duration = Duration::from_secs(1);

pub async fn run(watcher: WatcherClient, interval: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdout().is_terminal(),
        "the tui needs a terminal (stdout is not one); use status/events --json in scripts"
    );
    let (updates, received) = mpsc::unbounded_channel();
    let refresh_now = Arc::new(Notify::new());
    let screen = Screen::new(watcher.base_url().to_string(), interval);
    let fetcher = tokio::spawn(fetch_loop(
        watcher,
        interval,
        updates,
        Arc::clone(&refresh_now),
    ));
    let shown = tokio::task::spawn_blocking(move || show(screen, received, refresh_now)).await;
    fetcher.abort();
    shown.context("the terminal loop stopped unexpectedly")?
}

/// Fetch a snapshot now and then every `interval` (or at once when asked), until the screen
/// is gone.
async fn fetch_loop(
    watcher: WatcherClient,
    interval: Duration,
    updates: mpsc::UnboundedSender<Result<Snapshot, Failure>>,
    refresh_now: Arc<Notify>,
) {
    loop {
        let snapshot = tokio::try_join!(
            watcher.status(),
            watcher.events(EVENTS_SHOWN, None),
            watcher.issues(IssueFilter::Open),
        )
        .map(|(status, events, issues)| Snapshot {
            status,
            events,
            issues,
        })
        .map_err(|error| Failure::from(&error));
        if updates.send(snapshot).is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = refresh_now.notified() => {}
        }
    }
}

/// Own the terminal: set it up, draw until q/Esc/Ctrl-C, and put it back however we leave.
fn show(
    screen: Screen,
    received: mpsc::UnboundedReceiver<Result<Snapshot, Failure>>,
    refresh_now: Arc<Notify>,
) -> anyhow::Result<()> {
    // try_init also installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = draw_until_quit(&mut terminal, screen, received, &refresh_now);
    ratatui::try_restore().context("restoring the terminal")?;
    result
}

fn draw_until_quit(
    terminal: &mut ratatui::DefaultTerminal,
    mut screen: Screen,
    mut received: mpsc::UnboundedReceiver<Result<Snapshot, Failure>>,
    refresh_now: &Notify,
) -> anyhow::Result<()> {
    let mut drawn_at: Option<Instant> = None;
    loop {
        let mut changed = false;
        while let Ok(update) = received.try_recv() {
            screen.apply(update, chrono::Utc::now());
            changed = true;
        }
        if changed || drawn_at.is_none_or(|at| at.elapsed() >= TICK) {
            terminal
                .draw(|frame| draw(frame, &screen, chrono::Utc::now()))
                .context("drawing")?;
            drawn_at = Some(Instant::now());
        }
        if !event::poll(Duration::from_millis(100)).context("reading the keyboard")? {
            continue;
        }
        match event::read().context("reading the keyboard")? {
            TermEvent::Key(key) if key.kind == KeyEventKind::Press => match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Ok(())
                }
                KeyCode::Char('r') => refresh_now.notify_one(),
                _ => {}
            },
            TermEvent::Resize(..) => drawn_at = None,
            _ => {}
        }
    }
}
