//! `$group` and the stages mongod builds on it: `$sortByCount` (a group counted, then sorted by
//! the count) and `$bucket` (a group by the boundary range a value falls in).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::{PipelineEnv, StageArgs, deferred, raw};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::spill::Runs;
use crate::query::agg::{Accumulator, AccumulatorSpec, GroupKeys};
use crate::query::expr::{Expression, Variables};
use crate::query::{SortSpec, compare_values, render};
use crate::state::cursors::DocumentStream;

/// A parsed `$group`: the key expression and the output accumulators.
struct GroupSpec {
    id: Expression,
    outputs: Vec<AccumulatorSpec>,
}

impl GroupSpec {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(Error::new(ErrorCode::Location15947, "a group's fields must be specified in an object"));
        };
        let mut id = None;
        let mut outputs = Vec::new();
        for element in spec {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            if key.as_str() == "_id" {
                id = Some(Expression::parse(value)?);
            } else {
                outputs.push(AccumulatorSpec::parse(key.as_str(), value)?);
            }
        }
        let id = id.ok_or_else(|| Error::new(ErrorCode::Location15955, "a group specification must include an _id"))?;
        Ok(Self { id, outputs })
    }
}

/// The key a document groups under.
type KeyOf<'a> = dyn FnMut(&RawDocument, &Variables) -> Result<Bson> + 'a;

/// Runs `spec` over `stream`: one document per distinct key, in the order keys first appear
/// (in key order when the groups spilled to disk).
fn run_group(stream: DocumentStream, spec: &GroupSpec, env: &PipelineEnv) -> Result<DocumentStream> {
    // A missing key groups with null, as in mongod.
    let mut key_of =
        |document: &RawDocument, vars: &Variables| Ok(spec.id.evaluate(document, vars)?.unwrap_or(Bson::Null));
    group_by_key(stream, &mut key_of, &spec.outputs, env)
}

/// Groups `stream` by `key_of`, accumulating `outputs` per group. Past the memory limit it
/// fails with 292, or with `allowDiskUse` writes every group's partial state to a sorted run
/// under the dbpath and starts over; the runs are then merged group by group.
fn group_by_key(
    stream: DocumentStream,
    key_of: &mut KeyOf<'_>,
    outputs: &[AccumulatorSpec],
    env: &PipelineEnv,
) -> Result<DocumentStream> {
    let vars = with_collation(env);
    let mut table = GroupTable::new(env);
    let mut runs = Runs::new(env.storage.temp_dir(), spill_order(env)?);
    for document in stream {
        let document = document?;
        let key = key_of(&document, &vars)?;
        let key = RawBson::try_from(key).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        table.add(key, &document, outputs, &vars)?;
        env.check_memory(table.bytes, |limit| {
            format!(
                "Exceeded memory limit for $group, but didn't allow external sort. Pass allowDiskUse:true to opt \
                 in. (limit: {limit} bytes)"
            )
        })?;
        if u64::try_from(table.bytes).unwrap_or(u64::MAX) > env.max_memory_bytes {
            runs.write(std::mem::replace(&mut table, GroupTable::new(env)).into_partials()?)?;
        }
    }
    if runs.is_empty() {
        return Ok(to_stream(table.finish(outputs)?));
    }
    let merged = runs.merge(table.into_partials()?)?;
    Ok(Box::new(MergedGroups { merged, outputs: outputs.to_vec(), vars, pending: None }))
}

/// The groups held in memory: their keys, accumulators and the bytes they take.
struct GroupTable {
    keys: GroupKeys,
    groups: Vec<Vec<Accumulator>>,
    bytes: usize,
}

impl GroupTable {
    fn new(env: &PipelineEnv) -> Self {
        Self { keys: GroupKeys::new(env.collation.clone()), groups: Vec::new(), bytes: 0 }
    }

    fn add(
        &mut self,
        key: RawBson,
        document: &RawDocument,
        outputs: &[AccumulatorSpec],
        vars: &Variables,
    ) -> Result<()> {
        let key_bytes = key_size(&key);
        let (group, new) = self.keys.group_of(key);
        if new {
            let key = self.keys.key(group);
            let mut accumulators: Vec<Accumulator> = outputs.iter().map(AccumulatorSpec::start).collect();
            for (output, acc) in outputs.iter().zip(accumulators.iter_mut()) {
                output.prepare(acc, key.map(RawBson::as_raw_bson_ref), vars)?;
            }
            self.groups.push(accumulators);
            self.bytes += key_bytes + GROUP_OVERHEAD;
        }
        let Some(accumulators) = self.groups.get_mut(group) else { return Ok(()) };
        for (output, acc) in outputs.iter().zip(accumulators.iter_mut()) {
            let before = acc.memory();
            output.add(acc, document, vars)?;
            // An accumulator that keeps n values ($lastN, $topN, ...) may hold less than before.
            self.bytes = self.bytes.saturating_add(acc.memory()).saturating_sub(before);
        }
        Ok(())
    }

    /// One result document per group, in the order keys first appeared.
    fn finish(self, outputs: &[AccumulatorSpec]) -> Result<Vec<Document>> {
        let mut out = Vec::with_capacity(self.groups.len());
        for (key, accumulators) in self.keys.into_keys().into_iter().zip(self.groups) {
            let id = Bson::try_from(key).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let mut document = doc! { "_id": id };
            for (output, acc) in outputs.iter().zip(accumulators) {
                document.insert(output.field.clone(), acc.finish(output.op));
            }
            out.push(document);
        }
        Ok(out)
    }

    /// Each group as `{k: {v: key}, s: [partial state, ...]}`, the form the runs hold. The
    /// key sits in a document so that the runs sort by its whole value (an array key
    /// compares element by element, not by its smallest element as a sort key would).
    fn into_partials(self) -> Result<Vec<RawDocumentBuf>> {
        let mut out = Vec::with_capacity(self.groups.len());
        for (key, accumulators) in self.keys.into_keys().into_iter().zip(self.groups) {
            let key = Bson::try_from(key).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let states = accumulators.iter().map(Accumulator::partial).collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(raw(&doc! { "k": { "v": key }, "s": states })?);
        }
        Ok(out)
    }
}

/// The order of spilled groups: by key, under the pipeline's collation.
fn spill_order(env: &PipelineEnv) -> Result<SortSpec> {
    Ok(SortSpec::parse(&bson::rawdoc! { "k": 1 })?.with_collation(env.collation.as_ref()))
}

/// The merge of spilled groups: consecutive partial states of one key are merged (in the
/// order they were written, which is input order) and finished into its result document.
struct MergedGroups {
    merged: DocumentStream,
    outputs: Vec<AccumulatorSpec>,
    vars: Variables,
    pending: Option<(RawBson, Vec<Accumulator>)>,
}

impl MergedGroups {
    fn finish(&self, (key, accumulators): (RawBson, Vec<Accumulator>)) -> Result<RawDocumentBuf> {
        let id = Bson::try_from(key).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let mut document = doc! { "_id": id };
        for (output, acc) in self.outputs.iter().zip(accumulators) {
            document.insert(output.field.clone(), acc.finish(output.op));
        }
        raw(&document)
    }

    /// Folds one spilled group into the pending one; returns the finished previous group when
    /// the key changed.
    fn fold(&mut self, spilled: &RawDocument) -> Result<Option<RawDocumentBuf>> {
        let corrupt = || Error::new(ErrorCode::InternalError, "a spilled $group run is malformed");
        let key = spilled.get_document("k").ok().and_then(|k| k.get("v").ok().flatten()).ok_or_else(corrupt)?;
        let states = spilled.get_array("s").map_err(|_| corrupt())?;
        let collation = self.vars.collation().map(AsRef::as_ref);
        let same = self
            .pending
            .as_ref()
            .is_some_and(|(k, _)| crate::query::compare_collated(k.as_raw_bson_ref(), key, collation).is_eq());
        let mut finished = None;
        if !same {
            let mut accumulators: Vec<Accumulator> = self.outputs.iter().map(AccumulatorSpec::start).collect();
            for (output, acc) in self.outputs.iter().zip(accumulators.iter_mut()) {
                output.prepare(acc, Some(key), &self.vars)?;
            }
            let fresh = (RawBson::from(key), accumulators);
            if let Some(previous) = self.pending.replace(fresh) {
                finished = Some(self.finish(previous)?);
            }
        }
        let Some((_, accumulators)) = self.pending.as_mut() else { return Ok(finished) };
        for ((output, acc), state) in self.outputs.iter().zip(accumulators.iter_mut()).zip(states) {
            let state = crate::query::limits::to_bson(state.map_err(|_| corrupt())?).map_err(|_| corrupt())?;
            acc.merge(output.op, &state, &self.vars)?;
        }
        Ok(finished)
    }
}

impl Iterator for MergedGroups {
    type Item = Result<RawDocumentBuf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.merged.next() {
                Some(Ok(spilled)) => match self.fold(&spilled) {
                    Ok(Some(done)) => return Some(Ok(done)),
                    Ok(None) => {}
                    Err(error) => return Some(Err(error)),
                },
                Some(Err(error)) => return Some(Err(error)),
                None => return self.pending.take().map(|last| self.finish(last)),
            }
        }
    }
}

/// What one group costs besides its key and values: its slot in the tables.
const GROUP_OVERHEAD: usize = 64;

fn key_size(value: &RawBson) -> usize {
    match value {
        RawBson::Document(d) => d.as_bytes().len(),
        RawBson::Array(a) => a.as_bytes().len(),
        RawBson::String(s) => s.len(),
        _ => 16,
    }
}

/// The pipeline's variables, with its collation for the comparisons of `$min`, `$max` and
/// `$addToSet`.
fn with_collation(env: &PipelineEnv) -> Variables {
    let mut vars = env.vars.clone();
    vars.set_collation(env.collation.clone());
    vars
}

/// The documents of a stream, for the stages that reorder their groups.
fn collect(stream: DocumentStream) -> Result<Vec<Document>> {
    stream
        .map(|d| Document::try_from(d?.as_ref()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())))
        .collect()
}

fn to_stream(documents: Vec<Document>) -> DocumentStream {
    Box::new(documents.into_iter().map(|d| raw(&d)))
}

/// `$group`: blocking.
pub(super) fn group(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = GroupSpec::parse(args.spec)?;
    let env = args.env.clone();
    Ok(deferred(move || run_group(stream, &spec, &env)))
}

/// `$sortByCount: expr`: `{$group: {_id: expr, count: {$sum: 1}}}`, then by count descending.
pub(super) fn sort_by_count(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let id = match args.spec {
        RawBsonRef::String(s) if s.starts_with('$') => Expression::parse(args.spec)?,
        RawBsonRef::Document(d)
            if d.iter().next().is_some_and(|e| e.is_ok_and(|(k, _)| k.as_str().starts_with('$'))) =>
        {
            Expression::parse(args.spec)?
        }
        RawBsonRef::Document(_) => {
            return Err(Error::new(
                ErrorCode::Location40149,
                "the sortByCount field must be specified as an object with an operator expression",
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorCode::Location40148,
                "the sortByCount field must be defined as a $-prefixed path or an expression",
            ));
        }
    };
    let count = bson::rawdoc! { "$sum": 1 };
    let spec = GroupSpec { id, outputs: vec![AccumulatorSpec::parse("count", RawBsonRef::Document(&count))?] };
    let env = args.env.clone();
    Ok(deferred(move || {
        let mut groups = collect(run_group(stream, &spec, &env)?)?;
        // Stable: equal counts keep the order their keys first appeared in.
        groups.sort_by(|a, b| {
            let count =
                |d: &Document| d.get("count").and_then(Bson::as_i64).or_else(|| d.get_i32("count").ok().map(i64::from));
            count(b).cmp(&count(a))
        });
        Ok(to_stream(groups))
    }))
}

/// A parsed `$bucket`.
struct BucketSpec {
    group_by: Expression,
    boundaries: Vec<RawBson>,
    default: Option<RawBson>,
    outputs: Vec<AccumulatorSpec>,
}

impl BucketSpec {
    fn parse(spec: RawBsonRef<'_>) -> Result<Self> {
        let RawBsonRef::Document(spec) = spec else {
            return Err(Error::new(
                ErrorCode::Location40201,
                format!(
                    "Argument to $bucket stage must be an object, but found type: {}",
                    render::type_name(spec.element_type())
                ),
            ));
        };
        let (mut group_by, mut boundaries, mut default, mut outputs) = (None, None, None, None);
        for element in spec {
            let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            match key.as_str() {
                "groupBy" => group_by = Some(parse_group_by(value)?),
                "boundaries" => boundaries = Some(parse_boundaries(value)?),
                "default" => default = Some(constant(value, ErrorCode::Location40195, "default")?),
                "output" => outputs = Some(parse_outputs(value)?),
                other => {
                    return Err(Error::new(
                        ErrorCode::Location40197,
                        format!("Unrecognized option to $bucket: {other}."),
                    ));
                }
            }
        }
        let (Some(group_by), Some(boundaries)) = (group_by, boundaries) else {
            return Err(Error::new(
                ErrorCode::Location40198,
                "$bucket requires 'groupBy' and 'boundaries' to be specified.",
            ));
        };
        if let (Some(default), Some(lowest), Some(highest)) = (&default, boundaries.first(), boundaries.last()) {
            let default = default.as_raw_bson_ref();
            let inside = compare_values(default, lowest.as_raw_bson_ref()).is_ge()
                && compare_values(default, highest.as_raw_bson_ref()).is_lt();
            if inside {
                return Err(Error::new(
                    ErrorCode::Location40199,
                    "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the \
                     highest boundary.",
                ));
            }
        }
        let outputs = match outputs {
            Some(outputs) => outputs,
            None => {
                let count = bson::rawdoc! { "$sum": 1 };
                vec![AccumulatorSpec::parse("count", RawBsonRef::Document(&count))?]
            }
        };
        Ok(Self { group_by, boundaries, default, outputs })
    }

    /// The `_id` of the bucket `value` falls in: the lower boundary of its range, else the
    /// default.
    fn bucket_of(&self, value: &Bson) -> Result<RawBson> {
        let value = RawBson::try_from(value.clone()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let v = value.as_raw_bson_ref();
        // Boundaries are ascending: the range is the last lower boundary at or below the value.
        let below = self.boundaries.partition_point(|b| compare_values(b.as_raw_bson_ref(), v).is_le());
        let in_range = below > 0 && below < self.boundaries.len();
        if in_range && let Some(lower) = self.boundaries.get(below - 1) {
            return Ok(lower.clone());
        }
        self.default.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::Location40066,
                "$switch could not find a matching branch for an input, and no default was specified.",
            )
        })
    }
}

fn parse_group_by(value: RawBsonRef<'_>) -> Result<Expression> {
    let is_operator =
        |d: &RawDocument| d.iter().next().is_some_and(|e| e.is_ok_and(|(k, _)| k.as_str().starts_with('$')));
    match value {
        RawBsonRef::String(s) if s.starts_with('$') => Ok(Expression::parse(value)?),
        RawBsonRef::Document(d) if is_operator(d) => Ok(Expression::parse(value)?),
        other => Err(Error::new(
            ErrorCode::Location40202,
            format!(
                "The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression, but found: {}",
                render::element("", other).trim_start_matches(": ")
            ),
        )),
    }
}

fn parse_boundaries(value: RawBsonRef<'_>) -> Result<Vec<RawBson>> {
    let items: Vec<RawBson> = match value {
        RawBsonRef::Array(a) => a
            .into_iter()
            .map(|v| v.map(RawBson::from).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())))
            .collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    if items.len() < 2 {
        return Err(Error::new(
            ErrorCode::Location40192,
            "The $bucket 'boundaries' field must be an array with at least two values",
        ));
    }
    for item in &items {
        constant(item.as_raw_bson_ref(), ErrorCode::Location40191, "boundaries")?;
    }
    for (a, b) in items.iter().zip(items.iter().skip(1)) {
        let (a, b) = (a.as_raw_bson_ref(), b.as_raw_bson_ref());
        if crate::query::canonical_type(a) != crate::query::canonical_type(b) {
            return Err(Error::new(
                ErrorCode::Location40193,
                "All values in the the 'boundaries' option to $bucket must have the same type.",
            ));
        }
        if !compare_values(a, b).is_lt() {
            return Err(Error::new(
                ErrorCode::Location40194,
                "The 'boundaries' option to $bucket must be sorted in ascending order",
            ));
        }
    }
    Ok(items)
}

/// A constant argument: anything but a field path or an expression object.
fn constant(value: RawBsonRef<'_>, code: ErrorCode, field: &str) -> Result<RawBson> {
    let is_path = matches!(value, RawBsonRef::String(s) if s.starts_with('$'));
    let is_expression = matches!(value, RawBsonRef::Document(d) if d.iter().next().is_some_and(|e| e.is_ok_and(|(k, _)| k.as_str().starts_with('$'))));
    if is_path || is_expression {
        return Err(Error::new(code, format!("The $bucket '{field}' field must be a constant")));
    }
    Ok(RawBson::from(value))
}

fn parse_outputs(value: RawBsonRef<'_>) -> Result<Vec<AccumulatorSpec>> {
    let RawBsonRef::Document(outputs) = value else {
        return Err(Error::new(
            ErrorCode::Location40196,
            format!(
                "The $bucket 'output' field must be an object, but found type: {}",
                render::type_name(value.element_type())
            ),
        ));
    };
    let mut specs = Vec::new();
    for element in outputs {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        specs.push(AccumulatorSpec::parse(key.as_str(), value)?);
    }
    Ok(specs)
}

/// `$bucket`: blocking; one document per non-empty bucket, ordered by `_id`.
pub(super) fn bucket(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let spec = BucketSpec::parse(args.spec)?;
    let env = args.env.clone();
    Ok(deferred(move || {
        let mut key_of = |document: &RawDocument, vars: &Variables| {
            let value = spec.group_by.evaluate(document, vars)?.unwrap_or(Bson::Null);
            Bson::try_from(spec.bucket_of(&value)?).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
        };
        let mut groups = collect(group_by_key(stream, &mut key_of, &spec.outputs, &env)?)?;
        groups.sort_by(|a, b| {
            let (Some(a), Some(b)) = (a.get("_id"), b.get("_id")) else { return std::cmp::Ordering::Equal };
            match (RawBson::try_from(a.clone()), RawBson::try_from(b.clone())) {
                (Ok(a), Ok(b)) => compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref()),
                _ => std::cmp::Ordering::Equal,
            }
        });
        Ok(to_stream(groups))
    }))
}

/// `$bucketAuto`: blocking; `buckets` buckets of about equal counts over the sorted `groupBy`
/// values, equal values always in one bucket, each `_id` the `{min, max}` of its range.
pub(super) fn bucket_auto(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let RawBsonRef::Document(spec) = args.spec else {
        return Err(Error::new(
            ErrorCode::Location40240,
            format!(
                "The argument to $bucketAuto must be an object, but found type: {}",
                render::type_name(args.spec.element_type())
            ),
        ));
    };
    let (mut group_by, mut buckets, mut outputs) = (None, None, None);
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "groupBy" => {
                group_by = Some(parse_group_by(value).map_err(|e| {
                    Error::new(ErrorCode::Location40239, e.message().replace("$bucket ", "$bucketAuto "))
                })?)
            }
            "buckets" => {
                let n =
                    crate::query::number::Number::from_raw(value).and_then(|n| n.to_i32_exact()).ok_or_else(|| {
                        Error::new(ErrorCode::Location40242, "The $bucketAuto 'buckets' field must be an integer")
                    })?;
                if n <= 0 {
                    return Err(Error::new(
                        ErrorCode::Location40243,
                        format!("The $bucketAuto 'buckets' field must be greater than 0, but found: {n}"),
                    ));
                }
                buckets = Some(usize::try_from(n).unwrap_or(1));
            }
            "output" => outputs = Some(parse_outputs(value)?),
            "granularity" => {
                return Err(Error::new(ErrorCode::NotImplemented, "$bucketAuto granularity is not supported yet"));
            }
            other => {
                return Err(Error::new(
                    ErrorCode::Location40245,
                    format!("Unrecognized option to $bucketAuto: {other}."),
                ));
            }
        }
    }
    let (Some(group_by), Some(buckets)) = (group_by, buckets) else {
        return Err(Error::new(
            ErrorCode::Location40246,
            "$bucketAuto requires 'groupBy' and 'buckets' to be specified",
        ));
    };
    let outputs = match outputs {
        Some(outputs) => outputs,
        None => {
            let count = bson::rawdoc! { "$sum": 1 };
            vec![AccumulatorSpec::parse("count", RawBsonRef::Document(&count))?]
        }
    };
    let env = args.env.clone();
    Ok(deferred(move || {
        let vars = with_collation(&env);
        // Each document goes into the sort wrapped as `{k: {v: value}, d: document}`, so that
        // it sorts by the whole value; past the memory limit the sort spills (with
        // `allowDiskUse`) or the stage fails with 292.
        let seen = Arc::new(AtomicUsize::new(0));
        let (counter, key_env, key_vars) = (seen.clone(), env.clone(), vars.clone());
        let mut bytes = 0usize;
        let wrapped: DocumentStream = Box::new(stream.map(move |document| {
            let document = document?;
            let value = group_by.evaluate(&document, &key_vars)?.unwrap_or(Bson::Null);
            bytes += document.as_bytes().len();
            key_env.check_memory(bytes, |limit| {
                format!(
                    "$bucketAuto exceeded its memory limit of {limit} bytes, but did not opt in to external sorting."
                )
            })?;
            counter.fetch_add(1, AtomicOrdering::Relaxed);
            let document =
                Document::try_from(document.as_ref()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            raw(&doc! { "k": { "v": value }, "d": document })
        }));
        let limit = usize::try_from(env.max_memory_bytes).unwrap_or(usize::MAX);
        let sorted = crate::exec::spill::sort(wrapped, spill_order(&env)?, limit, env.storage.temp_dir())?;
        let n = seen.load(AtomicOrdering::Relaxed);
        let size = ((n as f64 / buckets as f64).round() as usize).max(1);
        let mut sorted = sorted.peekable();
        let collation = env.collation.clone();
        let key = |wrapped: &RawDocumentBuf| -> Result<RawBson> {
            wrapped
                .get_document("k")
                .ok()
                .and_then(|k| k.get("v").ok().flatten())
                .map(RawBson::from)
                .ok_or_else(|| Error::new(ErrorCode::InternalError, "a $bucketAuto sort entry is malformed"))
        };
        let to_bson = |v: RawBson| Bson::try_from(v).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()));
        let mut out = Vec::new();
        while let Some(first) = sorted.next() {
            let first = first?;
            let min = key(&first)?;
            let mut accumulators: Vec<Accumulator> = outputs.iter().map(AccumulatorSpec::start).collect();
            let mut members = 0usize;
            let mut last_key = min.clone();
            let mut current = Some(first);
            let last_bucket = out.len() + 1 == buckets;
            loop {
                if let Some(member) = current.take() {
                    let document =
                        member.get_document("d").map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
                    for (output, acc) in outputs.iter().zip(accumulators.iter_mut()) {
                        output.add(acc, document, &vars)?;
                    }
                    members += 1;
                }
                // A bucket ends at its size (the last one never), but equal values stay together.
                let next_key = match sorted.peek() {
                    Some(Ok(next)) => Some(key(next)?),
                    Some(Err(_)) => None,
                    None => break,
                };
                let same = next_key.as_ref().is_some_and(|k| {
                    crate::query::compare_collated(
                        k.as_raw_bson_ref(),
                        last_key.as_raw_bson_ref(),
                        collation.as_deref(),
                    )
                    .is_eq()
                });
                if members >= size && !last_bucket && !same {
                    break;
                }
                match sorted.next() {
                    Some(next) => {
                        let next = next?;
                        last_key = key(&next)?;
                        current = Some(next);
                    }
                    None => break,
                }
            }
            let max = match sorted.peek() {
                Some(Ok(next)) => key(next)?,
                _ => last_key,
            };
            let mut document = doc! { "_id": { "min": to_bson(min)?, "max": to_bson(max)? } };
            for (output, acc) in outputs.iter().zip(accumulators) {
                document.insert(output.field.clone(), acc.finish(output.op));
            }
            out.push(document);
        }
        Ok(to_stream(out))
    }))
}

/// A `$group` that only counts: a constant `_id` and `$sum`s of constant numbers (or
/// `$count`), as drivers' `countDocuments` sends. Over a whole collection it is answered from
/// the stored document count, as mongod answers it from its collection metadata.
pub struct CountOnlyGroup {
    id: Bson,
    sums: Vec<(String, crate::query::number::Number)>,
}

impl CountOnlyGroup {
    /// The counting `$group` of `stage` (a whole stage document), if it is one.
    pub fn of(stage: RawBsonRef<'_>) -> Option<Self> {
        use crate::query::number::Number;
        let RawBsonRef::Document(stage) = stage else { return None };
        let (name, spec) = super::single_field(stage).ok()?;
        let RawBsonRef::Document(spec) = spec else { return None };
        if name != "$group" {
            return None;
        }
        let mut id = None;
        let mut sums = Vec::new();
        for element in spec {
            let (key, value) = element.ok()?;
            if key.as_str() == "_id" {
                // A constant: not a path, not an expression object or array.
                let constant = !matches!(value, RawBsonRef::String(s) if s.starts_with('$'))
                    && !matches!(value, RawBsonRef::Document(_) | RawBsonRef::Array(_));
                id = constant.then(|| Bson::try_from(value).ok()).flatten();
                continue;
            }
            let RawBsonRef::Document(accumulator) = value else { return None };
            let (op, arg) = super::single_field(accumulator).ok()?;
            let addend = match (op, arg) {
                ("$sum", arg) => Number::from_raw(arg)?,
                ("$count", RawBsonRef::Document(d)) if d.is_empty() => Number::Int32(1),
                _ => return None,
            };
            sums.push((key.as_str().to_owned(), addend));
        }
        Some(Self { id: id?, sums })
    }

    /// The group's documents over `count` documents: none for none.
    ///
    /// # Errors
    /// 1 InternalError if a document does not encode.
    pub fn documents(&self, count: u64) -> Result<DocumentStream> {
        use crate::query::number::{Number, mul};
        if count == 0 {
            return Ok(Box::new(std::iter::empty()));
        }
        let n = i64::try_from(count).unwrap_or(i64::MAX);
        let n = i32::try_from(n).map_or(Number::Int64(n), Number::Int32);
        let mut document = doc! { "_id": self.id.clone() };
        for (field, addend) in &self.sums {
            // An int64 overflow is a double, as `$sum` widens.
            let total = mul(*addend, n).unwrap_or_else(|_| Number::Double(addend.to_f64() * n.to_f64()));
            document.insert(field.clone(), total.to_bson());
        }
        Ok(Box::new(std::iter::once(raw(&document))))
    }
}
