//! Partial results: an accumulator's running state written as a BSON value and merged back
//! into another accumulator of the same operator, as mongod's `getValue(toBeMerged)` and
//! `processInternal(merging)` do. A `$group` past its memory limit writes its groups' partial
//! states to disk and merges them group by group; the merge order is the input order, so
//! `$first`, `$last`, `$push` and `$mergeObjects` keep their meaning.

use bson::{Bson, Document, RawBson, doc};

use super::{Accumulator, AccumulatorOp, State, charge, raw, raw_size, value_size};
use crate::query::expr::Variables;
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::summation::{Sum, Widest};
use crate::query::{QueryError, decimal};

fn corrupt() -> QueryError {
    QueryError::new(crate::error::ErrorCode::InternalError, "a spilled $group partial result is malformed")
}

impl Sum {
    fn partial(&self) -> Document {
        let widest = match self.widest {
            Widest::Int => 0,
            Widest::Long => 1,
            Widest::Double => 2,
            Widest::Decimal => 3,
        };
        let mut out = doc! { "w": widest, "l": self.long, "d": self.double, "c": self.compensation };
        if let Some(total) = self.decimal {
            out.insert("m", total);
        }
        out
    }

    fn from_partial(partial: &Document) -> Result<Self, QueryError> {
        let widest = match partial.get_i32("w").map_err(|_| corrupt())? {
            0 => Widest::Int,
            1 => Widest::Long,
            2 => Widest::Double,
            _ => Widest::Decimal,
        };
        Ok(Self {
            widest,
            long: partial.get_i64("l").map_err(|_| corrupt())?,
            double: partial.get_f64("d").map_err(|_| corrupt())?,
            compensation: partial.get_f64("c").map_err(|_| corrupt())?,
            decimal: partial.get("m").and_then(|m| if let Bson::Decimal128(d) = m { Some(*d) } else { None }),
        })
    }

    /// Adds another sum's total, keeping the widest type either met.
    fn merge(&mut self, other: &Self) {
        if self.widest == Widest::Decimal || other.widest == Widest::Decimal {
            // Each side converts as `add` converts it: this sum's double total exactly, the
            // other's as a double operand is (15 digits).
            let own = match self.widest {
                Widest::Decimal => self.decimal.unwrap_or_else(|| decimal::from_i64(0)),
                Widest::Double => decimal::from_f64(self.double + self.compensation),
                _ => decimal::from_i64(self.long),
            };
            let theirs = match other.widest {
                Widest::Decimal => other.decimal.unwrap_or_else(|| decimal::from_i64(0)),
                Widest::Double => Number::Double(other.double).to_decimal(),
                _ => decimal::from_i64(other.long),
            };
            self.decimal = Some(decimal::add(own, theirs));
            self.widest = Widest::Decimal;
            return;
        }
        if self.widest < Widest::Double && other.widest < Widest::Double {
            match self.long.checked_add(other.long) {
                Some(total) => {
                    self.long = total;
                    self.widest = self.widest.max(other.widest);
                    return;
                }
                None => self.switch_to_double(),
            }
            self.add_double(other.long as f64);
            return;
        }
        self.switch_to_double();
        if other.widest == Widest::Double {
            // Kahan's running sum holds the total less its compensation.
            self.add_double(other.double);
            self.add_double(-other.compensation);
        } else {
            self.add_double(other.long as f64);
        }
    }
}

impl Accumulator {
    /// The running state as a value [`Accumulator::merge`] reads back.
    ///
    /// # Errors
    /// 22 InvalidBSON when a held value cannot be encoded.
    pub fn partial(&self) -> Result<Bson, QueryError> {
        let value = |v: &RawBson| Bson::try_from(v.clone()).map_err(QueryError::invalid_bson);
        Ok(Bson::Document(match &self.state {
            State::Sum(sum) => doc! { "sum": sum.partial() },
            State::Avg(sum, count) => doc! { "sum": sum.partial(), "n": i64::try_from(*count).unwrap_or(i64::MAX) },
            State::Extreme(best) => match best {
                Some(best) => doc! { "v": value(best)? },
                None => doc! {},
            },
            State::First(first) => match first {
                None => doc! {},
                Some(None) => doc! { "seen": true },
                Some(Some(v)) => doc! { "seen": true, "v": v.clone() },
            },
            State::Last(last) => match last {
                Some(v) => doc! { "v": v.clone() },
                None => doc! {},
            },
            State::Push(items) => doc! { "v": items.clone() },
            State::AddToSet(items, _) => {
                doc! { "v": items.iter().map(value).collect::<Result<Vec<_>, _>>()? }
            }
            State::StdDev(d) => doc! { "n": i64::try_from(d.count).unwrap_or(i64::MAX), "mean": d.mean, "m2": d.m2 },
            State::Merge(merged) => doc! { "v": merged.clone() },
            State::Several(several) => super::multi::several_partial(several)?,
            State::Percentile { values, .. } => {
                doc! { "v": values.iter().map(|x| Bson::Double(*x)).collect::<Vec<_>>() }
            }
        }))
    }

    /// Adds the partial state of an accumulator of the same operator that saw later input.
    ///
    /// # Errors
    /// 146 when a `$push` or `$addToSet` passes its limit; 1 InternalError for a malformed
    /// partial state.
    pub fn merge(&mut self, op: AccumulatorOp, partial: &Bson, vars: &Variables) -> Result<(), QueryError> {
        let Bson::Document(partial) = partial else { return Err(corrupt()) };
        let collation = vars.collation().map(AsRef::as_ref);
        match &mut self.state {
            State::Sum(sum) => sum.merge(&Sum::from_partial(partial.get_document("sum").map_err(|_| corrupt())?)?),
            State::Avg(sum, count) => {
                sum.merge(&Sum::from_partial(partial.get_document("sum").map_err(|_| corrupt())?)?);
                *count += u64::try_from(partial.get_i64("n").map_err(|_| corrupt())?).unwrap_or(0);
            }
            State::Extreme(best) => {
                let Some(v) = partial.get("v") else { return Ok(()) };
                let v = raw(v.clone())?;
                let better = best.as_ref().is_none_or(|b| {
                    let order = compare_collated(v.as_raw_bson_ref(), b.as_raw_bson_ref(), collation);
                    if op == AccumulatorOp::Min { order.is_lt() } else { order.is_gt() }
                });
                if better {
                    self.bytes = raw_size(&v);
                    *best = Some(v);
                }
            }
            State::First(first) => {
                if first.is_none() && partial.get_bool("seen").unwrap_or(false) {
                    let v = partial.get("v").cloned();
                    self.bytes = v.as_ref().map_or(0, value_size);
                    *first = Some(v);
                }
            }
            State::Last(last) => {
                // A partial state exists only for a group that saw later input: it wins.
                let v = partial.get("v").cloned();
                self.bytes = v.as_ref().map_or(0, value_size);
                *last = v;
            }
            State::Push(items) => {
                let more = partial.get_array("v").map_err(|_| corrupt())?;
                for v in more {
                    self.bytes = charge(self.bytes, v, "$push")?;
                    items.push(v.clone());
                }
            }
            State::AddToSet(items, by_hash) => {
                for v in partial.get_array("v").map_err(|_| corrupt())? {
                    self.bytes = super::add_to_set(items, by_hash, raw(v.clone())?, collation, self.bytes)?;
                }
            }
            State::StdDev(deviation) => {
                let crate::query::summation::Deviation { count, mean, m2 } = deviation;
                // Chan et al.'s merge of two (count, mean, M2) summaries.
                let other_count = u64::try_from(partial.get_i64("n").map_err(|_| corrupt())?).unwrap_or(0);
                if other_count == 0 {
                    return Ok(());
                }
                let other_mean = partial.get_f64("mean").map_err(|_| corrupt())?;
                let other_m2 = partial.get_f64("m2").map_err(|_| corrupt())?;
                let total = *count + other_count;
                let delta = other_mean - *mean;
                *mean += delta * other_count as f64 / total as f64;
                *m2 += other_m2 + delta * delta * (*count as f64) * (other_count as f64) / total as f64;
                *count = total;
            }
            State::Merge(merged) => {
                for (k, v) in partial.get_document("v").map_err(|_| corrupt())? {
                    merged.insert(k.clone(), v.clone());
                }
            }
            State::Several(several) => {
                super::multi::several_merge(op, several, partial, vars)?;
                self.bytes = super::add_bytes(0, several.bytes, op.name())?;
            }
            State::Percentile { values, .. } => {
                for v in partial.get_array("v").map_err(|_| corrupt())? {
                    let Bson::Double(x) = v else { return Err(corrupt()) };
                    values.push(*x);
                }
            }
        }
        Ok(())
    }
}
