//! The console's administration pages (`/console/admin…`), placeholder: every path answers 404 until
//! the real pages land (they replace this module).
//!
//! The router sends here every GET and POST under `/console/admin` of a fully signed-in session, after
//! the session and (for POST) CSRF checks. Pages use the same helpers as the rest of the console:
//! [`super::run_action`] / [`super::run_validated`] (the API's IAM executor, authorization and audit),
//! [`super::render`], [`super::redirect`], [`super::message`], and the base layout
//! [`super::view::Layout`].

use super::Reply;
use super::session::SessionInfo;
use crate::handler::Incoming;
use crate::state::AppState;
use stsd_core::secret::Secret;
use stsd_proto::Params;

/// Serves one `/console/admin…` request of a signed-in session (`csrf`: the session's form token, for
/// the forms a page draws; `form`: the parsed body, CSRF already checked for POST).
pub(crate) async fn handle(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Reply {
    let _ = (req, form);
    super::message(
        state,
        Some((info, csrf)),
        404,
        "Not found",
        Some("The administration pages are not available yet."),
        None,
    )
}
