//! The topology version `hello` reports (`topologyVersion: {processId, counter}`): a process id
//! chosen at start and a counter that grows whenever what `hello` answers changes. Drivers'
//! monitors send it back with `maxAwaitTimeMS` (an awaitable `hello`) and the server answers
//! when the counter moves past theirs or the time is up, instead of being polled. A standalone
//! changes only when it begins to shut down; a replica-set member also when its state or
//! configuration changes.

use std::time::Instant;

use bson::oid::ObjectId;
use bson::{Document, doc};
use tokio::sync::watch;

/// The process id, the counter, and the waiters on it.
#[derive(Debug)]
pub struct Topology {
    process_id: ObjectId,
    counter: watch::Sender<i64>,
    shutting_down: std::sync::atomic::AtomicBool,
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}

impl Topology {
    /// A new process's topology: a fresh process id, counter 0.
    pub fn new() -> Self {
        Self {
            process_id: ObjectId::new(),
            counter: watch::Sender::new(0),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This process's id.
    pub fn process_id(&self) -> ObjectId {
        self.process_id
    }

    /// The counter now.
    pub fn counter(&self) -> i64 {
        *self.counter.borrow()
    }

    /// `{processId, counter}` as `hello` reports it.
    pub fn version(&self) -> Document {
        doc! { "processId": self.process_id, "counter": self.counter() }
    }

    /// Records a change of what `hello` answers (a replica-set state or configuration change):
    /// waiting `hello`s answer now.
    pub fn advance(&self) {
        self.counter.send_modify(|counter| *counter += 1);
    }

    /// Marks the start of shutdown: the counter moves, so every awaitable `hello` answers now.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::Release);
        self.counter.send_modify(|counter| *counter += 1);
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the counter is past `counter` or `deadline` comes, whichever is first.
    pub async fn wait_for_change(&self, counter: i64, deadline: Instant) {
        let mut receiver = self.counter.subscribe();
        let changed = receiver.wait_for(|now| *now > counter);
        // The sender lives as long as the state, which outlives every request.
        let _ = tokio::time::timeout_at(deadline.into(), changed).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_or_at_a_change() {
        let topology = std::sync::Arc::new(Topology::new());
        let started = Instant::now();
        topology.wait_for_change(0, started + Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50), "no change: the deadline ends it");

        let waiter = {
            let topology = topology.clone();
            tokio::spawn(async move { topology.wait_for_change(0, Instant::now() + Duration::from_secs(60)).await })
        };
        topology.begin_shutdown();
        let woke = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(woke.is_ok(), "shutdown wakes a waiter long before its deadline");
        assert_eq!(topology.counter(), 1);
        assert!(topology.shutting_down());
        // A counter already past the one given answers at once.
        let at_once = Instant::now();
        topology.wait_for_change(0, at_once + Duration::from_secs(60)).await;
        assert!(at_once.elapsed() < Duration::from_secs(10));
    }
}
