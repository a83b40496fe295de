//! Running numeric summaries that `$group`'s accumulators and the accumulator-style
//! expressions (`{$sum: [...]}`) share: mongod's `$sum` (exact integers, compensated doubles,
//! exact decimals), the Welford variance of `$stdDevPop`/`$stdDevSamp`, and the percentile
//! pick of `$median`/`$percentile`.

use bson::{Bson, Decimal128};

use super::decimal;
use super::number::Number;

/// The widest numeric type a sum has met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Widest {
    #[default]
    Int,
    Long,
    Double,
    Decimal,
}

/// mongod's `$sum`: integers add up exactly in an int64 (the result an int while every input
/// was an int and the total fits one); an int64 overflow or any double switches to a
/// compensated double sum; any decimal to an exact decimal sum.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sum {
    pub(crate) widest: Widest,
    pub(crate) long: i64,
    pub(crate) double: f64,
    /// Kahan's compensation of `double`.
    pub(crate) compensation: f64,
    pub(crate) decimal: Option<Decimal128>,
}

impl Sum {
    pub(crate) fn add(&mut self, n: Number) {
        if let Number::Decimal(d) = n {
            let so_far = self.decimal.unwrap_or_else(|| match self.widest {
                Widest::Double => decimal::from_f64(self.double + self.compensation),
                _ => decimal::from_i64(self.long),
            });
            self.decimal = Some(decimal::add(so_far, d));
            self.widest = Widest::Decimal;
            return;
        }
        if let Some(total) = self.decimal {
            self.decimal = Some(decimal::add(total, n.to_decimal()));
            return;
        }
        let integer = match n {
            Number::Int32(i) => Some(i64::from(i)),
            Number::Int64(i) => {
                self.widest = self.widest.max(Widest::Long);
                Some(i)
            }
            _ => None,
        };
        if self.widest < Widest::Double
            && let Some(i) = integer
        {
            match self.long.checked_add(i) {
                Some(total) => self.long = total,
                None => {
                    self.switch_to_double();
                    self.add_double(i as f64);
                }
            }
            return;
        }
        self.switch_to_double();
        self.add_double(n.to_f64());
    }

    pub(crate) fn switch_to_double(&mut self) {
        if self.widest < Widest::Double {
            self.widest = Widest::Double;
            self.double = self.long as f64;
            self.compensation = 0.0;
        }
    }

    pub(crate) fn add_double(&mut self, x: f64) {
        let y = x - self.compensation;
        let t = self.double + y;
        self.compensation = (t - self.double) - y;
        self.double = t;
        if !t.is_finite() {
            self.compensation = 0.0;
        }
    }

    pub(crate) fn total(&self) -> Bson {
        match self.widest {
            Widest::Int => i32::try_from(self.long).map_or(Bson::Int64(self.long), Bson::Int32),
            Widest::Long => Bson::Int64(self.long),
            Widest::Double => Bson::Double(self.double),
            Widest::Decimal => self.decimal.map_or(Bson::Int32(0), Bson::Decimal128),
        }
    }

    pub(crate) fn average(&self, count: u64) -> Bson {
        if count == 0 {
            return Bson::Null;
        }
        let count_i64 = i64::try_from(count).unwrap_or(i64::MAX);
        match self.widest {
            Widest::Decimal => {
                let total = self.decimal.unwrap_or_else(|| decimal::from_i64(0));
                Bson::Decimal128(decimal::div(total, decimal::from_i64(count_i64)))
            }
            Widest::Double => Bson::Double(self.double / count as f64),
            Widest::Int | Widest::Long => Bson::Double(self.long as f64 / count as f64),
        }
    }
}

/// The running mean and squared deviations of `$stdDevPop`/`$stdDevSamp` (Welford's update,
/// stable over long inputs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Deviation {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
}

impl Deviation {
    pub(crate) fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The population (or, with `sample`, the sample) standard deviation; null without
    /// enough values.
    pub(crate) fn result(&self, sample: bool) -> Bson {
        let divisor = if sample { self.count.saturating_sub(1) } else { self.count };
        if divisor == 0 { Bson::Null } else { Bson::Double((self.m2 / divisor as f64).sqrt()) }
    }
}

/// mongod's percentile of an ascending list: the smallest value with at least a fraction `p`
/// of the values at or below it; `None` for an empty list.
pub(crate) fn pick_percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied()
}
