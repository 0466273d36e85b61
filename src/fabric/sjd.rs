//! Spark job definitions (SJDs): list, find by name, create, read and replace the definition,
//! and [`FabricClient::ensure_sjd`], which finds-or-creates one SJD by name and points it at
//! the wanted file, never creating a second one with the same name.
//!
//! Create, getDefinition and updateDefinition may answer as long-running operations (see
//! `lro`). Definitions use format V1: one `SparkJobDefinitionV1.json` part whose
//! `executableFile` is a full `abfss://` URL.

use reqwest::Method;

use super::client::{CONTRIBUTOR, FabricClient, Op, VIEWER, parse_json, seg};
use super::error::FabricError;
use super::model::{Definition, DefinitionEnvelope, Item, SparkJobDefinitionV1, Workspace};

/// What [`FabricClient::ensure_sjd`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SjdAction {
    /// No SJD had the name; one was created.
    Created,
    /// The SJD existed but pointed elsewhere; its definition was replaced.
    Updated,
    /// The SJD existed and already pointed at the wanted file.
    Unchanged,
}

/// An SJD ready to run.
#[derive(Debug, Clone)]
pub struct EnsuredSjd {
    pub sjd: Item,
    pub action: SjdAction,
}

impl FabricClient {
    /// The SJDs of `ws`.
    pub async fn list_sjds(&self, ws: &Workspace) -> Result<Vec<Item>, FabricError> {
        let op = Op::new(
            format!(
                "list the Spark job definitions of workspace `{}`",
                ws.display_name
            ),
            VIEWER,
        );
        let url = self.url(&format!("workspaces/{}/sparkJobDefinitions", seg(&ws.id)));
        self.list_all(&url, &op).await
    }

    /// The SJD of `ws` whose display name is exactly `name`.
    pub async fn find_sjd(&self, ws: &Workspace, name: &str) -> Result<Option<Item>, FabricError> {
        Ok(self
            .list_sjds(ws)
            .await?
            .into_iter()
            .find(|s| s.display_name == name))
    }

    /// Like [`find_sjd`](Self::find_sjd), but a missing SJD is an error naming the ones that exist.
    pub async fn resolve_sjd(&self, ws: &Workspace, name: &str) -> Result<Item, FabricError> {
        let all = self.list_sjds(ws).await?;
        if let Some(s) = all.iter().find(|s| s.display_name == name) {
            return Ok(s.clone());
        }
        Err(FabricError::SjdNotFound {
            workspace: ws.display_name.clone(),
            name: name.to_string(),
            available: all.into_iter().map(|s| s.display_name).collect(),
        })
    }

    /// Creates an SJD called `name`, with `content` as its definition when given.
    /// Answers 201 with the item, or 202 (a long-running operation whose result is the item).
    pub async fn create_sjd(
        &self,
        ws: &Workspace,
        name: &str,
        content: Option<&SparkJobDefinitionV1>,
    ) -> Result<Item, FabricError> {
        let op = Op::new(
            format!(
                "create Spark job definition `{name}` in workspace `{}`",
                ws.display_name
            ),
            CONTRIBUTOR,
        )
        .on_capacity(&ws.display_name);
        let url = self.url(&format!("workspaces/{}/sparkJobDefinitions", seg(&ws.id)));
        let mut body = serde_json::json!({
            "displayName": name,
            "description": "Created by fabric-remote",
        });
        if let Some(content) = content {
            body["definition"] = serde_json::to_value(content.to_definition())
                .expect("a definition always serializes");
        }
        let result = match self.send_lro(Method::POST, &url, Some(&body), &op).await {
            Ok(r) => r,
            Err(e) => return Err(self.creation_error(ws, name, e)),
        };
        match result {
            Some(body) => parse_json::<Item>(&body, &op),
            // Created, but the operation returned nothing: look it up.
            None => self
                .find_sjd(ws, name)
                .await?
                .ok_or_else(|| op.bad("the create operation succeeded but the item is not listed")),
        }
    }

    fn creation_error(&self, ws: &Workspace, name: &str, e: FabricError) -> FabricError {
        let code = e.code().map(str::to_string);
        match (e, code.as_deref()) {
            (
                FabricError::Http {
                    source: crate::http::HttpError::Status(source),
                    ..
                },
                Some(c),
            ) if c.eq_ignore_ascii_case("ItemDisplayNameNotAvailableYet") => {
                FabricError::NameNotAvailableYet {
                    workspace: ws.display_name.clone(),
                    name: name.to_string(),
                    source,
                }
            }
            (e, _) => no_capacity_if_unassigned(ws, e),
        }
    }

    /// The SJD's definition (format V1, the default).
    pub async fn get_sjd_definition(
        &self,
        ws: &Workspace,
        sjd: &Item,
    ) -> Result<Definition, FabricError> {
        let op = Op::new(
            format!(
                "read the definition of Spark job definition `{}`",
                sjd.display_name
            ),
            "the Contributor role on the workspace (reading a definition needs read and write permission)",
        );
        let url = self.url(&format!(
            "workspaces/{}/sparkJobDefinitions/{}/getDefinition",
            seg(&ws.id),
            seg(&sjd.id)
        ));
        let body = self
            .send_lro(Method::POST, &url, None, &op)
            .await?
            .ok_or_else(|| op.bad("no definition in the answer"))?;
        Ok(parse_json::<DefinitionEnvelope>(&body, &op)?.definition)
    }

    /// The content of the SJD's `SparkJobDefinitionV1.json` part (empty when it has none).
    pub async fn get_sjd_content(
        &self,
        ws: &Workspace,
        sjd: &Item,
    ) -> Result<SparkJobDefinitionV1, FabricError> {
        let definition = self.get_sjd_definition(ws, sjd).await?;
        SparkJobDefinitionV1::from_definition(&definition)
            .map(Option::unwrap_or_default)
            .map_err(|message| FabricError::BadResponse {
                what: format!(
                    "read the definition of Spark job definition `{}`",
                    sjd.display_name
                ),
                message,
            })
    }

    /// Replaces the SJD's definition.
    pub async fn update_sjd_definition(
        &self,
        ws: &Workspace,
        sjd: &Item,
        definition: &Definition,
    ) -> Result<(), FabricError> {
        let op = Op::new(
            format!(
                "update the definition of Spark job definition `{}`",
                sjd.display_name
            ),
            CONTRIBUTOR,
        )
        .on_capacity(&ws.display_name);
        let url = self.url(&format!(
            "workspaces/{}/sparkJobDefinitions/{}/updateDefinition",
            seg(&ws.id),
            seg(&sjd.id)
        ));
        let body = serde_json::json!({ "definition": definition });
        self.send_lro(Method::POST, &url, Some(&body), &op)
            .await
            .map_err(|e| no_capacity_if_unassigned(ws, e))?;
        Ok(())
    }

    /// The SJD called `name`, pointing at `want`: reused when it exists (its definition
    /// replaced only when it points elsewhere), created otherwise. A create that races with
    /// another (`ItemDisplayNameAlreadyInUse`) reuses the winner's item.
    pub async fn ensure_sjd(
        &self,
        ws: &Workspace,
        name: &str,
        want: &SparkJobDefinitionV1,
    ) -> Result<EnsuredSjd, FabricError> {
        if let Some(sjd) = self.find_sjd(ws, name).await? {
            return self.reconcile(ws, sjd, want, SjdAction::Unchanged).await;
        }
        match self.create_sjd(ws, name, Some(want)).await {
            // Some writers report that a definition sent with create can be dropped: check it.
            Ok(sjd) => self.reconcile(ws, sjd, want, SjdAction::Created).await,
            Err(e)
                if e.code()
                    .is_some_and(|c| c.eq_ignore_ascii_case("ItemDisplayNameAlreadyInUse")) =>
            {
                match self.find_sjd(ws, name).await? {
                    Some(sjd) => self.reconcile(ws, sjd, want, SjdAction::Unchanged).await,
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn reconcile(
        &self,
        ws: &Workspace,
        sjd: Item,
        want: &SparkJobDefinitionV1,
        action: SjdAction,
    ) -> Result<EnsuredSjd, FabricError> {
        let have = self.get_sjd_content(ws, &sjd).await?;
        if have.same_target(want) {
            return Ok(EnsuredSjd { sjd, action });
        }
        // Keep what we do not manage (retry policy, libraries, environment…).
        let mut next = have;
        next.executable_file = want.executable_file.clone();
        next.default_lakehouse_artifact_id = want.default_lakehouse_artifact_id.clone();
        next.command_line_arguments = want.command_line_arguments.clone();
        next.language = want.language.clone();
        if next.main_class.is_none() {
            next.main_class = want.main_class.clone();
        }
        self.update_sjd_definition(ws, &sjd, &next.to_definition())
            .await?;
        let action = match action {
            SjdAction::Created => SjdAction::Created,
            _ => SjdAction::Updated,
        };
        Ok(EnsuredSjd { sjd, action })
    }
}

/// A failed create/update/run in a workspace that reports no capacity is blamed on that.
pub(crate) fn no_capacity_if_unassigned(ws: &Workspace, e: FabricError) -> FabricError {
    match e {
        FabricError::Http { source, .. }
            if ws.capacity_id.as_deref().unwrap_or("").is_empty()
                && source
                    .status()
                    .is_some_and(|s| (400..500).contains(&s) && !matches!(s, 404 | 409 | 429)) =>
        {
            FabricError::NoCapacity {
                workspace: ws.display_name.clone(),
                source: Some(source),
            }
        }
        e => e,
    }
}
