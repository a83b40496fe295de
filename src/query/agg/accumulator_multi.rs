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
use crate::query::expr::{Expression, Variables, parse_percentile_spec, validate_n};
use crate::query::order::compare_collated;
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
            let not_object = if matches!(op, AccumulatorOp::MaxN | AccumulatorOp::MinN) {
                ErrorCode::Location5787900
            } else {
                ErrorCode::Location5787801
            };
            let RawBsonRef::Document(spec) = arg else {
                return Err(error(
                    not_object,
                    format!("specification must be an object; found {name}: {}", shown(arg)),
                ));
            };
            let (mut input, mut n) = (None, None);
            for (key, value) in fields(spec) {
                match key {
                    "input" => input = Some(Expression::parse(value)?),
                    "n" => n = Some(Expression::parse(value)?),
                    other => {
                        return Err(error(
                            ErrorCode::Location5787901,
                            format!("Unknown argument for 'n' operator: {other}"),
                        ));
                    }
                }
            }
            let n = n.ok_or_else(|| error(ErrorCode::Location5787906, "Missing value for 'n'".into()))?;
            let input = input.ok_or_else(|| error(ErrorCode::Location5787907, "Missing value for 'input'".into()))?;
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
                        _ => {
                            return Err(error(
                                ErrorCode::Location5788604,
                                format!("expected 'sortBy' to already be an object in the arguments to {name}"),
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
    let (input, p) = parse_percentile_spec(name, arg, op == AccumulatorOp::Median)?;
    Ok((input, Extra::Percentiles(p)))
}

/// The running state of `$firstN $lastN $maxN $minN $top $bottom $topN $bottomN`.
#[derive(Debug, Clone)]
pub(super) struct Several {
    /// How many values to keep, once known.
    pub(super) n: Option<usize>,
    /// The sort of the top/bottom family, with the collation, once known.
    pub(super) sort: Option<Arc<SortSpec>>,
    /// The kept values with the document they were sorted by (top/bottom only), in result
    /// order (`$maxN` largest first).
    pub(super) items: VecDeque<(Option<RawDocumentBuf>, Bson)>,
}

/// A fresh state for `op`.
pub(super) fn start(op: AccumulatorOp, extra: &Extra) -> State {
    match (op, extra) {
        (AccumulatorOp::Median | AccumulatorOp::Percentile, Extra::Percentiles(p)) => {
            State::Percentile { values: Vec::new(), p: p.clone() }
        }
        _ => State::Several(Several { n: None, sort: None, items: VecDeque::new() }),
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
            // The key's own fields, and the key as `_id`.
            let mut scope = match key {
                Some(RawBsonRef::Document(d)) => Document::try_from(d).map_err(QueryError::invalid_bson)?,
                _ => Document::new(),
            };
            if let Some(key) = key {
                scope.insert("_id", crate::query::limits::to_bson(key)?);
            }
            let scope = RawDocumentBuf::try_from(&scope).map_err(QueryError::invalid_bson)?;
            validate_n(n.evaluate(&scope, vars)?)?
        }
    });
    Ok(())
}

/// Adds one input: `value` is the evaluated input (or output), `document` the input document.
pub(super) fn add(
    op: AccumulatorOp,
    state: &mut Several,
    value: Option<Bson>,
    document: &RawDocument,
    vars: &Variables,
) -> Result<usize, QueryError> {
    let n = state.n.unwrap_or(1);
    let collation = vars.collation().map(AsRef::as_ref);
    let size = |v: &Bson| super::value_size(v);
    match op {
        AccumulatorOp::FirstN => {
            if state.items.len() < n {
                let value = value.unwrap_or(Bson::Null);
                let added = size(&value);
                state.items.push_back((None, value));
                return Ok(added);
            }
            Ok(0)
        }
        AccumulatorOp::LastN => {
            let value = value.unwrap_or(Bson::Null);
            let added = size(&value);
            state.items.push_back((None, value));
            if state.items.len() > n {
                state.items.pop_front();
            }
            Ok(added)
        }
        AccumulatorOp::MaxN | AccumulatorOp::MinN => {
            let Some(value) = value.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else { return Ok(0) };
            let raw = RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
            // Largest first for $maxN, smallest first for $minN; a new value goes after its equals.
            let before = |kept: &Bson| -> bool {
                let Ok(kept) = RawBson::try_from(kept.clone()) else { return false };
                let order = compare_collated(raw.as_raw_bson_ref(), kept.as_raw_bson_ref(), collation);
                if op == AccumulatorOp::MaxN { order.is_gt() } else { order.is_lt() }
            };
            let at = state.items.iter().position(|(_, kept)| before(kept)).unwrap_or(state.items.len());
            if at >= n {
                return Ok(0);
            }
            let added = size(&value);
            state.items.insert(at, (None, value));
            state.items.truncate(n);
            Ok(added)
        }
        _ => {
            let Some(sort) = state.sort.clone() else { return Ok(0) };
            let value = value.unwrap_or(Bson::Null);
            let keep_top = matches!(op, AccumulatorOp::Top | AccumulatorOp::TopN);
            // Sorted ascending by `sortBy`; ties keep arrival order.
            let at = state
                .items
                .iter()
                .position(|(d, _)| d.as_ref().is_some_and(|d| sort.compare(document, d).is_lt()))
                .unwrap_or(state.items.len());
            if keep_top && at >= n {
                return Ok(0);
            }
            let added = size(&value) + document.as_bytes().len();
            state.items.insert(at, (Some(document.to_owned()), value));
            while state.items.len() > n {
                if keep_top {
                    state.items.pop_back();
                } else {
                    state.items.pop_front();
                }
            }
            Ok(added)
        }
    }
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

/// The partial state of a [`Several`]: `n`, and the kept values with their sort documents.
pub(super) fn several_partial(state: &Several) -> Result<Document, QueryError> {
    let items: Vec<Bson> = state
        .items
        .iter()
        .map(|(d, v)| {
            let mut item = doc! { "v": v.clone() };
            if let Some(d) = d {
                item.insert("d", Document::try_from(d.as_ref()).map_err(QueryError::invalid_bson)?);
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
) -> Result<usize, QueryError> {
    let corrupt = || QueryError::new(ErrorCode::InternalError, "a spilled $group partial result is malformed");
    if state.n.is_none() {
        state.n = Some(usize::try_from(partial.get_i64("n").map_err(|_| corrupt())?).unwrap_or(1));
    }
    let mut added = 0;
    for item in partial.get_array("items").map_err(|_| corrupt())? {
        let Bson::Document(item) = item else { return Err(corrupt()) };
        let value = item.get("v").cloned();
        let document = match item.get_document("d") {
            Ok(d) => RawDocumentBuf::try_from(d).map_err(QueryError::invalid_bson)?,
            Err(_) => RawDocumentBuf::new(),
        };
        // `$lastN` and `$firstN` keep nulls as null; `add` treats the value as given.
        let value = match (op, value) {
            (AccumulatorOp::FirstN | AccumulatorOp::LastN, None) => Some(Bson::Null),
            (_, v) => v,
        };
        added += add(op, state, value, &document, vars)?;
    }
    Ok(added)
}
