//! The accumulators that keep several values or a distribution: `$firstN $lastN $maxN $minN`
//! (`{input, n}`), `$top $bottom $topN $bottomN` (`{output, sortBy, n}`) and `$median`/
//! `$percentile` (`{input, p, method}`), with mongod's argument checks.
//!
//! `n` may be an expression of the group key (mongod evaluates it against the key), so it is
//! fixed when a group starts ([`super::AccumulatorSpec::prepare`]); in a window, or when no key
//! is given, it is evaluated against an empty document at the first input.

use std::collections::VecDeque;
use std::sync::Arc;

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::{AccumulatorOp, State};
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::expr::{Expression, Variables, parse_n_spec, parse_percentile_spec, validate_n};
use crate::query::order::compare_collated;
use crate::query::sort::SortKey;
use crate::query::summation::pick_percentile;
use crate::query::{QueryError, SortSpec, render};

/// What an accumulator of this family takes besides its input expression.
#[derive(Debug, Clone)]
pub(super) enum Extra {
    /// Nothing (the single-value accumulators).
    None,
    /// `n` of `$firstN $lastN $maxN $minN $topN $bottomN` (`None` for `$top`/`$bottom`),
    /// and the `sortBy` of the top/bottom family.
    Several { n: Option<Expression>, sort: Option<SortSpec> },
    /// The `p` of `$percentile` (`$median` is `[0.5]`).
    Percentiles(Vec<f64>),
}

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

/// Whether `op` belongs to this family (its argument is an object of named fields).
pub(super) fn takes_object(op: AccumulatorOp) -> bool {
    matches!(
        op,
        AccumulatorOp::FirstN
            | AccumulatorOp::LastN
            | AccumulatorOp::MaxN
            | AccumulatorOp::MinN
            | AccumulatorOp::Top
            | AccumulatorOp::Bottom
            | AccumulatorOp::TopN
            | AccumulatorOp::BottomN
            | AccumulatorOp::Median
            | AccumulatorOp::Percentile
    )
}

/// Parses the argument of an accumulator of this family into its input and [`Extra`].
pub(super) fn parse(op: AccumulatorOp, name: &str, arg: RawBsonRef<'_>) -> Result<(Expression, Extra), QueryError> {
    match op {
        AccumulatorOp::FirstN | AccumulatorOp::LastN | AccumulatorOp::MaxN | AccumulatorOp::MinN => {
            let (n, input) = parse_n_spec(name, arg, matches!(op, AccumulatorOp::MaxN | AccumulatorOp::MinN))?;
            Ok((input, Extra::Several { n: Some(n), sort: None }))
        }
        AccumulatorOp::Top | AccumulatorOp::Bottom | AccumulatorOp::TopN | AccumulatorOp::BottomN => {
            let RawBsonRef::Document(spec) = arg else {
                return Err(error(
                    ErrorCode::Location5788001,
                    format!("specification must be an object; found {name}: {}", shown(arg)),
                ));
            };
            let single = matches!(op, AccumulatorOp::Top | AccumulatorOp::Bottom);
            let (mut output, mut n, mut sort) = (None, None, None);
            for (key, value) in fields(spec) {
                match key {
                    "output" => output = Some(Expression::parse(value)?),
                    "n" if !single => n = Some(Expression::parse(value)?),
                    "sortBy" => match value {
                        RawBsonRef::Document(pattern) => sort = Some(SortSpec::parse(pattern)?),
                        // mongod reads it with `BSONElement::Obj()`, whose own check this is.
                        _ => {
                            return Err(error(
                                ErrorCode::Location10065,
                                "invalid parameter: expected an object (sortBy)".to_owned(),
                            ));
                        }
                    },
                    other => {
                        return Err(error(ErrorCode::Location5788002, format!("Unknown argument to {name} '{other}'")));
                    }
                }
            }
            if !single && n.is_none() {
                return Err(error(ErrorCode::Location5788003, "Missing value for 'n'".into()));
            }
            let output =
                output.ok_or_else(|| error(ErrorCode::Location5788004, "Missing value for 'output'".into()))?;
            let sort = sort.ok_or_else(|| error(ErrorCode::Location5788005, "Missing value for 'sortBy'".into()))?;
            Ok((output, Extra::Several { n, sort: Some(sort) }))
        }
        AccumulatorOp::Median | AccumulatorOp::Percentile => parse_percentile(op, name, arg),
        _ => Ok((Expression::parse(arg)?, Extra::None)),
    }
}

fn shown(v: RawBsonRef<'_>) -> String {
    render::element("", v).trim_start_matches(": ").to_owned()
}

/// `$median: {input, method}` and `$percentile: {input, p, method}`.
fn parse_percentile(op: AccumulatorOp, name: &str, arg: RawBsonRef<'_>) -> Result<(Expression, Extra), QueryError> {
    let (input, p) = parse_percentile_spec(name, arg, op == AccumulatorOp::Median, false)?;
    Ok((input, Extra::Percentiles(p)))
}

/// The running state of `$firstN $lastN $maxN $minN $top $bottom $topN $bottomN`.
#[derive(Debug, Clone)]
pub(super) struct Several {
    /// How many values to keep, once known.
    pub(super) n: Option<usize>,
    /// The sort of the top/bottom family, with the collation, once known.
    pub(super) sort: Option<Arc<SortSpec>>,
    /// The kept values with the sort key they were ranked by (top/bottom only), in result
    /// order (`$maxN` largest first).
    pub(super) items: VecDeque<(Option<Vec<RawBson>>, Bson)>,
    /// The bytes the kept items take: what mongod's memory tracker counts, so it shrinks when
    /// an item is dropped.
    pub(super) bytes: usize,
    /// A window that is computed afresh for each document (mongod's removable window
    /// functions): `$bottom`/`$bottomN` then keep the later of equal sort keys, where a group
    /// keeps the first one seen.
    pub(super) sliding: bool,
}

/// A fresh state for `op`; `sliding` for a window that is not left-unbounded.
pub(super) fn start(op: AccumulatorOp, extra: &Extra, sliding: bool) -> State {
    match (op, extra) {
        (AccumulatorOp::Median | AccumulatorOp::Percentile, Extra::Percentiles(p)) => {
            State::Percentile { values: Vec::new(), p: p.clone() }
        }
        _ => State::Several(Several { n: None, sort: None, items: VecDeque::new(), bytes: 0, sliding }),
    }
}

/// Fixes `n` (and the collated sort) of a fresh state from the group key `key`.
pub(super) fn prepare(
    state: &mut State,
    extra: &Extra,
    key: Option<RawBsonRef<'_>>,
    vars: &Variables,
) -> Result<(), QueryError> {
    let (State::Several(several), Extra::Several { n, sort }) = (state, extra) else { return Ok(()) };
    if several.sort.is_none()
        && let Some(sort) = sort
    {
        several.sort = Some(Arc::new(sort.clone().with_collation(vars.collation())));
    }
    if several.n.is_some() {
        return Ok(());
    }
    several.n = Some(match n {
        None => 1,
        Some(n) => {
            // mongod evaluates `n` against the group key when the key is a document (so
            // `_id: {g: "$g"}` lets `n` read `$g`), and against an empty document otherwise.
            let empty = RawDocumentBuf::new();
            let scope = match key {
                Some(RawBsonRef::Document(d)) => d,
                _ => &empty,
            };
            validate_n(n.evaluate(scope, vars)?)?
        }
    });
    Ok(())
}

/// The size of a kept item, as the memory limit counts it.
fn item_size(key: Option<&Vec<RawBson>>, value: &Bson) -> usize {
    super::value_size(value) + key.map_or(0, |k| k.iter().map(super::raw_size).sum())
}

/// Adds one input: `value` is the evaluated input (or output), `document` the input document
/// (what top/bottom rank by).
///
/// # Errors
/// 146 when the kept items pass [`super::MAX_COLLECTED_BYTES`].
pub(super) fn add(
    op: AccumulatorOp,
    state: &mut Several,
    value: Option<Bson>,
    document: &RawDocument,
    vars: &Variables,
) -> Result<(), QueryError> {
    let key = match &state.sort {
        Some(sort) if is_top_bottom(op) => {
            Some(sort.key(document).values().iter().map(|v| RawBson::from(*v)).collect())
        }
        _ => None,
    };
    add_keyed(op, state, value, key, vars)
}

/// A kept key as the sort compares it.
fn key_of(values: &[RawBson]) -> SortKey<'_> {
    SortKey::from_values(values.iter().map(RawBson::as_raw_bson_ref).collect())
}

fn is_top_bottom(op: AccumulatorOp) -> bool {
    matches!(op, AccumulatorOp::Top | AccumulatorOp::Bottom | AccumulatorOp::TopN | AccumulatorOp::BottomN)
}

/// [`add`] with the sort key already made (a spilled partial state carries its keys).
fn add_keyed(
    op: AccumulatorOp,
    state: &mut Several,
    value: Option<Bson>,
    key: Option<Vec<RawBson>>,
    vars: &Variables,
) -> Result<(), QueryError> {
    let n = state.n.unwrap_or(1);
    let collation = vars.collation().map(AsRef::as_ref);
    // Where the new item goes, and which end gives way when more than `n` are kept.
    let (at, drop_back) = match op {
        AccumulatorOp::FirstN => {
            if state.items.len() >= n {
                return Ok(());
            }
            (state.items.len(), true)
        }
        AccumulatorOp::LastN => (state.items.len(), false),
        AccumulatorOp::MaxN | AccumulatorOp::MinN => {
            // $maxN and $minN leave out null and missing.
            if value.as_ref().is_none_or(|v| matches!(v, Bson::Null | Bson::Undefined)) {
                return Ok(());
            }
            let Some(value) = &value else { return Ok(()) };
            let raw = RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
            // Largest first for $maxN, smallest first for $minN; a new value goes after its
            // equals, so when full an equal value does not displace a kept one.
            let before = |kept: &Bson| -> bool {
                let Ok(kept) = RawBson::try_from(kept.clone()) else { return false };
                let order = compare_collated(raw.as_raw_bson_ref(), kept.as_raw_bson_ref(), collation);
                if op == AccumulatorOp::MaxN { order.is_gt() } else { order.is_lt() }
            };
            let at = state.items.iter().position(|(_, kept)| before(kept)).unwrap_or(state.items.len());
            if at >= n {
                return Ok(());
            }
            (at, true)
        }
        _ => {
            let (Some(sort), Some(new_key)) = (&state.sort, &key) else { return Ok(()) };
            let compare = |a: &[RawBson], b: &[RawBson]| sort.compare_keys(&key_of(a), &key_of(b));
            // Kept ascending by sort key; equal keys in arrival order.
            let at = state
                .items
                .iter()
                .position(|(k, _)| k.as_ref().is_some_and(|k| compare(new_key, k).is_lt()))
                .unwrap_or(state.items.len());
            let top = matches!(op, AccumulatorOp::Top | AccumulatorOp::TopN);
            if state.items.len() >= n {
                if top && at >= n {
                    return Ok(());
                }
                // mongod's $bottom displaces the smallest kept key only with a larger one, so
                // of equal keys the first seen stays; a sliding window keeps the later ones.
                let beats_smallest =
                    state.items.front().and_then(|(k, _)| k.as_ref()).is_none_or(|k| compare(new_key, k).is_gt());
                if !top && !state.sliding && !beats_smallest {
                    return Ok(());
                }
            }
            (at, top)
        }
    };
    // $firstN and $lastN keep missing as null; top/bottom output the same.
    let value = value.unwrap_or(Bson::Null);
    state.bytes = state.bytes.saturating_add(item_size(key.as_ref(), &value));
    state.items.insert(at, (key, value));
    while state.items.len() > n {
        let dropped = if drop_back { state.items.pop_back() } else { state.items.pop_front() };
        if let Some((k, v)) = dropped {
            state.bytes = state.bytes.saturating_sub(item_size(k.as_ref(), &v));
        }
    }
    Ok(())
}

/// The result of a state of this family.
pub(super) fn finish(op: AccumulatorOp, state: State) -> Bson {
    match state {
        State::Several(several) => {
            let mut values = several.items.into_iter().map(|(_, v)| v);
            match op {
                AccumulatorOp::Top | AccumulatorOp::Bottom => values.next().unwrap_or(Bson::Null),
                _ => Bson::Array(values.collect()),
            }
        }
        State::Percentile { mut values, p } => {
            values.sort_by(f64::total_cmp);
            let at = |q: f64| pick_percentile(&values, q).map_or(Bson::Null, Bson::Double);
            if op == AccumulatorOp::Median { at(0.5) } else { Bson::Array(p.iter().map(|q| at(*q)).collect()) }
        }
        _ => Bson::Null,
    }
}

/// The partial state of a [`Several`]: `n`, and the kept values with their sort keys.
pub(super) fn several_partial(state: &Several) -> Result<Document, QueryError> {
    let items: Vec<Bson> = state
        .items
        .iter()
        .map(|(k, v)| {
            let mut item = doc! { "v": v.clone() };
            if let Some(k) = k {
                let key = k.iter().map(|x| Bson::try_from(x.clone()).map_err(QueryError::invalid_bson));
                item.insert("k", key.collect::<Result<Vec<_>, _>>()?);
            }
            Ok(Bson::Document(item))
        })
        .collect::<Result<_, QueryError>>()?;
    Ok(doc! { "n": i64::try_from(state.n.unwrap_or(1)).unwrap_or(i64::MAX), "items": items })
}

/// Folds the partial state of a later [`Several`] into `state`, as if its inputs followed.
pub(super) fn several_merge(
    op: AccumulatorOp,
    state: &mut Several,
    partial: &Document,
    vars: &Variables,
) -> Result<(), QueryError> {
    let corrupt = || QueryError::new(ErrorCode::InternalError, "a spilled $group partial result is malformed");
    if state.n.is_none() {
        state.n = Some(usize::try_from(partial.get_i64("n").map_err(|_| corrupt())?).unwrap_or(1));
    }
    for item in partial.get_array("items").map_err(|_| corrupt())? {
        let Bson::Document(item) = item else { return Err(corrupt()) };
        let key = match item.get_array("k") {
            Ok(k) => Some(
                k.iter()
                    .map(|x| RawBson::try_from(x.clone()).map_err(QueryError::invalid_bson))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Err(_) => None,
        };
        // A kept null stays a null (`$firstN`/`$lastN` keep it; `$maxN`/`$minN` never kept one).
        let value = Some(item.get("v").cloned().unwrap_or(Bson::Null));
        add_keyed(op, state, value, key, vars)?;
    }
    Ok(())
}
