//! `/debug/tasks` on the admin port: what the server is doing now, for an operator looking at
//! a stuck or slow server without a debugger: the async runtime's figures, the blocking pool's
//! (where command handlers and storage calls run), and every operation in flight with its
//! correlation IDs and where its time went so far.

use serde_json::{Value, json};

use crate::op::Operation;
use crate::state::State;

/// The `/debug/tasks` answer.
pub fn tasks(state: &State) -> Value {
    let runtime = tokio::runtime::Handle::try_current().map(|handle| handle.metrics()).ok();
    let pool = state.pool.stats();
    let mut operations: Vec<Value> = state.ops.all().iter().map(|op| operation(op)).collect();
    // The longest-running first: the one to look at.
    operations.sort_by_key(|op| std::cmp::Reverse(op["runningMicros"].as_u64().unwrap_or(0)));
    json!({
        "runtime": runtime.map(|metrics| json!({
            "workers": metrics.num_workers(),
            "aliveTasks": metrics.num_alive_tasks(),
            "globalQueueDepth": metrics.global_queue_depth(),
        })),
        "blockingPool": {
            "workers": pool.workers,
            "busy": pool.busy,
            "queued": pool.queued,
            "queueCapacity": pool.capacity,
            "waitingForASlot": pool.waiting,
            "jobs": pool.jobs,
        },
        "operations": operations,
    })
}

/// One operation in flight.
fn operation(op: &Operation) -> Value {
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let phases = op.phases();
    json!({
        "opid": op.op_id,
        "connectionId": op.connection_id,
        "client": op.client.to_string(),
        "appName": op.app_name,
        "traceId": op.trace.as_ref().map(|t| t.trace_id.as_str()),
        "op": op.kind.name(),
        "ns": op.ns,
        "runningMicros": micros(op.started.elapsed()),
        "killPending": op.interrupt.is_killed(),
        // Where its time went so far: a phase still under way is not counted yet.
        "phasesMicros": {
            "parse": micros(phases.parse),
            "plan": micros(phases.plan),
            "execute": micros(phases.execute),
            "storage": micros(phases.storage),
            "journal": micros(phases.journal),
        },
    })
}
