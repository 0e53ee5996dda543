//! `GET /api/v1/agencies`: the agencies visible to the token (its agency and everything below;
//! the whole tree for the root's tokens), in tree order.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Caller};
use crate::agency::Contact;
use crate::auth::Permission;

/// One agency.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgencyItem {
    /// Hierarchical code.
    pub code: String,
    /// Name.
    pub name: String,
    /// 0 for the root, 1-4 below.
    pub level: u8,
    /// Parent code (`null` for the root).
    pub parent: Option<String>,
    /// Owned prefixes (CIDR).
    pub prefixes: Vec<String>,
    /// `/ROOT/.../CODE/`.
    pub path: String,
    /// Contacts.
    pub contacts: Vec<Contact>,
    /// Ticket policy name.
    pub policy: String,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgencyList {
    /// Agencies, root first, depth-first.
    pub items: Vec<AgencyItem>,
}

/// The handler.
///
/// # Errors
/// `401`, `403`.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "agencies", security(("bearer" = [])),
    responses((status = 200, body = AgencyList), (status = 401, body = super::openapi::ErrorBody)))]
pub async fn list_agencies(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AgencyList>, ApiError> {
    caller.require(&state, Permission::ReadAgencies)?;
    let dir = state.dir.get();
    let items = dir
        .preorder()
        .into_iter()
        .filter(|a| caller.sees(&dir, &a.code))
        .map(|a| AgencyItem {
            code: a.code.clone(),
            name: a.name.clone(),
            level: a.level,
            parent: a.parent.clone(),
            prefixes: a.prefixes.iter().map(ToString::to_string).collect(),
            path: dir.path(&a.code),
            contacts: a.contacts.clone(),
            policy: a.policy.name.clone(),
        })
        .collect();
    Ok(Json(AgencyList { items }))
}
