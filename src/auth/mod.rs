//! Authentication and authorization, the pure side: the SCRAM mechanisms ([`scram`]), unit-tested
//! against the RFCs' examples; mongod's action types ([`action`]), resource patterns
//! ([`resource`]) and privileges ([`privilege`]); the built-in roles ([`builtin`]); what a
//! connection knows of who it is ([`Session`]) and the server-wide switch ([`Authorization`]).
//!
//! The commands (`saslStart`, `createUser`, `createRole`, ...) and the dispatcher's check are
//! in `cmd`; the user and role catalogs, and the resolution of roles into privileges, in
//! `exec::principals`.

pub mod action;
pub mod builtin;
pub mod privilege;
pub mod resource;
pub mod scram;
pub mod x509;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use privilege::PrivilegeSet;

/// A role's name and the database it is defined in: `(role, db)`.
pub type RoleName = (String, String);

/// The users a connection is authenticated as, `(user, db)`, shared with what it starts.
pub type UserNames = Arc<Vec<(String, String)>>;

/// Who a connection is: the users it authenticated as, what they may do, and a SASL
/// conversation under way.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The conversation `saslStart` began, with the database it authenticates against.
    pub conversation: Option<(String, scram::ServerConversation)>,
    /// The authenticated users (set through [`Session::set_users`]).
    pub users: Vec<AuthenticatedUser>,
    /// Their names as `(user, db)`: who owns the cursors and operations this connection
    /// starts, shared with them.
    pub names: UserNames,
    /// The union of the users' privileges, as resolved at [`Session::generation`].
    pub privileges: Arc<PrivilegeSet>,
    /// The [`Authorization::generation`] the privileges were resolved at.
    pub generation: u64,
    /// A client inside the server (the web console) whose privileges were given, not
    /// resolved from the user catalog: they are never re-resolved.
    pub internal: bool,
}

impl Session {
    /// Whether a user of this name and database is authenticated here.
    pub fn is(&self, name: &str, db: &str) -> bool {
        self.users.iter().any(|u| u.name == name && u.db == db)
    }

    /// A client inside the server, named `name` (in `admin`), holding `privileges`.
    pub fn internal(name: &str, privileges: PrivilegeSet) -> Self {
        let user = AuthenticatedUser {
            name: name.to_owned(),
            db: "admin".to_owned(),
            roles: Vec::new(),
            all_roles: Vec::new(),
        };
        let mut session = Session { internal: true, ..Session::default() };
        session.set_users(vec![user], privileges, 0);
        session
    }

    /// Replaces the authenticated users and what they may do, resolved at `generation`.
    pub fn set_users(&mut self, users: Vec<AuthenticatedUser>, privileges: PrivilegeSet, generation: u64) {
        self.names = Arc::new(users.iter().map(|u| (u.name.clone(), u.db.clone())).collect());
        self.users = users;
        self.privileges = Arc::new(privileges);
        self.generation = generation;
    }
}

/// A user a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user name.
    pub name: String,
    /// Its authentication database.
    pub db: String,
    /// Its direct roles.
    pub roles: Vec<RoleName>,
    /// Every role it holds, inherited ones included.
    pub all_roles: Vec<RoleName>,
}

/// The server-wide side: whether authorization is enforced, a generation that every change to
/// users or roles bumps (a connection whose privileges are older resolves them again), and
/// whether any user or role exists (while none does, the localhost exception holds).
#[derive(Debug, Default)]
pub struct Authorization {
    /// `--auth`.
    pub enabled: bool,
    generation: AtomicU64,
    defined: AtomicBool,
}

impl Authorization {
    /// The state at start: `enabled` from the configuration, `defined` from the catalog.
    pub fn new(enabled: bool, defined: bool) -> Self {
        Self { enabled, generation: AtomicU64::new(0), defined: AtomicBool::new(defined) }
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a change to users or roles; `defined` says whether any exist now.
    pub fn changed(&self, defined: bool) {
        self.defined.store(defined, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether any user or custom role exists.
    pub fn any_defined(&self) -> bool {
        self.defined.load(Ordering::Acquire)
    }
}
