//! Issue 12's performance goals, judged on the figures of one run: each goal's measured ratio,
//! its target, and the guard's threshold (half the target) that the CI smoke fails below.
//! (The goal on resident memory is `benches/memory.py`'s: it needs a server of its own,
//! loaded with 1 GB.)

use serde_json::{Value, json};

use crate::BenchResult;
use crate::report::{Report, round_ratio, thousands, workload_unit};
use crate::run::Figures;
use crate::workload::Workload;

/// The workloads `goals` runs: exactly those the goals below judge.
pub(crate) const WORKLOADS: [Workload; 5] =
    [Workload::YcsbC, Workload::YcsbA, Workload::Insert, Workload::InsertJ, Workload::InsertMany];

/// The guard fails a ratio below this share of its target.
const GUARD_SHARE: f64 = 0.5;

/// One goal of the issue.
struct Goal {
    /// A stable key for the JSON report.
    key: &'static str,
    workload: Workload,
    /// What is measured, for the table.
    what: &'static str,
    target: Target,
}

/// What a goal compares, and with which bound.
#[derive(Clone, Copy)]
enum Target {
    /// Operations/s over the echo floor's pings/s at the same client count, at least this.
    EchoAtLeast(f64),
    /// The workload's rate over its engine floor's rate, at least this.
    FloorAtLeast(f64),
}

impl Target {
    fn bound(self) -> f64 {
        match self {
            Target::EchoAtLeast(bound) | Target::FloorAtLeast(bound) => bound,
        }
    }

    /// The value the guard fails below: half the target.
    fn guard(self) -> f64 {
        self.bound() * GUARD_SHARE
    }
}

/// The goals, as the issue states them (8 clients unless said).
const GOALS: [Goal; 5] = [
    Goal {
        key: "point_reads",
        workload: Workload::YcsbC,
        what: "point reads (ycsb-c) / echo",
        target: Target::EchoAtLeast(0.6),
    },
    Goal {
        key: "read_update_50_50",
        workload: Workload::YcsbA,
        what: "50/50 read/update (ycsb-a) / echo",
        target: Target::EchoAtLeast(0.5),
    },
    Goal {
        key: "single_inserts",
        workload: Workload::Insert,
        what: "single inserts (insert) / echo",
        target: Target::EchoAtLeast(0.5),
    },
    Goal {
        key: "journaled_inserts",
        workload: Workload::InsertJ,
        what: "j:true inserts (insert-j) / echo",
        target: Target::EchoAtLeast(0.5),
    },
    Goal {
        key: "insert_many_1k",
        workload: Workload::InsertMany,
        what: "insertMany (insert-many) / fjall batch",
        target: Target::FloorAtLeast(0.5),
    },
];

/// How a goal fared in this run.
pub(crate) enum Status {
    /// At or past its target.
    Met,
    /// Short of its target, but not past the guard's threshold.
    Short,
    /// Past the guard's threshold: the guard fails the run.
    Regressed,
    /// Asked for but not measured (the server died): the guard fails the run.
    NotMeasured(String),
}

/// One goal's outcome in this run.
pub(crate) struct Verdict {
    goal: &'static Goal,
    value: Option<f64>,
    status: Status,
    /// The figures the value comes from, and the rate quoted beside it.
    detail: String,
}

/// Judges every goal whose workload was selected for this run.
pub(crate) fn evaluate(report: &Report<'_>, selected: &[Workload]) -> Vec<Verdict> {
    GOALS.iter().filter(|goal| selected.contains(&goal.workload)).map(|goal| judge(report, goal)).collect()
}

fn judge(report: &Report<'_>, goal: &'static Goal) -> Verdict {
    let outcome = report.results.iter().find(|o| o.workload == goal.workload);
    let Some(outcome) = outcome else {
        return not_measured(goal, "its workload did not run");
    };
    let (measured, echo) = match &outcome.figures {
        Figures::Skipped(reason) => return not_measured(goal, reason),
        Figures::Rate { measured, echo, .. } => (measured, echo),
    };
    let clients = goal.workload.clients(report.config);
    let value = match goal.target {
        Target::EchoAtLeast(_) => outcome.ratio_to_echo(),
        Target::FloorAtLeast(_) => report.floor_ratio(outcome).map(|(_, _, ratio)| ratio),
    };
    let Some(value) = value else {
        return not_measured(goal, "its floor was not measured in this run");
    };
    let unit = workload_unit(goal.workload);
    let mut detail = format!(
        "{} {unit} vs {} echo pings/s, {clients} clients",
        thousands(measured.item_rate()),
        thousands(echo.ops_per_sec)
    );
    if let (Target::EchoAtLeast(_), Some(spread)) = (goal.target, outcome.echo_spread()) {
        let rounds: Vec<String> = outcome.round_ratios().iter().map(|r| format!("{r:.3}")).collect();
        detail.push_str(&format!("; rounds {} (spread {:.0}%)", rounds.join(" "), spread * 100.0));
    }
    if let Some((floor, rate, ratio)) = report.floor_ratio(outcome) {
        detail.push_str(&format!("; {floor} {} {unit} ({ratio:.3} of it)", thousands(rate)));
    }
    if goal.workload == Workload::InsertMany {
        detail.push_str(&format!("; documents of {} bytes", report.config.many_shape.doc_size));
    }
    if measured.errors > 0 {
        detail.push_str(&format!("; {} errors", measured.errors));
    }
    verdict(goal, value, detail)
}

fn verdict(goal: &'static Goal, value: f64, detail: String) -> Verdict {
    let status = if value >= goal.target.bound() {
        Status::Met
    } else if value >= goal.target.guard() {
        Status::Short
    } else {
        Status::Regressed
    };
    Verdict { goal, value: Some(value), status, detail }
}

fn not_measured(goal: &'static Goal, reason: &str) -> Verdict {
    Verdict { goal, value: None, status: Status::NotMeasured(reason.to_owned()), detail: String::new() }
}

impl Status {
    fn key(&self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Short => "short",
            Status::Regressed => "regressed",
            Status::NotMeasured(_) => "not_measured",
        }
    }

    fn describe(&self) -> String {
        match self {
            Status::Met => "met".to_owned(),
            Status::Short => "short of goal".to_owned(),
            Status::Regressed => "REGRESSED: past half its goal".to_owned(),
            Status::NotMeasured(reason) => format!("NOT MEASURED: {reason}"),
        }
    }

    /// Whether the guard fails the run on it.
    fn fails_guard(&self) -> bool {
        matches!(self, Status::Regressed | Status::NotMeasured(_))
    }
}

/// Prints the goals table (nothing when no goal's workload ran).
pub(crate) fn print_table(verdicts: &[Verdict], guarded: bool) {
    if verdicts.is_empty() {
        return;
    }
    println!();
    println!("Goals of issue 12 (ratios to floors measured in this run)");
    println!("  {:<40} {:>9} {:>10} {:>10}  status", "goal", "measured", "goal", "guard");
    for verdict in verdicts {
        let target = verdict.goal.target;
        let value = verdict.value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        println!(
            "  {:<40} {value:>9} {:>10} {:>10}  {}",
            verdict.goal.what,
            format!("≥ {:.2}", target.bound()),
            format!("≥ {:.2}", target.guard()),
            verdict.status.describe()
        );
        if !verdict.detail.is_empty() {
            println!("  {:<40} {}", "", verdict.detail);
        }
    }
    let met = verdicts.iter().filter(|v| matches!(v.status, Status::Met)).count();
    let failing = verdicts.iter().filter(|v| v.status.fails_guard()).count();
    println!(
        "  {met} of {} goals met; guard (fails below half a goal, or when one is not measured): {}{}",
        verdicts.len(),
        if failing == 0 { "pass" } else { "FAIL" },
        if guarded { "" } else { " (not enforced without --guard)" }
    );
}

pub(crate) fn to_json(verdicts: &[Verdict]) -> Value {
    let goals: Vec<Value> = verdicts
        .iter()
        .map(|verdict| {
            let target = verdict.goal.target;
            json!({
                "goal": verdict.goal.key,
                "workload": verdict.goal.workload.name(),
                "what": verdict.goal.what,
                "measured": verdict.value.map(round_ratio),
                "target": target.bound(),
                "guard_threshold": target.guard(),
                "status": verdict.status.key(),
                "reason": match &verdict.status {
                    Status::NotMeasured(reason) => Some(reason),
                    _ => None,
                },
                "detail": verdict.detail,
            })
        })
        .collect();
    json!(goals)
}

/// Fails when a goal fell past its guard threshold or could not be measured.
pub(crate) fn guard(verdicts: &[Verdict]) -> BenchResult<()> {
    let failing: Vec<String> = verdicts
        .iter()
        .filter(|v| v.status.fails_guard())
        .map(|v| {
            let value = v.value.map_or_else(|| "not measured".to_owned(), |value| format!("{value:.3}"));
            format!("{}: {value} (guard ≥ {:.2})", v.goal.what, v.goal.target.guard())
        })
        .collect();
    if failing.is_empty() {
        println!("guard: every goal measured is at least half of its target");
        Ok(())
    } else {
        Err(format!("guard: past half of its goal: {}", failing.join("; ")).into())
    }
}
