//! The nearness search of `$near`, `$nearSphere` and `$geoNear` (mongod's GEO_NEAR stages):
//! documents nearest first. Through a 2dsphere index it reads caps of growing radius around
//! the point (each four times the last), fetching each document once, and hands on, after
//! each cap, the documents found within its radius, nearest first; a reader that stops early
//! (a limit) stops the search. Through a 2d index it reads every key and sorts.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bson::RawDocumentBuf;

use super::planner::NearPlan;
use crate::error::Result;
use crate::op::ExecStats;
use crate::query::Filter;
use crate::query::geo::region::shape_at;
use crate::query::geo::{EARTH_RADIUS_METERS, Unit};
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, Direction, ReadView, RecordId};

/// The first cap's radius: 100 metres of arc.
const FIRST_RADIUS_RADIANS: f64 = 100.0 / EARTH_RADIUS_METERS;

/// The documents `plan` finds from `view`, nearest first, that `filter` matches.
pub fn search(
    plan: NearPlan,
    view: ReadView,
    collection: Arc<Collection>,
    filter: Filter,
    stats: Arc<ExecStats>,
) -> DocumentStream {
    plan.index.record_access();
    Box::new(NearSearch {
        plan,
        view,
        collection,
        filter,
        stats,
        radius: FIRST_RADIUS_RADIANS,
        seen: HashSet::new(),
        pending: Vec::new(),
        ready: VecDeque::new(),
        done: false,
    })
}

struct NearSearch {
    plan: NearPlan,
    view: ReadView,
    collection: Arc<Collection>,
    filter: Filter,
    stats: Arc<ExecStats>,
    /// The next cap's radius, in radians of arc.
    radius: f64,
    /// Documents already fetched.
    seen: HashSet<RecordId>,
    /// Documents found beyond the last cap's radius, with their distances.
    pending: Vec<(f64, RawDocumentBuf)>,
    /// Documents to hand on, nearest first.
    ready: VecDeque<RawDocumentBuf>,
    done: bool,
}

impl NearSearch {
    /// Reads the next cap (or, on a 2d index, everything) and moves what lies within it to
    /// `ready`.
    fn step(&mut self) -> Result<()> {
        let near = &self.plan.near;
        let spherical = near.is_spherical();
        let limit = near.max.map(|max| near.to_radians(max));
        let whole = !spherical || self.radius >= std::f64::consts::PI || limit.is_some_and(|l| self.radius >= l);
        let bounds = self.plan.bounds_within(limit.map_or(self.radius, |l| self.radius.min(l)));
        for entry in self.view.index_scan(&self.collection, &self.plan.index, &bounds, Direction::Forward, None) {
            self.stats.key()?;
            let entry = entry?;
            if !self.seen.insert(entry.record_id()) {
                continue;
            }
            let Some(doc) = self.view.fetch(&self.collection, entry)? else { continue };
            self.stats.doc()?;
            if !self.filter.try_matches(&doc)? {
                continue;
            }
            let Some(shape) = shape_at(&doc, &self.plan.field) else { continue };
            let distance = near.distance_to(&shape);
            if near.admits(distance) {
                self.pending.push((distance, doc));
            }
        }
        let reach = match near.unit {
            _ if whole => f64::INFINITY,
            Unit::Meters => self.radius * EARTH_RADIUS_METERS,
            Unit::Radians | Unit::Flat => self.radius,
        };
        // Nearest last, so the ones within reach come off the end in order.
        self.pending.sort_by(|a, b| b.0.total_cmp(&a.0));
        while self.pending.last().is_some_and(|(distance, _)| *distance <= reach) {
            if let Some((_, doc)) = self.pending.pop() {
                self.ready.push_back(doc);
            }
        }
        self.done = whole;
        self.radius *= 4.0;
        Ok(())
    }
}

impl Iterator for NearSearch {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(doc) = self.ready.pop_front() {
                return Some(Ok(doc));
            }
            if self.done {
                return None;
            }
            if let Err(err) = self.step() {
                self.done = true;
                return Some(Err(err));
            }
        }
    }
}
