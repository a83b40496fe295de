//! `find` projections: inclusion (`{a: 1}`) or exclusion (`{a: 0}`), dotted paths and
//! sub-documents, `_id` included unless `_id: 0`.
//!
//! The spec becomes a tree of paths; applying it walks the document once, keeping the
//! document's own field order (as mongod does) and reaching through arrays of documents.
//! The find-only operators are built: `$slice` (a node of the tree), `$elemMatch` (top-level
//! fields appended after the walk, as mongod does) and positional `a.$` (an inclusion whose
//! first array is then cut down to the element the query matched). Computed fields (mongod
//! 4.4+): an expression object (`{t: {$add: ["$a", 1]}}`) or any value that is not a number
//! or a boolean (`{a: "$b"}`, `{s: "text"}`, `{l: [1, "$x"]}`) is evaluated against the whole
//! document and added after the included fields, in spec order. `$meta` answers 238
//! NotImplemented until text search exists.

use std::sync::Arc;

use bson::raw::CStr;
use bson::{Bson, Document, RawArray, RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf, rawdoc};

use super::collation::Collation;
use super::elements::{fields, items};
use super::error::QueryError;
use super::expr::{Budget, Expression, Variables, is_expression_name};
use super::filter::{Filter, true_value};
use super::limits::MAX_BSON_DEPTH;
use super::render;
use crate::error::ErrorCode;

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    root: Children,
    /// `field: {$elemMatch: ...}` entries, in spec order: the field and the filter
    /// `{field: {$elemMatch: ...}}` whose matching element is kept.
    elem_matches: Vec<(String, Filter)>,
    /// A positional projection: the path before `.$` and the query that resolves it.
    positional: Option<(Vec<String>, Filter)>,
    /// Whether the tree holds computed fields (only in an inclusion projection).
    has_computed: bool,
    /// The command's `let` variables, for computed fields.
    vars: Variables,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An empty projection: the whole document.
    Whole,
    /// Only the listed paths (and `_id` unless excluded).
    Include,
    /// Everything but the listed paths.
    Exclude,
}

type Children = Vec<(String, Node)>;

#[derive(Debug, Clone)]
enum Node {
    /// A path named by the spec: included (`true`) or excluded.
    Leaf(bool),
    /// A prefix of longer paths.
    Inner(Children),
    /// `$slice`: `limit` elements from `skip` (from the end when negative); without `skip`,
    /// the first `limit` (or the last `-limit`) elements.
    Slice { skip: Option<i32>, limit: i32 },
    /// A top-level `$elemMatch`; applied after the walk, see [`Projection::elem_matches`].
    ElemMatch,
    /// A computed field: an expression evaluated against the whole document.
    Computed(Expression),
}

/// What parsing has learnt so far (mongod's `ParseContext`).
#[derive(Default)]
struct Context<'q> {
    mode: Option<Mode>,
    id_specified: bool,
    /// `{_id: 1}` at the top (mongod's `idIncludedEntirely`).
    id_included: bool,
    has_slice: bool,
    /// Whether `find`'s own operators (`$slice` syntax, `$elemMatch`, positional) apply; not
    /// in an aggregation `$project`.
    find_features: bool,
    query: Option<&'q Filter>,
    has_computed: bool,
    elem_matches: Vec<(String, Filter)>,
    positional: Option<(Vec<String>, Filter)>,
}

impl Projection {
    /// Parses a projection spec that has no query beside it (so a positional `a.$` cannot be
    /// resolved).
    ///
    /// # Errors
    /// See [`Projection::parse_with_query`]; a positional projection is 51050.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        Self::parse_inner(spec, None, true)
    }

    /// Parses the spec of an aggregation `$project` stage, where `find`'s own operators do not
    /// exist: `$slice` is the aggregation expression and `$elemMatch` and positional paths are
    /// refused.
    ///
    /// # Errors
    /// As [`Projection::parse_with_query`], plus 31324 for a positional path and 168
    /// InvalidPipelineOperator for `$elemMatch`.
    pub fn parse_aggregate(spec: &RawDocument) -> Result<Self, QueryError> {
        Self::parse_inner(spec, None, false)
    }

    /// Parses a `find` projection spec; `query` resolves positional projections.
    ///
    /// # Errors
    /// mongod's codes: 31253/31254 for mixing inclusion and exclusion, 31249/31250 for path
    /// collisions, 51270 for an empty sub-projection, 40352/40353/15998/16410 for bad field
    /// paths, 31257-31259/31272/31273/28667 for `$slice`, 31274/31275/31255 for `$elemMatch`,
    /// 31256/31270/31271/31276/31277/31287/31308 for positional projections; 31252/31310
    /// for a computed field in an exclusion projection, 31325 for an unknown `$`-name and
    /// the expression parse errors; 238 NotImplemented for `$meta`.
    pub fn parse_with_query(spec: &RawDocument, query: &Filter) -> Result<Self, QueryError> {
        Self::parse_inner(spec, Some(query), true)
    }

    /// Makes `$elemMatch` projections compare strings under `collation`, as the query does
    /// (a positional projection already uses the query, collation included).
    #[must_use]
    pub fn with_collation(mut self, collation: Option<&Arc<Collation>>) -> Self {
        if let Some(collation) = collation {
            self.elem_matches.iter_mut().for_each(|(_, filter)| filter.set_collation(collation));
        }
        self
    }

    fn parse_inner(spec: &RawDocument, query: Option<&Filter>, find_features: bool) -> Result<Self, QueryError> {
        if spec.is_empty() {
            return Ok(Self {
                mode: Mode::Whole,
                root: Vec::new(),
                elem_matches: Vec::new(),
                positional: None,
                has_computed: false,
                vars: Variables::new(),
            });
        }
        let mut cx = Context { query, find_features, ..Context::default() };
        let mut root = Vec::new();
        for item in spec.iter() {
            let (key, value) = item.map_err(QueryError::invalid_bson)?;
            let key = key.as_str();
            cx.id_specified |= key == "_id" || key.starts_with("_id.");
            parse_element(&mut cx, key, value, &mut root, None)?;
        }
        // mongod's `computeProjectionType` for specs without a plain inclusion or exclusion.
        let mode = cx.mode.unwrap_or(if cx.has_slice {
            if cx.id_included { Mode::Include } else { Mode::Exclude }
        } else if !cx.elem_matches.is_empty() || cx.id_included {
            Mode::Include
        } else {
            Mode::Exclude
        });
        if mode == Mode::Include && !cx.id_specified {
            root.push(("_id".to_owned(), Node::Leaf(true)));
        }
        if mode == Mode::Exclude {
            // `{_id: 1, a: 0}` is an exclusion that keeps `_id`: nothing to do for `_id`.
            root.retain(|(key, node)| !(key == "_id" && matches!(node, Node::Leaf(true))));
        }
        Ok(Self {
            mode,
            root,
            elem_matches: cx.elem_matches,
            positional: cx.positional,
            has_computed: cx.has_computed,
            vars: Variables::new(),
        })
    }

    /// Binds a command's `let` variables for the computed fields.
    #[must_use]
    pub fn with_variables(mut self, vars: &Variables) -> Self {
        self.vars = vars.clone();
        self
    }

    /// Whether the projection returns documents unchanged.
    pub fn is_whole_document(&self) -> bool {
        self.mode == Mode::Whole
    }

    /// The projected copy of `doc`, which must match the query the projection was parsed with.
    ///
    /// # Errors
    /// 51246 when a positional projection meets an array but the query matched `doc` without
    /// an array element, 51247 when that element is not in the projected array; the
    /// evaluation errors of computed fields.
    pub fn apply(&self, doc: &RawDocument) -> Result<RawDocumentBuf, QueryError> {
        let mut out = match self.mode {
            Mode::Whole => return Ok(doc.to_owned()),
            Mode::Include => include_document(doc, &self.root, 0),
            Mode::Exclude => exclude_document(doc, &self.root, 0),
        };
        if self.has_computed {
            let mut owned = super::limits::to_document(&out)?;
            add_computed(&mut owned, &self.root, doc, &self.vars, &mut Budget::default())?;
            out = RawDocumentBuf::try_from(&owned).map_err(QueryError::invalid_bson)?;
        }
        if let Some((path, query)) = &self.positional {
            out = apply_positional(&out, path, query.first_array_match(doc))?;
        }
        for (field, filter) in &self.elem_matches {
            let element = filter.first_array_match(doc).and_then(|position| match doc.get(field) {
                Ok(Some(RawBsonRef::Array(arr))) => items(arr).nth(position),
                _ => None,
            });
            out = set_top_level(&out, field, element);
        }
        Ok(out)
    }
}

/// `doc` with `field` set to `[value]` (in place when present, appended otherwise), or removed
/// when `value` is `None`: how mongod writes an `$elemMatch` projection's result.
fn set_top_level(doc: &RawDocument, field: &str, value: Option<RawBsonRef<'_>>) -> RawDocumentBuf {
    let single = value.map(|v| {
        let mut arr = RawArrayBuf::new();
        arr.push(v);
        arr
    });
    let mut out = RawDocumentBuf::new();
    let mut placed = false;
    for (key, existing) in doc.iter().map_while(Result::ok) {
        if key.as_str() != field {
            out.append(key, existing);
        } else if let Some(arr) = &single {
            out.append(key, arr.clone());
            placed = true;
        }
    }
    if let (false, Some(arr), Ok(key)) = (placed, single, <&CStr>::try_from(field)) {
        out.append(key, arr);
    }
    out
}

/// mongod's `applyPositionalProjection`: the first array along `path` in the projected
/// document becomes a one-element array holding the element the query matched.
fn apply_positional(doc: &RawDocument, path: &[String], key: Option<usize>) -> Result<RawDocumentBuf, QueryError> {
    let Some((first, rest)) = path.split_first() else { return Ok(doc.to_owned()) };
    let mut out = RawDocumentBuf::new();
    for (name, value) in doc.iter().map_while(Result::ok) {
        if name.as_str() != first {
            out.append(name, value);
            continue;
        }
        match value {
            RawBsonRef::Array(arr) => {
                let position = key.ok_or_else(|| {
                    QueryError::new(
                        ErrorCode::Location51246,
                        "positional operator '.$' couldn't find a matching element in the array",
                    )
                })?;
                let element = items(arr).nth(position).ok_or_else(|| {
                    QueryError::new(ErrorCode::Location51247, "positional operator '.$' element mismatch")
                })?;
                let mut single = RawArrayBuf::new();
                single.push(element);
                out.append(name, single);
            }
            RawBsonRef::Document(sub) if !rest.is_empty() => out.append(name, apply_positional(sub, rest, key)?),
            other => out.append(name, other),
        }
    }
    Ok(out)
}

/// Where the first positional operator is in a projection path: `.$.` inside, `.$` at the
/// end, or the whole path `$` (mongod's `findFirstPositionalOperator`).
fn find_positional(path: &str) -> Option<(usize, usize)> {
    if let Some(at) = path.find(".$.") {
        return Some((at, at + 3));
    }
    if path.ends_with(".$") {
        return Some((path.len() - 2, path.len()));
    }
    (path == "$").then_some((0, path.len()))
}

fn parse_element(
    cx: &mut Context<'_>,
    key: &str,
    value: RawBsonRef<'_>,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    // The full path (a sub-object's keys continue its parent's) is one `FieldPath`, so the
    // projection tree and every walk over it stay within 200 levels.
    let prefix_parts = prefix.map_or(0, |p| p.split('.').count());
    super::limits::check_field_path_parts(prefix_parts + key.split('.').count())?;
    let positional = find_positional(key);
    if positional.is_some() && !cx.find_features {
        return Err(QueryError::new(
            ErrorCode::Location31324,
            "Cannot use positional projection in aggregation projection",
        ));
    }
    match value {
        RawBsonRef::Document(sub) => {
            if positional.is_some() {
                return Err(QueryError::new(
                    ErrorCode::Location31271,
                    "positional projection cannot be used with an expression or sub object",
                ));
            }
            parse_sub_object(cx, key, sub, parent, prefix)
        }
        RawBsonRef::Boolean(_)
        | RawBsonRef::Int32(_)
        | RawBsonRef::Int64(_)
        | RawBsonRef::Double(_)
        | RawBsonRef::Decimal128(_) => {
            let include = true_value(value);
            let top_level_id = prefix.is_none() && key == "_id";
            match positional {
                Some(location) if include => parse_positional(cx, key, location, parent, prefix)?,
                _ => add_node(parent, key, Node::Leaf(include))?,
            }
            if top_level_id {
                cx.id_included = include;
                return Ok(());
            }
            set_mode(cx, key, if include { Mode::Include } else { Mode::Exclude })
        }
        _ if positional.is_some() => {
            Err(QueryError::new(ErrorCode::Location31308, "positional projection cannot be used with a literal"))
        }
        // mongod's `parseLiteral`: a string starting with `$` is a field path, an array an
        // array expression, anything else a constant.
        _ => {
            add_node(parent, key, Node::Computed(Expression::parse(value)?))?;
            cx.has_computed = true;
            if cx.mode == Some(Mode::Exclude) {
                return Err(QueryError::new(
                    ErrorCode::Location31310,
                    format!("Cannot use an expression {} in an exclusion projection", render::element(key, value)),
                ));
            }
            cx.mode = Some(Mode::Include);
            Ok(())
        }
    }
}

/// mongod's `attemptToParseGenericExpression`: `{key: {$op: ...}}` as a computed field.
fn parse_expression(
    cx: &mut Context<'_>,
    key: &str,
    op: &str,
    sub: &RawDocument,
    parent: &mut Children,
) -> Result<(), QueryError> {
    let is_meta = op == "$meta";
    if cx.mode == Some(Mode::Exclude) && !is_meta {
        return Err(QueryError::new(
            ErrorCode::Location31252,
            "Cannot use expression other than $meta in exclusion projection",
        ));
    }
    let expr = Expression::parse(RawBsonRef::Document(sub))?;
    add_node(parent, key, Node::Computed(expr))?;
    cx.has_computed = true;
    cx.mode = Some(Mode::Include);
    Ok(())
}

/// mongod's positional branch of `parseInclusion`.
fn parse_positional(
    cx: &mut Context<'_>,
    key: &str,
    (begin, end): (usize, usize),
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    if cx.positional.is_some() {
        return Err(QueryError::new(
            ErrorCode::Location31276,
            "Cannot specify more than one positional projection per query.",
        ));
    }
    if !cx.elem_matches.is_empty() {
        return Err(QueryError::new(ErrorCode::Location31256, "Cannot specify positional operator and $elemMatch."));
    }
    let Some(query) = cx.query else {
        return Err(QueryError::new(
            ErrorCode::Location51050,
            "Projections with a positional operator require a matcher",
        ));
    };
    let full_key = match prefix {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key.to_owned(),
    };
    let match_field = full_key.split('.').next().unwrap_or_default();
    if !query.has_path_with_prefix(match_field) {
        return Err(QueryError::new(
            ErrorCode::Location31277,
            format!("Positional projection '{key}' does not match the query document."),
        ));
    }
    if key.ends_with(".$.") {
        return Err(QueryError::new(ErrorCode::Location31270, "Path cannot end with '.$.'"));
    }
    let remaining = key.get(end..).unwrap_or_default();
    if find_positional(remaining).is_some() || remaining == "$" {
        return Err(QueryError::new(ErrorCode::Location31287, format!("Cannot use positional operator twice: {key}")));
    }
    let before = key.get(..begin).unwrap_or_default();
    add_node(parent, before, Node::Leaf(true))?;
    let full_before = match prefix {
        Some(prefix) => format!("{prefix}.{before}"),
        None => before.to_owned(),
    };
    cx.positional = Some((full_before.split('.').map(str::to_owned).collect(), query.clone()));
    Ok(())
}

fn set_mode(cx: &mut Context<'_>, key: &str, mode: Mode) -> Result<(), QueryError> {
    match (cx.mode, mode) {
        (Some(Mode::Exclude), Mode::Include) => Err(QueryError::new(
            ErrorCode::Location31253,
            format!("Cannot do inclusion on field {key} in exclusion projection"),
        )),
        (Some(Mode::Include), Mode::Exclude) => Err(QueryError::new(
            ErrorCode::Location31254,
            format!("Cannot do exclusion on field {key} in inclusion projection"),
        )),
        _ => {
            cx.mode = Some(mode);
            Ok(())
        }
    }
}

/// `{a: {...}}`: an expression such as `{$slice: 2}` when it has one `$` field, otherwise a
/// sub-projection whose paths are relative to `a`.
fn parse_sub_object(
    cx: &mut Context<'_>,
    key: &str,
    sub: &RawDocument,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    let mut sub_fields = fields(sub);
    let Some((first, first_value)) = sub_fields.next() else {
        return Err(QueryError::new(ErrorCode::Location51270, format!("Invalid empty sub-projection: {key}")));
    };
    if first.starts_with('$') && sub_fields.next().is_none() {
        return match first {
            "$slice" if cx.find_features => parse_slice(cx, key, sub, first_value, parent),
            "$elemMatch" if cx.find_features => parse_elem_match(cx, key, first_value, parent, prefix),
            "$elemMatch" => {
                Err(QueryError::new(ErrorCode::InvalidPipelineOperator, "Cannot use $elemMatch in this context"))
            }
            _ if is_expression_name(first) => parse_expression(cx, key, first, sub, parent),
            // A `$` name is never a valid field path, so mongod's fallback always refuses it.
            _ => Err(QueryError::new(ErrorCode::Location31325, format!("Unknown expression {first}"))),
        };
    }
    let parts = super::path::checked_parts(key)?;
    if inner_at(parent, &parts).is_none() {
        add_node(parent, key, Node::Inner(Vec::new()))?;
    }
    let children = inner_at(parent, &parts)
        .ok_or_else(|| QueryError::new(ErrorCode::InternalError, format!("projection path {key} vanished")))?;
    let full_key = match prefix {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key.to_owned(),
    };
    for (child_key, child_value) in fields(sub) {
        parse_element(cx, child_key, child_value, children, Some(&full_key))?;
    }
    Ok(())
}

/// mongod's `attemptToParseFindSlice`. Arguments that are not find syntax fall back, as in
/// mongod, to the aggregation `$slice` expression (a computed field); when that does not
/// parse either, its error comes back with both reasons in the message.
fn parse_slice(
    cx: &mut Context<'_>,
    key: &str,
    sub: &RawDocument,
    arg: RawBsonRef<'_>,
    parent: &mut Children,
) -> Result<(), QueryError> {
    let find_syntax = match arg {
        RawBsonRef::Array(arr) => {
            let entries: Vec<RawBsonRef<'_>> = items(arr).collect();
            match entries.as_slice() {
                [skip, limit] => {
                    if !is_number(*skip) {
                        Err(QueryError::new(
                            ErrorCode::Location31257,
                            format!("$slice expects the skip argument to be a number, got {}", type_of(*skip)),
                        ))
                    } else if !is_number(*limit) {
                        Err(QueryError::new(
                            ErrorCode::Location31258,
                            format!("$slice expects the limit argument to be a number, got {}", type_of(*limit)),
                        ))
                    } else if number_int(*limit) <= 0 {
                        Err(QueryError::new(
                            ErrorCode::Location31259,
                            format!("$slice limit must be positive, got {}", number_int(*limit)),
                        ))
                    } else {
                        Ok(Node::Slice { skip: Some(number_int(*skip)), limit: number_int(*limit) })
                    }
                }
                _ => Err(QueryError::new(
                    ErrorCode::Location31272,
                    "$slice array argument should be of form [skip, limit]",
                )),
            }
        }
        value if is_number(value) => Ok(Node::Slice { skip: None, limit: number_int(value) }),
        _ => Err(QueryError::new(ErrorCode::Location31273, "$slice only supports numbers and [skip, limit] arrays")),
    };
    let node = match find_syntax {
        Ok(node) => node,
        Err(find_error) => {
            return parse_expression(cx, key, "$slice", sub, parent).map_err(|expr_error| {
                let spec = render::element("$slice", arg);
                QueryError::new(
                    expr_error.code(),
                    format!(
                        "Invalid $slice syntax. The given syntax {{ {spec} }} did not match the find() syntax \
                         because :: {}: {} :: The given syntax did not match the expression $slice syntax. :: \
                         caused by :: {}",
                        find_error.code().name(),
                        find_error.message(),
                        expr_error.message()
                    ),
                )
            });
        }
    };
    add_node(parent, key, node)?;
    cx.has_slice = true;
    Ok(())
}

/// A `$elemMatch` projection: checked like mongod, compiled to the filter
/// `{key: {$elemMatch: arg}}`.
fn parse_elem_match(
    cx: &mut Context<'_>,
    key: &str,
    arg: RawBsonRef<'_>,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(QueryError::new(
            ErrorCode::Location31274,
            format!("elemMatch: Invalid argument, object required, but got {}", type_of(arg)),
        ));
    };
    if cx.positional.is_some() {
        return Err(QueryError::new(ErrorCode::Location31255, "Cannot specify positional operator and $elemMatch."));
    }
    if prefix.is_some() || key.contains('.') {
        return Err(QueryError::new(ErrorCode::Location31275, "Cannot use $elemMatch projection on a nested field."));
    }
    let field = <&CStr>::try_from(key).map_err(QueryError::invalid_bson)?;
    let mut filter_doc = RawDocumentBuf::new();
    filter_doc.append(field, rawdoc! { "$elemMatch": spec.to_owned() });
    let filter = Filter::parse(&filter_doc)?;
    add_node(parent, key, Node::ElemMatch)?;
    cx.elem_matches.push((key.to_owned(), filter));
    Ok(())
}

fn is_number(v: RawBsonRef<'_>) -> bool {
    matches!(v, RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_))
}

/// mongod's `BSONElement::numberInt`: integers wrap to 32 bits, doubles truncate.
fn number_int(v: RawBsonRef<'_>) -> i32 {
    match v {
        RawBsonRef::Int32(i) => i,
        // Keeping the low 32 bits is what a C++ cast to int does.
        RawBsonRef::Int64(i) => i as i32,
        // A saturating cast: mongod's double-to-int conversion for out-of-range values is
        // undefined, saturation is the sane reading.
        RawBsonRef::Double(d) => d as i32,
        RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().map_or(0, |d| d as i32),
        _ => 0,
    }
}

fn type_of(v: RawBsonRef<'_>) -> &'static str {
    render::type_name(v.element_type())
}

/// The inner node at `parts`, if every step exists and is inner.
fn inner_at<'a>(children: &'a mut Children, parts: &[&str]) -> Option<&'a mut Children> {
    let (first, rest) = parts.split_first()?;
    let (_, node) = children.iter_mut().find(|(name, _)| name == first)?;
    let Node::Inner(grandchildren) = node else { return None };
    if rest.is_empty() { Some(grandchildren) } else { inner_at(grandchildren, rest) }
}

/// Adds `node` at the dotted `path` below `children`, as mongod's `addNodeAtPath`.
fn add_node(children: &mut Children, path: &str, node: Node) -> Result<(), QueryError> {
    let parts = super::path::checked_parts(path)?;
    let tail = parts.get(1..).unwrap_or_default().join(".");
    add_node_at(children, &parts, path, &tail, node)
}

fn add_node_at(children: &mut Children, parts: &[&str], full: &str, tail: &str, node: Node) -> Result<(), QueryError> {
    let Some((first, rest)) = parts.split_first() else { return Ok(()) };
    let existing = children.iter().position(|(name, _)| name == first);
    if rest.is_empty() {
        if existing.is_some() {
            return Err(QueryError::new(ErrorCode::Location31250, format!("Path collision at {full}")));
        }
        children.push(((*first).to_owned(), node));
        return Ok(());
    }
    let index = match existing {
        Some(index) => index,
        None => {
            children.push(((*first).to_owned(), Node::Inner(Vec::new())));
            children.len() - 1
        }
    };
    match children.get_mut(index).map(|(_, n)| n) {
        Some(Node::Inner(grandchildren)) => add_node_at(grandchildren, rest, full, tail, node),
        _ => {
            Err(QueryError::new(ErrorCode::Location31249, format!("Path collision at {full} remaining portion {tail}")))
        }
    }
}

fn child<'a>(children: &'a Children, key: &str) -> Option<&'a Node> {
    children.iter().find(|(name, _)| name == key).map(|(_, node)| node)
}

/// The included part of `doc`, `depth` documents and arrays down.
fn include_document(doc: &RawDocument, children: &Children, depth: usize) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(true)), _) => out.append(key, value),
            (Some(Node::Slice { skip, limit }), RawBsonRef::Array(a)) => out.append(key, slice(a, *skip, *limit)),
            (Some(Node::Slice { .. }), _) => out.append(key, value),
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, include_document(d, sub, depth + 1)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, include_array(a, sub, depth + 1)),
            // Unlisted fields, excluded `_id`, and scalars under a sub-path are dropped.
            _ => {}
        }
    }
    out
}

/// [`include_document`] applied to the elements of an array. Nested arrays keep the same
/// sub-projection, so this recursion follows the document rather than the projection: past
/// mongod's depth limit (only a document stored by an older version goes there) nested
/// arrays are left out.
fn include_array(arr: &RawArray, children: &Children, depth: usize) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(include_document(d, children, depth + 1)),
            RawBsonRef::Array(a) if depth < MAX_BSON_DEPTH => out.push(include_array(a, children, depth + 1)),
            _ => {}
        }
    }
    out
}

/// mongod's `InclusionNode::applyExpressions`: after the included fields, each computed field
/// is evaluated against `root` and set (a missing result sets nothing), and each sub-tree
/// holding computed fields is applied to what the walk kept there.
/// The computed fields of one document share one `budget`.
fn add_computed(
    out: &mut Document,
    children: &Children,
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<(), QueryError> {
    for (key, node) in children {
        match node {
            Node::Computed(expr) => {
                if let Some(value) = expr.evaluate_in(root, vars, budget)? {
                    out.insert(key.clone(), value);
                }
            }
            Node::Inner(sub) if has_computed(sub) => {
                let value = computed_in_value(out.get(key).cloned(), sub, root, vars, budget)?;
                out.insert(key.clone(), value);
            }
            _ => {}
        }
    }
    Ok(())
}

/// mongod's `applyExpressionsToValue`: into a document, into each element of an array, and in
/// place of anything else (or nothing) a new document of the computed fields.
fn computed_in_value(
    value: Option<Bson>,
    children: &Children,
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Bson, QueryError> {
    Ok(match value {
        Some(Bson::Document(mut doc)) => {
            add_computed(&mut doc, children, root, vars, budget)?;
            Bson::Document(doc)
        }
        Some(Bson::Array(list)) => Bson::Array(
            list.into_iter()
                .map(|item| computed_in_value(Some(item), children, root, vars, budget))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let mut doc = Document::new();
            add_computed(&mut doc, children, root, vars, budget)?;
            Bson::Document(doc)
        }
    })
}

fn has_computed(children: &Children) -> bool {
    children.iter().any(|(_, node)| match node {
        Node::Computed(_) => true,
        Node::Inner(sub) => has_computed(sub),
        _ => false,
    })
}

/// `doc` without its excluded parts, `depth` documents and arrays down.
fn exclude_document(doc: &RawDocument, children: &Children, depth: usize) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(false)), _) => {}
            (Some(Node::Slice { skip, limit }), RawBsonRef::Array(a)) => out.append(key, slice(a, *skip, *limit)),
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, exclude_document(d, sub, depth + 1)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, exclude_array(a, sub, depth + 1)),
            _ => out.append(key, value),
        }
    }
    out
}

/// The elements `$slice` keeps (mongod's `applyFindSliceProjectionToArray`).
fn slice(arr: &RawArray, skip: Option<i32>, limit: i32) -> RawArrayBuf {
    let all: Vec<RawBsonRef<'_>> = items(arr).collect();
    let len = all.len();
    let magnitude = |n: i32| usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let (start, count) = match skip {
        None if limit >= 0 => (0, magnitude(limit)),
        None => (len.saturating_sub(magnitude(limit)), len),
        Some(skip) if skip >= 0 => (magnitude(skip), magnitude(limit)),
        Some(skip) => (len.saturating_sub(magnitude(skip)), magnitude(limit)),
    };
    let mut out = RawArrayBuf::new();
    for value in all.into_iter().skip(start).take(count) {
        out.push(value);
    }
    out
}

/// [`exclude_document`] applied to the elements of an array; past mongod's depth limit (see
/// [`include_array`]) nested arrays are kept as they are.
fn exclude_array(arr: &RawArray, children: &Children, depth: usize) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(exclude_document(d, children, depth + 1)),
            RawBsonRef::Array(a) if depth < MAX_BSON_DEPTH => out.push(exclude_array(a, children, depth + 1)),
            _ => out.push(value),
        }
    }
    out
}

#[cfg(test)]
mod tests;
