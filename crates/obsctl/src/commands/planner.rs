//! The planner's and the synthesizer's commands: plans and the report.

use chrono::Utc;

use super::Context;
use crate::cli::{PlanFilter, PlansArgs, ReportFormat};
use crate::output;
use crate::render::plans as render;

pub async fn plans(context: &Context, args: &PlansArgs) -> anyhow::Result<()> {
    let plans = context
        .planner
        .plans(args.state, args.service.as_deref())
        .await?;
    if context.json {
        return output::json(&plans);
    }
    if plans.is_empty() {
        let which = match args.state {
            PlanFilter::Open => "open ",
            PlanFilter::Closed => "closed ",
            PlanFilter::All => "",
        };
        return output::text(&format!("no {which}plans\n"));
    }
    let now = Utc::now();
    output::text(&if args.verbose {
        render::plans_verbose(&plans, &context.painter, now)
    } else {
        render::plans(&plans, &context.painter, now)
    })
}

/// The planner takes a plan's own id or its incident's; a prefix is looked up among both.
pub async fn plan(context: &Context, typed: &str) -> anyhow::Result<()> {
    let id = if super::ids::is_partial(typed) {
        let known = context.planner.plans(PlanFilter::All, None).await?;
        super::ids::complete(
            typed,
            "plan",
            known.iter().flat_map(|plan| [plan.id, plan.incident_id]),
        )?
    } else {
        typed.to_string()
    };
    let plan = context.planner.plan(&id).await?;
    if context.json {
        return output::json(&plan);
    }
    output::text(&render::plan(&plan, &context.painter, Utc::now()))
}

/// The report as the synthesizer writes it; `format` was settled with `--json` already.
pub async fn report(context: &Context, format: ReportFormat) -> anyhow::Result<()> {
    let mut report = context.synthesizer.report(format).await?;
    if !report.ends_with('\n') {
        report.push('\n');
    }
    output::text(&report)
}
