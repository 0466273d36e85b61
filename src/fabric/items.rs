//! Workspaces and lakehouses, and turning their names into ids.
//!
//! The API has no name filter: a name is resolved by listing every page and matching
//! `displayName` exactly (display names are unique per item type in a workspace). A GUID is
//! taken as an id and checked with a GET.

use reqwest::Method;

use super::client::{FabricClient, Op, VIEWER, read_json, seg};
use super::error::FabricError;
use super::model::{Item, Workspace, is_guid};

impl FabricClient {
    /// Every workspace the caller has a role in.
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>, FabricError> {
        let op = Op::new("list workspaces", VIEWER);
        self.list_all(&self.url("workspaces"), &op).await
    }

    /// One workspace by id.
    pub async fn get_workspace(&self, id: &str) -> Result<Workspace, FabricError> {
        let op = Op::new(format!("read workspace {id}"), VIEWER);
        let url = self.url(&format!("workspaces/{}", seg(id)));
        match self.send_raw(Method::GET, &url, None).await {
            Ok(sent) => read_json(sent, &op).await,
            Err(e) if is_not_found(&e) => Err(FabricError::WorkspaceNotFound {
                name: id.to_string(),
                available: self.workspace_names().await,
            }),
            Err(e) => Err(op.fail(e)),
        }
    }

    /// The workspace called `name_or_id` (exact display name), or with that id.
    pub async fn resolve_workspace(&self, name_or_id: &str) -> Result<Workspace, FabricError> {
        if is_guid(name_or_id) {
            return self.get_workspace(name_or_id).await;
        }
        let all = self.list_workspaces().await?;
        if let Some(ws) = all.iter().find(|w| w.display_name == name_or_id) {
            return Ok(ws.clone());
        }
        Err(FabricError::WorkspaceNotFound {
            name: name_or_id.to_string(),
            available: all.into_iter().map(|w| w.display_name).collect(),
        })
    }

    /// The lakehouses of `ws`.
    pub async fn list_lakehouses(&self, ws: &Workspace) -> Result<Vec<Item>, FabricError> {
        let op = Op::new(
            format!("list the lakehouses of workspace `{}`", ws.display_name),
            VIEWER,
        );
        let url = self.url(&format!("workspaces/{}/lakehouses", seg(&ws.id)));
        self.list_all(&url, &op).await
    }

    /// The lakehouse of `ws` called `name_or_id`, or with that id.
    pub async fn resolve_lakehouse(
        &self,
        ws: &Workspace,
        name_or_id: &str,
    ) -> Result<Item, FabricError> {
        let not_found = |available: Vec<Item>| FabricError::LakehouseNotFound {
            workspace: ws.display_name.clone(),
            name: name_or_id.to_string(),
            available: available.into_iter().map(|i| i.display_name).collect(),
        };
        if is_guid(name_or_id) {
            let op = Op::new(
                format!(
                    "read lakehouse {name_or_id} in workspace `{}`",
                    ws.display_name
                ),
                VIEWER,
            );
            let url = self.url(&format!(
                "workspaces/{}/lakehouses/{}",
                seg(&ws.id),
                seg(name_or_id)
            ));
            return match self.send_raw(Method::GET, &url, None).await {
                Ok(sent) => read_json(sent, &op).await,
                Err(e) if is_not_found(&e) => Err(not_found(
                    self.list_lakehouses(ws).await.unwrap_or_default(),
                )),
                Err(e) => Err(op.fail(e)),
            };
        }
        let all = self.list_lakehouses(ws).await?;
        match all.iter().find(|l| l.display_name == name_or_id) {
            Some(l) => Ok(l.clone()),
            None => Err(not_found(all)),
        }
    }

    /// Names for a "not found" hint; empty if they cannot be listed.
    async fn workspace_names(&self) -> Vec<String> {
        self.list_workspaces()
            .await
            .map(|all| all.into_iter().map(|w| w.display_name).collect())
            .unwrap_or_default()
    }
}

/// A 404, or a not-found error code on another status.
pub(crate) fn is_not_found(e: &crate::http::HttpError) -> bool {
    e.status() == Some(404)
        || e.code().is_some_and(|c| {
            ["ItemNotFound", "WorkspaceNotFound", "EntityNotFound"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(c))
        })
}
