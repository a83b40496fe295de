//! Authentication (issue 14). So far the SCRAM mechanisms themselves ([`scram`]): stored
//! credentials and the server side of a SASL conversation, pure and unit-tested against the
//! RFCs' examples. The commands (`saslStart`, `saslContinue`, `createUser`, ...), the user
//! catalog and authorization build on it.

pub mod scram;
