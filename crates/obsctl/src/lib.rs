//! obsctl: the obs-fleet command-line client and live terminal view (DESIGN §6).
//!
//! `cli` parses, `client` talks HTTP to the roles, `commands` runs each command, `render`
//! turns answers into text for people, `tui` is the live view. Exit codes: 0 done, 1 the
//! request failed (one line on stderr), 2 bad usage (clap's).

pub mod cli;
pub mod client;
pub mod commands;
pub mod output;
pub mod render;
pub mod tui;

#[cfg(test)]
mod test_fixtures;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, ReportFormat};
use client::{ApiClient, CuratorClient, PlannerClient, SynthesizerClient, WatcherClient};
use commands::Context;
use render::Painter;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.json && matches!(cli.command, Command::Tui { .. }) {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--json has no meaning for the tui; use status/events/issues --json",
            )
            .exit();
    }
    if let Command::Report {
        format: Some(format),
    } = cli.command
    {
        if cli.global.json && format != ReportFormat::Json {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--json asks for the JSON report; leave it out for --format md or html",
                )
                .exit();
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::note(&format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    let api = |role, url| ApiClient::new(role, url, global.token.clone(), global.timeout);
    let watcher = WatcherClient::new(api("watcher", global.watcher_url)?);
    let curator = CuratorClient::new(api("curator", global.curator_url)?);
    let planner = PlannerClient::new(api("planner", global.planner_url)?);
    let synthesizer = SynthesizerClient::new(api("synthesizer", global.synthesizer_url)?);
    // One worker is plenty for a client; the TUI draws from a blocking thread meanwhile.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let context = Context {
        watcher,
        curator,
        planner,
        synthesizer,
        json: global.json,
        painter: Painter::for_stdout(global.color),
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Status { verbose } => commands::status(&context, *verbose).await,
            Command::Events(args) => commands::events(&context, args).await,
            Command::Issues { state } => commands::issues(&context, *state).await,
            Command::Logs { container, lines } => commands::logs(&context, container, *lines).await,
            Command::Heartbeat(args) => commands::heartbeat(&context, args).await,
            Command::Event(args) => commands::event(&context, args).await,
            Command::Incidents(args) => commands::curator::incidents(&context, args).await,
            Command::Incident { id } => commands::curator::incident(&context, id).await,
            Command::Ack(args) => commands::curator::by_hand(&context, args, false).await,
            Command::Resolve(args) => commands::curator::by_hand(&context, args, true).await,
            Command::Silence(command) => commands::curator::silence(&context, command).await,
            Command::Plans(args) => commands::planner::plans(&context, args).await,
            Command::Plan { id } => commands::planner::plan(&context, id).await,
            Command::Report { format } => {
                let format = format.unwrap_or(if global.json {
                    ReportFormat::Json
                } else {
                    ReportFormat::Md
                });
                commands::planner::report(&context, format).await
            }
            Command::DeadLetters(command) => commands::dead_letters::run(&context, command).await,
            Command::Tui { interval } => tui::run(context.watcher.clone(), *interval).await,
        }
    })
}
