//! The engine: the ordered key-value store everything else in `storage/` is written on.
//!
//! The rest of `storage/` (catalog, documents, indexes, the oplog, transactions) builds
//! Monarch's own keys and values and reads and writes them through this interface only:
//! - three ordered key spaces ([`Space`]) of byte keys;
//! - point reads and ordered range reads of the latest data ([`Engine::get`],
//!   [`Engine::prefix`], [`Engine::range`]), each row read lazily ([`Row`]);
//! - consistent snapshots ([`Snapshot`]) that read as of their own instant, or as of a later
//!   [`Instant`] they keep readable (the snapshot history of `readConcern: snapshot`);
//! - atomic write batches across the spaces ([`Batch`]), and single writes;
//! - durability: [`Engine::persist`], and [`SyncTarget`](super::durability::SyncTarget) for
//!   the group-commit journal.
//!
//! fjall is the only engine today ([`fjall`](self::fjall)); the types here are concrete
//! rather than a trait, so the embedded engine costs nothing on the hot path. A second engine
//! (PostgreSQL, see `docs/design/postgres-engine.md`) turns them into enums over both.
//! Engine-specific tools stay beside it: the memory budget (`memory.rs`) and `--repair`
//! (`repair.rs`) are fjall's alone.

mod fjall;
mod space;

pub(super) use self::fjall::{Batch, Bytes, Engine, Instant, Row, Rows, Snapshot};
pub use self::space::{EngineStats, KeyspaceStats, Space};
