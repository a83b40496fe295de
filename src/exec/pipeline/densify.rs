//! `$densify`: adds the documents missing from a sequence of numbers or dates, every `step`
//! within the bounds, per partition.

use bson::{Bson, DateTime, Document, RawBson, RawBsonRef, RawDocumentBuf};

use super::{StageArgs, deferred, raw, set_path};
use crate::error::{Error, ErrorCode, Result};
use crate::query::agg::GroupKeys;
use crate::query::expr::date::tz::Zone;
use crate::query::expr::date::units::{self, TimeUnit};
use crate::query::number::{self, Number};
use crate::query::{compare_values, limits};
use crate::state::cursors::DocumentStream;

fn parse_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::FailedToParse, message)
}

fn invalid_bson(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidBSON, error.to_string())
}

/// Where generated values start and stop.
#[derive(Debug, Clone)]
enum Bounds {
    /// From the smallest to the largest value of all documents.
    Full,
    /// From the smallest to the largest value of each partition.
    Partition,
    /// `[lower, upper)`.
    Explicit(Box<(Bson, Bson)>),
}

/// A parsed `$densify`.
struct Densify {
    field: String,
    path: Vec<String>,
    partition_fields: Vec<String>,
    step: Number,
    unit: Option<TimeUnit>,
    bounds: Bounds,
}

impl Densify {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(parse_error("the $densify stage specification must be an object"));
        };
        let (mut field, mut partition_fields, mut range) = (None, Vec::new(), None);
        for element in spec {
            let (key, value) = element.map_err(invalid_bson)?;
            match (key.as_str(), value) {
                ("field", RawBsonRef::String(f)) => field = Some(f.to_owned()),
                ("partitionByFields", RawBsonRef::Array(fields)) => {
                    for f in fields {
                        match f.map_err(invalid_bson)? {
                            RawBsonRef::String(f) => partition_fields.push(f.to_owned()),
                            _ => return Err(parse_error("'partitionByFields' must be an array of strings")),
                        }
                    }
                }
                ("range", RawBsonRef::Document(r)) => range = Some(r.to_owned()),
                (name @ ("field" | "partitionByFields" | "range"), _) => {
                    return Err(Error::new(
                        ErrorCode::TypeMismatch,
                        format!("BSON field '$densify.{name}' is the wrong type"),
                    ));
                }
                (other, _) => {
                    return Err(super::unknown_field(&format!("$densify.{other}")));
                }
            }
        }
        let field = field.ok_or_else(|| super::missing_field("$densify.field"))?;
        let range = range.ok_or_else(|| super::missing_field("$densify.range"))?;
        if field.starts_with('$') {
            return Err(parse_error("Cannot densify field starting with '$'"));
        }
        let path = crate::query::path::checked_parts(&field)?.into_iter().map(str::to_owned).collect();
        let (mut step, mut unit, mut bounds) = (None, None, None);
        for element in &range {
            let (key, value) = element.map_err(invalid_bson)?;
            match key.as_str() {
                "step" => {
                    step = Some(
                        Number::from_raw(value)
                            .ok_or_else(|| parse_error("The step parameter in a range statement must be a number."))?,
                    )
                }
                "unit" => match value {
                    RawBsonRef::String(u) => unit = Some(TimeUnit::parse(u)?),
                    _ => return Err(parse_error("'unit' must be a string")),
                },
                "bounds" => {
                    bounds = Some(match value {
                        RawBsonRef::String("full") => Bounds::Full,
                        RawBsonRef::String("partition") => Bounds::Partition,
                        RawBsonRef::Array(pair) => {
                            let items: Vec<RawBsonRef<'_>> =
                                pair.into_iter().collect::<std::result::Result<_, _>>().map_err(invalid_bson)?;
                            match items.as_slice() {
                                [lower, upper] if compare_values(*lower, *upper).is_le() => {
                                    Bounds::Explicit(Box::new((limits::to_bson(*lower)?, limits::to_bson(*upper)?)))
                                }
                                _ => {
                                    return Err(parse_error(
                                        "Explicit bounds must be an array of two values, the lower not above the upper",
                                    ));
                                }
                            }
                        }
                        _ => return Err(parse_error("Bounds must be 'full', 'partition' or an array of two values")),
                    });
                }
                other => {
                    return Err(super::unknown_field(&format!("$densify.range.{other}")));
                }
            }
        }
        let step = step.ok_or_else(|| super::missing_field("$densify.range.step"))?;
        let bounds = bounds.ok_or_else(|| super::missing_field("$densify.range.bounds"))?;
        if step.to_f64().is_nan() || step.to_f64() <= 0.0 {
            return Err(parse_error(
                "The step parameter in a range statement must be a strictly positive numeric value",
            ));
        }
        if unit.is_some() && step.to_i32_exact().is_none() && !matches!(step, Number::Int64(_)) {
            return Err(parse_error(
                "The step parameter in a range statement must be a whole number when densifying a date range",
            ));
        }
        if matches!(bounds, Bounds::Partition) && partition_fields.is_empty() {
            return Err(parse_error(
                "one may not specify the 'partition' bound without also specifying partitionByFields",
            ));
        }
        Ok(Self { field, path, partition_fields, step, unit, bounds })
    }

    /// The value after `value` on the step grid.
    fn next(&self, value: &Bson) -> Result<Bson> {
        match (value, self.unit) {
            (Bson::DateTime(d), Some(unit)) => {
                let step = match self.step {
                    Number::Int64(n) => n,
                    other => i64::from(other.to_i32_exact().unwrap_or(1)),
                };
                Ok(Bson::DateTime(DateTime::from_millis(units::add(d.timestamp_millis(), unit, step, &Zone::Utc)?)))
            }
            (other, None) => {
                let n = Number::from_bson(other).ok_or_else(|| self.type_error())?;
                number::add(n, self.step)
                    .map(Number::to_bson)
                    .map_err(|_| Error::new(ErrorCode::Overflow, "$densify ran past the largest number"))
            }
            _ => Err(self.type_error()),
        }
    }

    fn type_error(&self) -> Error {
        let wanted = if self.unit.is_some() { "dates, as 'unit' is given" } else { "numbers, as no 'unit' is given" };
        Error::new(ErrorCode::Location5733201, format!("$densify: the values of '{}' must all be {wanted}", self.field))
    }

    /// The densified value of `document`: `None` when it has none (it passes through).
    fn value_of(&self, document: &RawDocumentBuf) -> Result<Option<Bson>> {
        let mut value = None;
        let mut current: Option<&bson::RawDocument> = Some(document);
        for (i, part) in self.path.iter().enumerate() {
            let Some(doc) = current else { break };
            match doc.get(part).map_err(invalid_bson)? {
                Some(RawBsonRef::Document(inner)) if i + 1 < self.path.len() => current = Some(inner),
                Some(v) if i + 1 == self.path.len() => value = Some(limits::to_bson(v)?),
                _ => current = None,
            }
        }
        match value {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::DateTime(d)) if self.unit.is_some() => Ok(Some(Bson::DateTime(d))),
            Some(v) if self.unit.is_none() && Number::from_bson(&v).is_some() => Ok(Some(v)),
            Some(_) => Err(self.type_error()),
        }
    }

    fn generated(&self, value: Bson, partition: &Document) -> Result<RawDocumentBuf> {
        let mut document = Document::new();
        for (field, v) in partition {
            let path: Vec<String> = field.split('.').map(str::to_owned).collect();
            set_path(&mut document, &path, v.clone());
        }
        set_path(&mut document, &self.path, value);
        raw(&document)
    }

    fn run(&self, stream: DocumentStream, env: &super::PipelineEnv) -> Result<Vec<RawDocumentBuf>> {
        let mut passing = Vec::new();
        let mut keys = GroupKeys::new(None);
        let mut partitions: Vec<(Document, Vec<(Bson, RawDocumentBuf)>)> = Vec::new();
        let mut bytes = 0usize;
        for document in stream {
            let document = document?;
            bytes += document.as_bytes().len();
            env.check_memory(bytes, |limit| format!("$densify exceeded its memory limit of {limit} bytes"))?;
            let Some(value) = self.value_of(&document)? else {
                passing.push(document);
                continue;
            };
            let mut key = Document::new();
            for field in &self.partition_fields {
                let mut found = None;
                crate::query::path::walk_sort_keys(&document, &crate::query::FieldPath::new(field), &mut |v| {
                    if found.is_none() {
                        found = Bson::try_from(v).ok();
                    }
                });
                key.insert(field.clone(), found.unwrap_or(Bson::Null));
            }
            let (group, new) = keys.group_of(RawBson::Document(raw(&key)?));
            if new {
                partitions.push((key, Vec::new()));
            }
            if let Some((_, members)) = partitions.get_mut(group) {
                members.push((value, document));
            }
        }
        let order = |a: &Bson, b: &Bson| match (RawBson::try_from(a.clone()), RawBson::try_from(b.clone())) {
            (Ok(a), Ok(b)) => compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref()),
            _ => std::cmp::Ordering::Equal,
        };
        for (_, members) in &mut partitions {
            members.sort_by(|a, b| order(&a.0, &b.0));
        }
        let all = partitions.iter().flat_map(|(_, m)| m.iter().map(|(v, _)| v));
        let (global_min, global_max) = all.fold((None::<Bson>, None::<Bson>), |(lo, hi), v| {
            let lo = match lo {
                Some(lo) if order(&lo, v).is_le() => Some(lo),
                _ => Some(v.clone()),
            };
            let hi = match hi {
                Some(hi) if order(&hi, v).is_ge() => Some(hi),
                _ => Some(v.clone()),
            };
            (lo, hi)
        });
        let mut out = passing;
        for (key, members) in partitions {
            let (start, end, inclusive) = match &self.bounds {
                Bounds::Full => (global_min.clone(), global_max.clone(), true),
                Bounds::Partition => (members.first().map(|m| m.0.clone()), members.last().map(|m| m.0.clone()), true),
                Bounds::Explicit(pair) => (Some(pair.0.clone()), Some(pair.1.clone()), false),
            };
            let (Some(mut cursor), Some(end)) = (start, end) else { continue };
            let within = |v: &Bson| if inclusive { order(v, &end).is_le() } else { order(v, &end).is_lt() };
            for (value, document) in members {
                while order(&cursor, &value).is_lt() && within(&cursor) {
                    out.push(self.generated(cursor.clone(), &key)?);
                    cursor = self.next(&cursor)?;
                }
                while order(&cursor, &value).is_le() {
                    cursor = self.next(&cursor)?;
                }
                out.push(document);
            }
            while within(&cursor) {
                out.push(self.generated(cursor.clone(), &key)?);
                cursor = self.next(&cursor)?;
            }
        }
        Ok(out)
    }
}

/// `$densify`: blocking.
pub(super) fn densify(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = Densify::parse(args.spec)?;
    let env = args.env.clone();
    Ok(deferred(move || Ok(Box::new(spec.run(stream, &env)?.into_iter().map(Ok)))))
}
