//! Cursors as the executor drives them: the first batch of a query's results, the rest parked
//! in the registry (`state::cursors`) for `getMore`.

/// Documents in a first batch when the client sets no `batchSize` (mongod's default).
pub const DEFAULT_FIRST_BATCH: usize = 101;
