//! Rules: which incidents they match, the priority they give, and the steps they write.
//!
//! The built-in rules (`rules/builtin.yaml`, compiled in) cover every kind the watcher and
//! the curator produce. RULES_FILE, in the same format, replaces a built-in rule by using its
//! name and adds rules under new names. Everything is checked at start: a file that does not
//! parse, an unknown kind or placeholder, a duplicate name, or a `safe` step that is not a
//! container or pod restart is a configuration error naming the file and the field.
//!
//! Of the rules that match an incident, the most specific wins (each `service`, `severity`,
//! label and fact condition counts one); on a tie a RULES_FILE rule beats a built-in one, then
//! a rule written for the incident's platform (a `platform` fact condition) beats one that is
//! not — so a Kubernetes crash with exit code 137 never gets the Docker-worded SIGKILL plan
//! because the two rules are equally specific — and then an earlier rule a later one.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use obs_core::ConfigError;
use obs_model::{Incident, IssueKind, Priority, Severity};
use serde::{Deserialize, Serialize};

use crate::render::{self, Values};

/// The built-in rules, in the RULES_FILE format.
pub const BUILTIN: &str = include_str!("../rules/builtin.yaml");

use crate::target::Target;
pub use crate::target::{RESTART_CONTAINER, RESTART_POD, SAFE_ACTIONS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleSpec>,
}

/// One rule as written in YAML (and shown by `GET /v1/rules`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: Match,
    /// The plan's priority for a critical incident; warning lowers it by one, info by two.
    pub priority: Priority,
    /// One line: what the plan is about (a template).
    pub summary: String,
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub kind: IssueKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Alert labels that must be equal (`alertname: HighErrorRate`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Scalar>,
    /// Facts that must be equal, compared as text (`exit_code: 139`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, Scalar>,
}

/// A YAML scalar compared as text, so `exit_code: 139` and `exit_code: "139"` mean the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Flag(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Integer(number) => number.to_string(),
            Scalar::Float(number) => {
                render::fact_text(&serde_json::Value::from(*number)).unwrap_or_default()
            }
            Scalar::Flag(flag) => flag.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// A short machine name: `restart_container`, `inspect_logs`, …
    pub action: String,
    pub title: String,
    pub reason: String,
    /// May run by itself when AUTO_REMEDIATE=1; only `restart_container` (target: the
    /// container) or `restart_pod` (target: `namespace/pod`) with a `target`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub safe: bool,
    /// What the step acts on (a template: `{container}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Placeholders that must have a value for the step to be in the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    /// Placeholders that must have no value for the step to be in the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<String>,
}

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Builtin,
    RulesFile,
}

/// A checked rule, its templates parsed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub source: Source,
    /// A RULES_FILE rule that took a built-in rule's place.
    pub replaces_builtin: bool,
    summary: Template,
    steps: Vec<CompiledStep>,
}

#[derive(Debug, Clone)]
struct CompiledStep {
    title: Template,
    reason: Template,
    target: Option<Template>,
}

/// A rule's plan for one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub rule: String,
    pub priority: Priority,
    pub summary: String,
    pub steps: Vec<obs_model::PlanStep>,
}

/// The effective rules: built-ins merged with RULES_FILE.
#[derive(Debug, Clone)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub file: Option<PathBuf>,
}

impl Rules {
    /// The built-in rules only.
    pub fn builtin() -> Result<Rules, ConfigError> {
        Self::load(None)
    }

    /// The built-in rules, with `file`'s rules replacing and extending them.
    pub fn load(file: Option<&Path>) -> Result<Rules, ConfigError> {
        let mut rules = parse(BUILTIN, Source::Builtin)
            .map_err(|why| ConfigError::new(format!("built-in rules: {why}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|error| {
                ConfigError::new(format!(
                    "RULES_FILE: cannot read {}: {error}",
                    path.display()
                ))
            })?;
            let own = parse(&text, Source::RulesFile)
                .map_err(|why| ConfigError::new(format!("RULES_FILE {}: {why}", path.display())))?;
            for mut rule in own {
                match rules.iter_mut().find(|r| r.spec.name == rule.spec.name) {
                    Some(builtin) => {
                        rule.replaces_builtin = true;
                        *builtin = rule;
                    }
                    None => rules.push(rule),
                }
            }
        }
        Ok(Rules {
            rules,
            file: file.map(Path::to_path_buf),
        })
    }

    /// The rule for `incident`: the most specific that matches (see the module docs).
    pub fn select(&self, values: &Values, incident: &Incident) -> Option<&Rule> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.matches(values, incident))
            .max_by_key(|(index, rule)| {
                (
                    rule.specificity(),
                    rule.source == Source::RulesFile,
                    rule.spec.matches.facts.contains_key("platform"),
                    std::cmp::Reverse(*index),
                )
            })
            .map(|(_, rule)| rule)
    }

    /// The plan's rule, priority, summary and steps for `incident`, as of `now`.
    pub fn render(&self, incident: &Incident, now: chrono::DateTime<chrono::Utc>) -> Rendered {
        let values = Values::new(incident, now);
        match self.select(&values, incident) {
            Some(rule) => rule.render(&values, incident.severity),
            None => fallback(&values, incident.severity),
        }
    }
}

impl Rule {
    fn matches(&self, values: &Values, incident: &Incident) -> bool {
        let when = &self.spec.matches;
        when.kind == incident.kind
            && when
                .service
                .as_ref()
                .is_none_or(|service| *service == incident.service)
            && when
                .severity
                .is_none_or(|severity| severity == incident.severity)
            && when.labels.iter().all(|(name, value)| {
                incident.labels.get(name).map(String::as_str) == Some(value.text().as_str())
            })
            && when
                .facts
                .iter()
                .all(|(name, value)| values.raw_fact(name) == Some(value.text()))
    }

    fn specificity(&self) -> usize {
        let when = &self.spec.matches;
        usize::from(when.service.is_some())
            + usize::from(when.severity.is_some())
            + when.labels.len()
            + when.facts.len()
    }

    fn render(&self, values: &Values, severity: Severity) -> Rendered {
        let has = |name: &String| values.get(name).is_some();
        let steps = self
            .spec
            .steps
            .iter()
            .zip(&self.steps)
            .filter(|(spec, _)| spec.when.iter().all(has) && !spec.unless.iter().any(has))
            .map(|(spec, compiled)| {
                let target = compiled
                    .target
                    .as_ref()
                    .and_then(|template| template.render_complete(values));
                // Safe only if it can really run: a target, and for a pod an owner that
                // recreates it.
                let safe = spec.safe
                    && target.as_deref().is_some_and(|target| {
                        Target::of(&spec.action, target, values.incident()).is_some()
                    });
                obs_model::PlanStep {
                    action: spec.action.clone(),
                    title: compiled.title.render(values),
                    reason: compiled.reason.render(values),
                    safe,
                    target,
                    outcome: None,
                }
            })
            .collect();
        Rendered {
            rule: self.spec.name.clone(),
            priority: lowered(self.spec.priority, severity),
            summary: self.summary.render(values),
            steps,
        }
    }
}

/// When nothing matches (a RULES_FILE narrowed a kind's only rule): the incident's own words.
fn fallback(values: &Values, severity: Severity) -> Rendered {
    let text = |name: &str| values.get(name).unwrap_or_else(|| render::UNKNOWN.into());
    Rendered {
        rule: "fallback".into(),
        priority: lowered(Priority::P2, severity),
        summary: text("title"),
        steps: vec![obs_model::PlanStep {
            action: "follow_recommendation".into(),
            title: text("recommendation"),
            reason: format!(
                "No rule matches this {} incident; this is the source's own advice",
                text("kind")
            ),
            safe: false,
            target: None,
            outcome: None,
        }],
    }
}

/// A rule's priority is for critical incidents; lesser severities are less urgent.
fn lowered(priority: Priority, severity: Severity) -> Priority {
    let steps_down = match severity {
        Severity::Critical => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    };
    let all = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];
    let index = all.iter().position(|p| *p == priority).unwrap_or(0);
    all[(index + steps_down).min(all.len() - 1)]
}

/// Parse and check a rules document; the error names the field (`rules[2].steps[0].title`).
fn parse(text: &str, source: Source) -> Result<Vec<Rule>, String> {
    if text.trim().is_empty() {
        return Err("is empty; it needs a `rules:` list".into());
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    let file: RulesFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let why = one_line(&error.into_inner().to_string());
        if path == "." {
            return why;
        }
        // serde_norway names the path itself in some messages; say it once.
        let why = why.strip_prefix(&format!("{path}: ")).unwrap_or(&why);
        format!("{path}: {why}")
    })?;
    let mut names = HashSet::new();
    file.rules
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            if !names.insert(spec.name.clone()) {
                return Err(format!(
                    "rules[{index}].name: '{}' is used by an earlier rule too",
                    spec.name
                ));
            }
            compile(spec, source).map_err(|(field, why)| format!("rules[{index}].{field}: {why}"))
        })
        .collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn compile(spec: RuleSpec, source: Source) -> Result<Rule, (String, String)> {
    let field = |name: &str, why: String| (name.to_string(), why);
    machine_name(&spec.name).map_err(|why| field("name", why))?;
    if let Some(service) = &spec.matches.service {
        if service.is_empty() {
            return Err(field("match.service", "must not be empty".into()));
        }
    }
    if spec.steps.is_empty() {
        return Err(field("steps", "needs at least one step".into()));
    }
    let summary = Template::parse(&spec.summary).map_err(|why| field("summary", why))?;
    let mut steps = Vec::with_capacity(spec.steps.len());
    for (index, step) in spec.steps.iter().enumerate() {
        let at = |name: &str, why: String| (format!("steps[{index}].{name}"), why);
        machine_name(&step.action).map_err(|why| at("action", why))?;
        if step.safe && (!SAFE_ACTIONS.contains(&step.action.as_str()) || step.target.is_none()) {
            return Err(at(
                "safe",
                format!(
                    "only a {RESTART_CONTAINER} or {RESTART_POD} step with a target may be safe"
                ),
            ));
        }
        for (list, names) in [("when", &step.when), ("unless", &step.unless)] {
            if let Some(unknown) = names.iter().find(|name| !render::is_known(name)) {
                return Err(at(list, unknown_placeholder(unknown)));
            }
        }
        steps.push(CompiledStep {
            title: Template::parse(&step.title).map_err(|why| at("title", why))?,
            reason: Template::parse(&step.reason).map_err(|why| at("reason", why))?,
            target: step
                .target
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|why| at("target", why))?,
        });
    }
    Ok(Rule {
        spec,
        source,
        replaces_builtin: false,
        summary,
        steps,
    })
}

/// Rule names and actions: `[a-z0-9_-]`, 1 to 64 characters.
fn machine_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a name (1 to 64 of a-z, 0-9, _ and -)"
        ))
    }
}

fn unknown_placeholder(name: &str) -> String {
    format!(
        "unknown placeholder {{{name}}}; known: {}, and fact.<name>, label.<name>, annotation.<name>",
        render::PLACEHOLDERS.join(", ")
    )
}

/// Text with `{placeholder}`s; `{{` and `}}` are literal braces.
#[derive(Debug, Clone)]
struct Template(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Placeholder(String),
}

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err("a lone '}' (write '}}' for a brace)".into());
            }
            let Some(close) = tail.find('}') else {
                return Err("a '{' without its '}' (write '{{' for a brace)".into());
            };
            let name = &tail[1..close];
            if !render::is_known(name) {
                return Err(unknown_placeholder(name));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Placeholder(name.to_string()));
            rest = &tail[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    fn render(&self, values: &Values) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Placeholder(name) => {
                    values.get(name).unwrap_or_else(|| render::UNKNOWN.into())
                }
            })
            .collect()
    }

    /// Rendered only if every placeholder has a value.
    fn render_complete(&self, values: &Values) -> Option<String> {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => Some(text.clone()),
                Piece::Placeholder(name) => values.get(name),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
