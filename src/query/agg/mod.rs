//! The pure parts of the aggregation framework: the accumulators of `$group` and the table
//! that groups documents by key. Running stages over document streams is `exec::pipeline`'s.

pub mod accumulator;
pub mod group_key;
pub mod stages;

pub use accumulator::{Accumulator, AccumulatorOp, AccumulatorSpec};
pub use group_key::GroupKeys;
