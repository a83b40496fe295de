//! mongorestore's namespace options: `--nsInclude` and `--nsExclude` select namespaces of
//! the backup by pattern (`db.coll`, where `*` matches any run of characters and `\` makes
//! the next character literal), `--nsFrom`/`--nsTo` rename them, `$name$` in `--nsFrom`
//! capturing a run of characters that `$name$` in `--nsTo` puts back. Selection applies to
//! the namespaces as they are in the backup, before renaming, as in mongorestore.

use regex::Regex;

use super::error::BackupError;

/// Which namespaces of a backup a restore takes, and under which names.
#[derive(Debug, Default)]
pub struct NamespaceMap {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    renames: Vec<Rename>,
}

/// One `--nsFrom`/`--nsTo` pair.
#[derive(Debug)]
struct Rename {
    from: Regex,
    /// `--nsTo` split into literal text and variable names.
    to: Vec<Part>,
}

#[derive(Debug, PartialEq)]
enum Part {
    Literal(String),
    Variable(String),
}

impl NamespaceMap {
    /// Builds the map from the options' values.
    ///
    /// # Errors
    /// [`BackupError::BadArgument`] for an `--nsFrom` without its `--nsTo` (or the reverse),
    /// an unterminated `$name$`, a `--nsTo` variable that `--nsFrom` does not define, or a
    /// variable defined twice.
    pub fn new(include: &[String], exclude: &[String], from: &[String], to: &[String]) -> Result<Self, BackupError> {
        if from.len() != to.len() {
            return Err(BackupError::BadArgument(format!(
                "--nsFrom and --nsTo must be given in pairs ({} --nsFrom, {} --nsTo)",
                from.len(),
                to.len()
            )));
        }
        let renames = from.iter().zip(to).map(|(from, to)| Rename::new(from, to)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            include: include.iter().map(|p| glob(p)).collect::<Result<_, _>>()?,
            exclude: exclude.iter().map(|p| glob(p)).collect::<Result<_, _>>()?,
            renames,
        })
    }

    /// Whether every namespace is restored under its own name (no option given).
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty() && self.renames.is_empty()
    }

    /// The name `namespace` (`db.coll`) is restored under, or `None` when it is not selected.
    pub fn map(&self, namespace: &str) -> Option<String> {
        let included = self.include.is_empty() || self.include.iter().any(|p| p.is_match(namespace));
        if !included || self.exclude.iter().any(|p| p.is_match(namespace)) {
            return None;
        }
        // The first `--nsFrom` that matches renames it, as in mongorestore.
        for rename in &self.renames {
            if let Some(renamed) = rename.apply(namespace) {
                return Some(renamed);
            }
        }
        Some(namespace.to_owned())
    }
}

impl Rename {
    fn new(from: &str, to: &str) -> Result<Self, BackupError> {
        let from_parts = split_variables(from, "--nsFrom")?;
        let to = split_variables(to, "--nsTo")?;
        let mut pattern = String::from("^");
        let mut defined = Vec::new();
        for part in &from_parts {
            match part {
                Part::Literal(text) => pattern.push_str(&literal_with_wildcards(text)),
                Part::Variable(name) => {
                    if defined.contains(name) {
                        return Err(BackupError::BadArgument(format!(
                            "--nsFrom {from}: variable ${name}$ appears twice"
                        )));
                    }
                    pattern.push_str(&format!("(?<v{}>.*?)", defined.len()));
                    defined.push(name.clone());
                }
            }
        }
        pattern.push('$');
        let mut resolved = Vec::new();
        for part in to {
            match part {
                Part::Literal(text) => resolved.push(Part::Literal(text)),
                Part::Variable(name) => match defined.iter().position(|d| *d == name) {
                    Some(at) => resolved.push(Part::Variable(format!("v{at}"))),
                    None => {
                        return Err(BackupError::BadArgument(format!(
                            "--nsTo uses ${name}$, which its --nsFrom {from} does not define"
                        )));
                    }
                },
            }
        }
        let from = Regex::new(&pattern).map_err(|e| BackupError::BadArgument(format!("--nsFrom {from}: {e}")))?;
        Ok(Self { from, to: resolved })
    }

    fn apply(&self, namespace: &str) -> Option<String> {
        let captures = self.from.captures(namespace)?;
        let mut out = String::new();
        for part in &self.to {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(group) => out.push_str(captures.name(group).map_or("", |m| m.as_str())),
            }
        }
        Some(out)
    }
}

/// Splits `pattern` at its `$name$` variables.
fn split_variables(pattern: &str, option: &str) -> Result<Vec<Part>, BackupError> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('$') {
        let (literal, after) = rest.split_at(start);
        let after = after.get(1..).unwrap_or_default();
        let Some(end) = after.find('$') else {
            return Err(BackupError::BadArgument(format!("{option} {pattern}: a $ opens a variable that no $ closes")));
        };
        let (name, tail) = after.split_at(end);
        if name.is_empty() {
            return Err(BackupError::BadArgument(format!("{option} {pattern}: empty variable name $$")));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.to_owned()));
        }
        parts.push(Part::Variable(name.to_owned()));
        rest = tail.get(1..).unwrap_or_default();
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    Ok(parts)
}

/// A whole-namespace pattern where `*` matches any run of characters.
fn glob(pattern: &str) -> Result<Regex, BackupError> {
    Regex::new(&format!("^{}$", literal_with_wildcards(pattern)))
        .map_err(|e| BackupError::BadArgument(format!("namespace pattern {pattern}: {e}")))
}

/// `text` as a regex: literal, except `*` (any run of characters); `\` escapes the next
/// character.
fn literal_with_wildcards(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn namespaces_include_and_exclude_by_wildcard() -> Result<(), BackupError> {
        let map = NamespaceMap::new(&strings(&["app.*", "other.keep"]), &strings(&["app.tmp*"]), &[], &[])?;
        assert_eq!(map.map("app.users"), Some("app.users".to_owned()));
        assert_eq!(map.map("app.tmp1"), None);
        assert_eq!(map.map("other.keep"), Some("other.keep".to_owned()));
        assert_eq!(map.map("other.drop"), None);
        assert_eq!(map.map("apps.users"), None);
        Ok(())
    }

    #[test]
    fn namespaces_rename_with_variables() -> Result<(), BackupError> {
        let map =
            NamespaceMap::new(&[], &[], &strings(&["data.$prefix$_$customer$"]), &strings(&["$customer$.$prefix$"]))?;
        assert_eq!(map.map("data.sales_acme"), Some("acme.sales".to_owned()));
        assert_eq!(map.map("other.x"), Some("other.x".to_owned()));
        let bad = NamespaceMap::new(&[], &[], &strings(&["a.$x$"]), &strings(&["b.$y$"]));
        assert!(matches!(bad, Err(BackupError::BadArgument(_))));
        Ok(())
    }
}
