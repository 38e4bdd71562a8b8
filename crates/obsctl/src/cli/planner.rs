//! The planner's and the synthesizer's commands: plans and the report.

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct PlansArgs {
    /// Which plans to list; a plan is open while its incident is active.
    #[arg(long, value_enum, default_value_t = PlanFilter::Open)]
    pub state: PlanFilter,
    /// Only this service's.
    #[arg(long)]
    pub service: Option<String>,
    /// Show every plan in full: its steps, each with its reason and outcome.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFilter {
    Open,
    Closed,
    All,
}

impl PlanFilter {
    /// The planner's `state=` value; None asks for every plan.
    pub fn query_value(self) -> Option<&'static str> {
        match self {
            PlanFilter::Open => Some("open"),
            PlanFilter::Closed => Some("closed"),
            PlanFilter::All => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for a terminal or a wiki.
    Md,
    Json,
    Html,
}

impl ReportFormat {
    pub fn query_value(self) -> &'static str {
        match self {
            ReportFormat::Md => "md",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }
}
