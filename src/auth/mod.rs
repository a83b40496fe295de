//! Authentication (issue 14): the SCRAM mechanisms ([`scram`]), pure and unit-tested against
//! the RFCs' examples, and what a connection knows of who it is ([`Session`]). The commands
//! (`saslStart`, `saslContinue`, `logout`, `createUser`, ...) are in `cmd`, the user catalog in
//! `exec::users`. Authorization (`--auth`) builds on them.

pub mod scram;

/// Who a connection is: the users it authenticated as, and a SASL conversation under way.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The conversation `saslStart` began, with the database it authenticates against.
    pub conversation: Option<(String, scram::ServerConversation)>,
    /// The authenticated users: `(user, db, roles as (role, db))`.
    pub users: Vec<AuthenticatedUser>,
}

/// A user a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user name.
    pub name: String,
    /// Its authentication database.
    pub db: String,
    /// Its roles, as `(role, db)`.
    pub roles: Vec<(String, String)>,
}
