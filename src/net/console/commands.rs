//! The console's own client: it runs the commands behind the console's pages (`explain`,
//! `currentOp`, `killOp`, the collection listings) through the same dispatcher as a driver's
//! connection, so each page shows exactly what those commands answer. Under `--auth` the
//! client holds fixed built-in roles instead of a user: `clusterMonitor` and
//! `readAnyDatabase` for everyone the admin port lets in, plus `hostManager` (`killOp`) for an
//! operator. Its operations are listed in `currentOp` with the appName `monarch console`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bson::Document;

use crate::auth::privilege::PrivilegeSet;
use crate::cmd::{self, ClientInfo, CommandRequest, OwnedCtx};
use crate::error::{Error, ErrorCode};
use crate::obs::Observers;
use crate::state::State;

/// The application name the console's commands carry.
pub const APP_NAME: &str = "monarch console";

/// Who asked: a read-only viewer, or an operator who may stop operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    /// The pages only.
    Viewer,
    /// The pages and `killOp`.
    Operator,
}

/// A command's reply, or why it could not run.
#[derive(Debug)]
pub enum Answer {
    /// The reply with `ok: 1`.
    Ok(Document),
    /// mongod's error reply (`ok: 0`, `errmsg`, `code`, `codeName`).
    Failed(Document),
}

/// Runs `body` (which names its database in `$db`) as the console's client from `peer`.
pub async fn run(
    state: &Arc<State>,
    observers: &Arc<Observers>,
    peer: SocketAddr,
    rights: Rights,
    body: Document,
) -> Answer {
    let mut client = ClientInfo::accepted(state.next_connection_id(), peer, peer, false);
    client.metadata = Some(bson::doc! { "application": { "name": APP_NAME } });
    if state.authz.enabled {
        let roles: &[&str] = match rights {
            Rights::Viewer => &["clusterMonitor", "readAnyDatabase"],
            Rights::Operator => &["clusterMonitor", "readAnyDatabase", "hostManager"],
        };
        let mut privileges = PrivilegeSet::default();
        for role in roles {
            if let Some(builtin) = crate::auth::builtin::role_of(role, "admin") {
                privileges.extend(&builtin.privileges);
            }
        }
        client.auth = crate::auth::Session::internal(APP_NAME, privileges);
    }
    let request = match bytes_of(&body).and_then(|bytes| CommandRequest::from_msg(monarch_wire::OpMsg::new(bytes)).ok())
    {
        Some(request) => request,
        None => return Answer::Failed(bad_value("the command is not a valid BSON document")),
    };
    let listed = state.config.parameters.observability;
    let guard = state.ops.begin(request.op_start(&client, std::time::Instant::now()), listed);
    let ctx = OwnedCtx {
        state: state.clone(),
        observers: observers.clone(),
        client: Arc::new(Mutex::new(client)),
        op: guard.op().clone(),
    };
    let executed = cmd::execute(&ctx, Arc::new(request)).await;
    match executed.reply.to_document() {
        Ok(reply) if executed.error.is_none() => Answer::Ok(reply),
        Ok(reply) => Answer::Failed(reply),
        Err(_) => Answer::Failed(Error::new(ErrorCode::InternalError, "the reply could not be read").to_reply()),
    }
}

fn bytes_of(body: &Document) -> Option<monarch_wire::DocumentBytes> {
    monarch_wire::DocumentBytes::try_from(body).ok()
}

/// mongod's `BadValue` reply with `message`.
pub fn bad_value(message: &str) -> Document {
    Error::new(ErrorCode::BadValue, message).to_reply()
}
