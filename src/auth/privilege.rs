//! Privileges: a resource pattern with the actions allowed on it, and the set a connection
//! holds (the union of its users' roles), which answers "may it do this action there?".

use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use super::action::{ActionSet, ActionType};
use super::resource::{ResourcePattern, Target};

/// Actions allowed on the resources a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    /// Where.
    pub resource: ResourcePattern,
    /// What.
    pub actions: ActionSet,
}

impl Privilege {
    /// A privilege of `actions` on `resource`.
    pub fn new(resource: ResourcePattern, actions: &[ActionType]) -> Self {
        Self { resource, actions: ActionSet::of(actions) }
    }

    /// The privilege document (`{resource, actions}`, actions sorted by name as mongod).
    pub fn to_document(&self) -> Document {
        let actions: Vec<Bson> = self.actions.names().into_iter().map(Bson::from).collect();
        doc! { "resource": self.resource.to_document(), "actions": actions }
    }

    /// Reads a privilege document.
    ///
    /// # Errors
    /// mongod's message for what is malformed (an unknown action name, a bad resource).
    pub fn from_document(privilege: &RawDocument) -> Result<Self, String> {
        let mut resource = None;
        let mut actions = None;
        for field in privilege {
            let (key, value) = field.map_err(|e| e.to_string())?;
            match (key.as_str(), value) {
                ("resource", RawBsonRef::Document(d)) => resource = Some(ResourcePattern::from_document(d)?),
                ("actions", RawBsonRef::Array(list)) => {
                    let mut set = ActionSet::default();
                    for action in list {
                        let name = action.map_err(|e| e.to_string())?.as_str().ok_or("actions must be strings")?;
                        let action = ActionType::from_name(name)
                            .ok_or_else(|| format!("Unknown action type in privilege set: '{name}'"))?;
                        set.add(action);
                    }
                    actions = Some(set);
                }
                ("resource" | "actions", _) => return Err(format!("privilege field '{key}' has the wrong type")),
                _ => return Err(format!("Unrecognized field in privilege: '{key}'")),
            }
        }
        match (resource, actions) {
            (Some(resource), Some(actions)) => Ok(Self { resource, actions }),
            (None, _) => Err("Privilege document must contain 'resource'".to_owned()),
            (_, None) => Err("Privilege document must contain 'actions'".to_owned()),
        }
    }
}

/// A union of privileges, one entry per resource pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegeSet {
    privileges: Vec<Privilege>,
}

impl PrivilegeSet {
    /// Adds `privilege`, merging its actions into an existing entry for the same resource.
    pub fn add(&mut self, privilege: Privilege) {
        match self.privileges.iter_mut().find(|p| p.resource == privilege.resource) {
            Some(existing) => existing.actions.add_all(&privilege.actions),
            None => self.privileges.push(privilege),
        }
    }

    /// Removes `privilege`'s actions from the entry for its resource (an empty entry goes).
    pub fn remove(&mut self, privilege: &Privilege) {
        if let Some(existing) = self.privileges.iter_mut().find(|p| p.resource == privilege.resource) {
            existing.actions.remove_all(&privilege.actions);
        }
        self.privileges.retain(|p| !p.actions.is_empty());
    }

    /// Adds every privilege of `other`.
    pub fn extend(&mut self, other: &PrivilegeSet) {
        for privilege in &other.privileges {
            self.add(privilege.clone());
        }
    }

    /// Whether some privilege allows `action` on `target`.
    pub fn allows(&self, target: Target<'_>, action: ActionType) -> bool {
        self.privileges.iter().any(|p| p.actions.contains(action) && p.resource.matches(target))
    }

    /// Whether some privilege names database `db` or spans databases (any action at all).
    pub fn touches_database(&self, db: &str) -> bool {
        self.privileges.iter().any(|p| p.resource.touches_database(db))
    }

    /// Whether some privilege allows anything on `db.coll`.
    pub fn touches_namespace(&self, db: &str, coll: &str) -> bool {
        self.privileges.iter().any(|p| p.resource.matches(Target::Namespace(db, coll)))
    }

    /// The privileges, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Privilege> {
        self.privileges.iter()
    }

    /// The privilege documents.
    pub fn to_documents(&self) -> Vec<Bson> {
        self.privileges.iter().map(|p| Bson::Document(p.to_document())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privilege_set_merges_and_answers() {
        let mut set = PrivilegeSet::default();
        set.add(Privilege::new(ResourcePattern::Database("a".into()), &[ActionType::Find]));
        set.add(Privilege::new(ResourcePattern::Database("a".into()), &[ActionType::Insert]));
        assert_eq!(set.iter().count(), 1);
        assert!(set.allows(Target::Namespace("a", "c"), ActionType::Insert));
        assert!(!set.allows(Target::Namespace("a", "system.js"), ActionType::Find));
        assert!(!set.allows(Target::Namespace("b", "c"), ActionType::Find));
        set.remove(&Privilege::new(ResourcePattern::Database("a".into()), &[ActionType::Find, ActionType::Insert]));
        assert_eq!(set.iter().count(), 0);
        let mut root = PrivilegeSet::default();
        root.add(Privilege::new(ResourcePattern::AnyResource, &[ActionType::AnyAction]));
        assert!(root.allows(Target::Cluster, ActionType::Shutdown));
    }

    #[test]
    fn privilege_documents_name_unknown_actions() {
        let raw = bson::rawdoc! { "resource": { "db": "a", "collection": "" }, "actions": ["find", "fly"] };
        assert_eq!(Privilege::from_document(&raw), Err("Unknown action type in privilege set: 'fly'".to_owned()));
        let raw = bson::rawdoc! { "resource": { "db": "a", "collection": "" }, "actions": ["insert", "find"] };
        let privilege = Privilege::from_document(&raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(privilege.to_document().get_array("actions").map(Vec::len).ok(), Some(2));
    }
}
