//! `$redact`: an expression evaluated at every level of each document decides whether that
//! level is kept whole (`$$KEEP`), removed (`$$PRUNE`), or kept with its embedded documents
//! decided one by one (`$$DESCEND`).

use bson::{Bson, Document};

use super::{StageArgs, raw};
use crate::error::{Error, ErrorCode, Result};
use crate::query::expr::{Expression, Variables};
use crate::query::{limits, render};
use crate::state::cursors::DocumentStream;

/// The values `$$KEEP`, `$$PRUNE` and `$$DESCEND` are bound to while `$redact` evaluates: strings
/// no document holds (they start with a NUL character).
const KEEP: &str = "\u{0}monarch.redact.KEEP";
const PRUNE: &str = "\u{0}monarch.redact.PRUNE";
const DESCEND: &str = "\u{0}monarch.redact.DESCEND";

/// What the expression decided for one level.
enum Decision {
    Keep,
    Prune,
    Descend,
}

struct Redact {
    expression: Expression,
    vars: Variables,
}

impl Redact {
    fn decide(&self, level: &Document, vars: &Variables) -> Result<Decision> {
        let raw_level = raw(level)?;
        match self.expression.evaluate(&raw_level, vars)? {
            Some(Bson::String(s)) if s == KEEP => Ok(Decision::Keep),
            Some(Bson::String(s)) if s == PRUNE => Ok(Decision::Prune),
            Some(Bson::String(s)) if s == DESCEND => Ok(Decision::Descend),
            other => Err(Error::new(
                ErrorCode::Location17053,
                format!(
                    "$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and \
                     $$PRUNE, but returned {}",
                    other.as_ref().map_or_else(|| "MISSING".to_owned(), render::owned_value)
                ),
            )),
        }
    }

    /// `level` as redacted: `None` when pruned.
    fn apply(&self, level: Document, vars: &Variables) -> Result<Option<Document>> {
        match self.decide(&level, vars)? {
            Decision::Keep => Ok(Some(level)),
            Decision::Prune => Ok(None),
            Decision::Descend => {
                let mut out = Document::new();
                for (key, value) in level {
                    match value {
                        Bson::Document(inner) => {
                            if let Some(kept) = self.apply(inner, vars)? {
                                out.insert(key, Bson::Document(kept));
                            }
                        }
                        Bson::Array(items) => {
                            let mut kept = Vec::with_capacity(items.len());
                            for item in items {
                                match item {
                                    Bson::Document(inner) => {
                                        if let Some(inner) = self.apply(inner, vars)? {
                                            kept.push(Bson::Document(inner));
                                        }
                                    }
                                    other => kept.push(other),
                                }
                            }
                            out.insert(key, Bson::Array(kept));
                        }
                        other => {
                            out.insert(key, other);
                        }
                    }
                }
                Ok(Some(out))
            }
        }
    }
}

/// `$redact`. Each level is evaluated as `$$CURRENT`; `$$ROOT` stays the whole document.
pub(super) fn redact(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let expression = Expression::parse(args.spec)?;
    let mut vars = args.env.vars.clone();
    vars.set_collation(args.env.collation.clone());
    for (name, value) in [("KEEP", KEEP), ("PRUNE", PRUNE), ("DESCEND", DESCEND)] {
        vars.bind(name, Bson::String(value.to_owned()))?;
    }
    let redact = Redact { expression, vars };
    Ok(Box::new(stream.filter_map(move |document| {
        let (whole, document) = match document.and_then(|d| Ok((limits::to_document(&d)?, d))) {
            Ok((document, whole)) => (whole, document),
            Err(error) => return Some(Err(error)),
        };
        let mut vars = redact.vars.clone();
        vars.set_root(Some(std::sync::Arc::new(whole)));
        match redact.apply(document, &vars) {
            Ok(Some(kept)) => Some(raw(&kept)),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    })))
}
