//! The parsed operator update: a tree keyed by path component, as mongod's
//! `UpdateObjectNode`, whose leaves are modifiers; overlapping paths conflict when they are
//! inserted.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{Bson, RawBson};

use super::modifier::{Modifier, PullCondition, to_raw};
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::error::QueryError;
use crate::query::limits::MAX_STORAGE_DEPTH;
use crate::query::order::compare_collated;

pub(super) type Tree = BTreeMap<String, UpdateNode>;

#[derive(Debug, Clone)]
pub(super) enum UpdateNode {
    Leaf(Modifier),
    Inner(Tree),
}

/// One `$rename`: both paths also sit in the tree as [`Modifier::Renamed`] placeholders, so
/// conflicts with other operators are found at parse time as mongod's
/// `ConflictPlaceholderNode` finds them.
#[derive(Debug, Clone)]
pub(super) struct Rename {
    pub(super) from: Vec<String>,
    pub(super) to: Vec<String>,
}

/// Adds a modifier at `parts`, refusing a path that equals, extends or prefixes one already
/// in the tree.
///
/// A path longer than [`MAX_STORAGE_DEPTH`] components addresses a level no stored document
/// reaches: it is kept only to the first level beyond, where [`apply_entry`] refuses to create
/// anything (mongod's storage validation would refuse the result) and finds nothing to
/// change. So the tree, and every walk over it, stays within that depth. (Two such paths
/// that differ only beyond it count as one for conflict checks.)
pub(super) fn insert(tree: &mut Tree, parts: &[&str], dotted: &str, modifier: Modifier) -> Result<(), QueryError> {
    let parts = parts.get(..parts.len().min(MAX_STORAGE_DEPTH + 1)).unwrap_or(parts);
    let Some((last, prefix)) = parts.split_last() else { return Ok(()) };
    let mut current = tree;
    for (i, part) in prefix.iter().enumerate() {
        match current.entry((*part).to_owned()).or_insert_with(|| UpdateNode::Inner(Tree::new())) {
            UpdateNode::Inner(children) => current = children,
            UpdateNode::Leaf(_) => return Err(conflict(dotted, &parts.get(..=i).unwrap_or_default().join("."))),
        }
    }
    if current.contains_key(*last) {
        return Err(conflict(dotted, dotted));
    }
    current.insert((*last).to_owned(), UpdateNode::Leaf(modifier));
    Ok(())
}

fn conflict(path: &str, at: &str) -> QueryError {
    QueryError::new(
        ErrorCode::ConflictingUpdateOperators,
        format!("Updating the path '{path}' would create a conflict at '{at}'"),
    )
}

/// Puts `collation` into the `$pull` filters of `tree` and deduplicates `$addToSet` values
/// under it.
pub(super) fn collate_tree(tree: &mut Tree, collation: &Arc<Collation>) -> Result<(), QueryError> {
    for node in tree.values_mut() {
        match node {
            UpdateNode::Inner(children) => collate_tree(children, collation)?,
            UpdateNode::Leaf(Modifier::Pull(PullCondition::Value(filter) | PullCondition::Query(filter))) => {
                filter.set_collation(collation);
            }
            UpdateNode::Leaf(Modifier::AddToSet(values)) => {
                let mut unique: Vec<Bson> = Vec::with_capacity(values.len());
                let mut seen: Vec<RawBson> = Vec::with_capacity(values.len());
                for value in values.drain(..) {
                    let raw = to_raw(&value)?;
                    let duplicate = seen
                        .iter()
                        .any(|s| compare_collated(s.as_raw_bson_ref(), raw.as_raw_bson_ref(), Some(collation)).is_eq());
                    if !duplicate {
                        seen.push(raw);
                        unique.push(value);
                    }
                }
                *values = unique;
            }
            UpdateNode::Leaf(_) => {}
        }
    }
    Ok(())
}
