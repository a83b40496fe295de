//! Planning and execution.

pub mod cursor;
pub mod planner;
