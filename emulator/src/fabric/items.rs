//! Workspaces, items, lakehouses and Spark Job Definitions (SJD), with their
//! definitions.
//!
//! The configured workspace is listed after two decoys (a `Personal` "My workspace" and
//! a "Sandbox"), so a client must page and match names exactly; decoys are read-only
//! and empty. Lakehouses come from the configuration and each has its SQL endpoint item,
//! as in the real service. SJDs are created through the API and persisted in
//! `DATA/.emulator/fabric/items.json`; V2 `Main/` and `Libs/` parts are also written out
//! under `DATA/.emulator/fabric/items/{id}/` so a run can execute them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::definition::{
    Definition, FORMAT_V1, FORMAT_V2, ItemInfo, PLATFORM_PART, Part, SJD_TYPE, definition_json,
    invalid_format, platform_name, validate_definition,
};
use super::lro;
use super::{
    Req, bad_input, bad_query, empty_response, json_response, new_id, paginate, require_guid,
};
use crate::error::{Result, ServiceError};
use crate::ids;
use crate::lock::lock;
use crate::state::{Lakehouse, State};

/// A Spark Job Definition as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sjd {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub folder_id: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    /// Definition parts other than `.platform` (which is generated), base64 payloads.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Created by a 202 create whose operation has not finished: the name is taken,
    /// but the item is not visible yet.
    #[serde(skip)]
    pub pending: bool,
}

impl Sjd {
    pub(crate) fn info(&self) -> ItemInfo<'_> {
        ItemInfo {
            id: &self.id,
            display_name: &self.display_name,
            description: &self.description,
        }
    }
}

/// Which workspace a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ws {
    Main,
    Decoy(usize),
}

struct Decoy {
    id: String,
    name: &'static str,
    kind: &'static str,
}

fn decoys(state: &State) -> Vec<Decoy> {
    [("My workspace", "Personal"), ("Sandbox", "Workspace")]
        .into_iter()
        .filter(|(n, _)| *n != state.workspace_name)
        .map(|(name, kind)| Decoy {
            id: ids::guid_from_name("decoy-workspace", name),
            name,
            kind,
        })
        .collect()
}

pub(crate) fn resolve_workspace(state: &State, seg: &str) -> Result<Ws> {
    require_guid("workspace", seg)?;
    if state.workspace_id.eq_ignore_ascii_case(seg) {
        return Ok(Ws::Main);
    }
    decoys(state)
        .iter()
        .position(|d| d.id.eq_ignore_ascii_case(seg))
        .map(Ws::Decoy)
        .ok_or_else(workspace_not_found)
}

fn workspace_not_found() -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "WorkspaceNotFound",
        "The requested workspace was not found.",
    )
}

pub(crate) fn item_not_found() -> ServiceError {
    ServiceError::new(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        "The requested item was not found.",
    )
}

/// Without a capacity, Fabric items can neither be created nor run. The real answer is
/// UNCONFIRMED; we use the GOSDK-listed `WorkspaceHasNoCapacityAssigned` with 400, which
/// names the condition and which a client must treat as fatal.
pub(crate) fn require_capacity(state: &State) -> Result<()> {
    if state.fabric.has_capacity() {
        Ok(())
    } else {
        Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "WorkspaceHasNoCapacityAssigned",
            "The workspace is not assigned to a Fabric capacity. Assign it to a capacity and retry.",
        ))
    }
}

pub(crate) fn capacity_id(state: &State) -> String {
    ids::guid_from_name("capacity", &state.workspace_name)
}

// ---- workspaces -----------------------------------------------------------------

fn workspace_json(state: &State, r: &Req, ws: Ws, full: bool) -> Value {
    match ws {
        Ws::Main => {
            let mut v = json!({
                "id": state.workspace_id,
                "displayName": state.workspace_name,
                "description": "",
                "type": "Workspace",
            });
            if state.fabric.has_capacity() {
                v["capacityId"] = json!(capacity_id(state));
            }
            if full {
                v["capacityAssignmentProgress"] = json!("Completed");
                // The emulator's own DFS endpoint stands in for the regional OneLake host.
                v["oneLakeEndpoints"] = json!({
                    "blobEndpoint": r.base,
                    "dfsEndpoint": r.base,
                });
            }
            v
        }
        Ws::Decoy(i) => {
            let d = &decoys(state)[i];
            let mut v = json!({
                "id": d.id,
                "displayName": d.name,
                "description": "",
                "type": d.kind,
            });
            if full {
                v["capacityAssignmentProgress"] = json!("Completed");
            }
            v
        }
    }
}

pub(crate) fn list_workspaces(state: &State, r: &Req) -> Result<Response> {
    let mut all: Vec<Value> = (0..decoys(state).len())
        .map(|i| workspace_json(state, r, Ws::Decoy(i), false))
        .collect();
    all.push(workspace_json(state, r, Ws::Main, false));
    paginate(state, r, all)
}

pub(crate) fn get_workspace(state: &State, r: &Req, ws: &str) -> Result<Response> {
    let ws = resolve_workspace(state, ws)?;
    Ok(json_response(
        StatusCode::OK,
        &workspace_json(state, r, ws, true),
    ))
}

// ---- items ----------------------------------------------------------------------

fn onelake_root(state: &State, base: &str, item_id: &str) -> String {
    // The emulator's DFS endpoint stands in for https://onelake.dfs.fabric.microsoft.com.
    format!("{}/{}/{}", base, state.workspace_id, item_id)
}

fn sql_endpoint_id(lh: &Lakehouse) -> String {
    ids::guid_from_name("sqlendpoint", &lh.id)
}

fn lakehouse_json(state: &State, r: &Req, lh: &Lakehouse) -> Value {
    let root = onelake_root(state, &r.base, &lh.id);
    json!({
        "id": lh.id,
        "type": "Lakehouse",
        "displayName": lh.name,
        "description": "",
        "workspaceId": state.workspace_id,
        "properties": {
            "oneLakeTablesPath": format!("{root}/Tables"),
            "oneLakeFilesPath": format!("{root}/Files"),
            "sqlEndpointProperties": {
                "connectionString": format!("{}.datawarehouse.fabric.microsoft.com", &state.workspace_id[..8]),
                "id": sql_endpoint_id(lh),
                "provisioningStatus": "Success",
            },
        },
    })
}

fn generic_json(state: &State, id: &str, kind: &str, name: &str, description: &str) -> Value {
    json!({
        "id": id,
        "type": kind,
        "displayName": name,
        "description": description,
        "workspaceId": state.workspace_id,
    })
}

/// An SJD as the generic `/items` list shows it (no `properties`).
fn sjd_item_json(state: &State, sjd: &Sjd) -> Value {
    let mut v = generic_json(
        state,
        &sjd.id,
        SJD_TYPE,
        &sjd.display_name,
        &sjd.description,
    );
    if let Some(f) = &sjd.folder_id {
        v["folderId"] = json!(f);
    }
    v
}

pub(crate) fn sjd_json(state: &State, base: &str, sjd: &Sjd) -> Value {
    let mut v = sjd_item_json(state, sjd);
    v["properties"] = json!({ "oneLakeRootPath": onelake_root(state, base, &sjd.id) });
    v
}

pub(crate) fn list_items(state: &State, r: &Req, ws: Ws) -> Result<Response> {
    let filter = r.query.get("type").map(str::to_owned);
    let mut all = Vec::new();
    if ws == Ws::Main {
        for lh in &state.lakehouses {
            all.push(generic_json(state, &lh.id, "Lakehouse", &lh.name, ""));
            all.push(generic_json(
                state,
                &sql_endpoint_id(lh),
                "SQLEndpoint",
                &lh.name,
                "",
            ));
        }
        for sjd in lock(&state.fabric.sjds).iter().filter(|s| !s.pending) {
            all.push(sjd_item_json(state, sjd));
        }
    }
    if let Some(t) = filter {
        all.retain(|v| {
            v["type"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(&t))
        });
    }
    paginate(state, r, all)
}

pub(crate) fn list_lakehouses(state: &State, r: &Req, ws: Ws) -> Result<Response> {
    let all = match ws {
        Ws::Main => state
            .lakehouses
            .iter()
            .map(|lh| lakehouse_json(state, r, lh))
            .collect(),
        Ws::Decoy(_) => Vec::new(),
    };
    paginate(state, r, all)
}

fn find_lakehouse<'a>(state: &'a State, ws: Ws, id: &str) -> Option<&'a Lakehouse> {
    if ws != Ws::Main {
        return None;
    }
    state
        .lakehouses
        .iter()
        .find(|l| l.id.eq_ignore_ascii_case(id))
}

pub(crate) fn get_lakehouse(state: &State, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    require_guid("item", id)?;
    let lh = find_lakehouse(state, ws, id).ok_or_else(item_not_found)?;
    Ok(json_response(StatusCode::OK, &lakehouse_json(state, r, lh)))
}

pub(crate) fn list_sjds(state: &State, r: &Req, ws: Ws) -> Result<Response> {
    let all = match ws {
        Ws::Main => lock(&state.fabric.sjds)
            .iter()
            .filter(|s| !s.pending)
            .map(|s| sjd_json(state, &r.base, s))
            .collect(),
        Ws::Decoy(_) => Vec::new(),
    };
    paginate(state, r, all)
}

/// A visible SJD of the main workspace, cloned.
pub(crate) fn find_sjd(state: &State, ws: Ws, id: &str) -> Result<Sjd> {
    require_guid("item", id)?;
    if ws != Ws::Main {
        return Err(item_not_found());
    }
    lock(&state.fabric.sjds)
        .iter()
        .find(|s| !s.pending && s.id.eq_ignore_ascii_case(id))
        .cloned()
        .ok_or_else(item_not_found)
}

/// Whether `id` is a non-SJD item (lakehouse or SQL endpoint) of the main workspace.
fn other_item(state: &State, ws: Ws, id: &str) -> Option<Value> {
    if ws != Ws::Main {
        return None;
    }
    state.lakehouses.iter().find_map(|lh| {
        if lh.id.eq_ignore_ascii_case(id) {
            Some(generic_json(state, &lh.id, "Lakehouse", &lh.name, ""))
        } else if sql_endpoint_id(lh).eq_ignore_ascii_case(id) {
            Some(generic_json(
                state,
                &sql_endpoint_id(lh),
                "SQLEndpoint",
                &lh.name,
                "",
            ))
        } else {
            None
        }
    })
}

/// getDefinition/updateDefinition/jobs on a lakehouse or SQL endpoint.
pub(crate) fn not_supported_for_item(state: &State, ws: Ws, id: &str) -> Option<ServiceError> {
    other_item(state, ws, id).map(|v| {
        ServiceError::new(
            StatusCode::BAD_REQUEST,
            "OperationNotSupportedForItem",
            format!(
                "The operation is not supported for item type '{}'.",
                v["type"].as_str().unwrap_or("")
            ),
        )
    })
}

pub(crate) fn get_item(state: &State, r: &Req, ws: Ws, id: &str, kind: &str) -> Result<Response> {
    require_guid("item", id)?;
    if kind == "items"
        && let Some(v) = other_item(state, ws, id)
    {
        return Ok(json_response(StatusCode::OK, &v));
    }
    let sjd = find_sjd(state, ws, id)?;
    let mut v = sjd_json(state, &r.base, &sjd);
    if kind == "items"
        && let Some(m) = v.as_object_mut()
    {
        m.remove("properties");
    }
    Ok(json_response(StatusCode::OK, &v))
}

fn name_in_use(name: &str) -> ServiceError {
    // 409 is UNCONFIRMED (the code is documented); names compare exactly.
    ServiceError::new(
        StatusCode::CONFLICT,
        "ItemDisplayNameAlreadyInUse",
        format!("Requested '{name}' is already in use"),
    )
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(bad_input("The displayName field is required."));
    }
    if name.len() > 256 || name.contains(['/', '\\', '\0']) {
        return Err(bad_input(format!("The displayName '{name}' is not valid.")));
    }
    Ok(())
}

fn opt_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_input(format!("The field '{key}' must be a string."))),
    }
}

/// `POST .../sparkJobDefinitions` and `POST .../items` (`generic`, which needs `type`).
pub(crate) fn create_item(state: &Arc<State>, r: &Req, ws: Ws, generic: bool) -> Result<Response> {
    if ws != Ws::Main {
        return Err(ServiceError::new(
            StatusCode::FORBIDDEN,
            "InsufficientPrivileges",
            "The caller does not have sufficient permissions on this workspace.",
        ));
    }
    let body = r
        .json()?
        .ok_or_else(|| bad_input("The request body is required."))?;
    if generic {
        match opt_string(&body, "type")? {
            Some(t) if t == SJD_TYPE => {}
            Some(t) if t.eq_ignore_ascii_case("Lakehouse") => {
                // Documented limitation: lakehouses come from the emulator's configuration.
                return Err(ServiceError::new(
                    StatusCode::BAD_REQUEST,
                    "UnsupportedItemType",
                    "The emulator does not create lakehouses; configure them with --lakehouse.",
                ));
            }
            Some(t) => {
                return Err(ServiceError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidItemType",
                    format!("Item type '{t}' is not valid or not supported."),
                ));
            }
            None => return Err(bad_input("The type field is required.")),
        }
    }
    let name = opt_string(&body, "displayName")?.unwrap_or_default();
    check_name(&name)?;
    let description = opt_string(&body, "description")?.unwrap_or_default();
    let folder_id = opt_string(&body, "folderId")?;
    if let Some(f) = &folder_id {
        require_guid("folder", f)?;
    }
    let definition = match body.get("definition") {
        None | Some(Value::Null) => None,
        Some(d) => Some(validate_definition(d)?),
    };
    require_capacity(state)?;

    let sjd = {
        let mut sjds = lock(&state.fabric.sjds);
        if sjds.iter().any(|s| s.display_name == name) {
            return Err(name_in_use(&name));
        }
        let mut sjd = Sjd {
            id: new_id(state),
            display_name: name,
            description,
            folder_id,
            format: None,
            parts: Vec::new(),
            pending: false,
        };
        if let Some(def) = definition {
            apply(&state.fabric.dir, &mut sjd, def, false);
        }
        sjd.pending = state.fabric.lro_coin();
        sjds.push(sjd.clone());
        if !sjd.pending {
            save(&state.fabric.dir, &sjds)?;
        }
        sjd
    };
    if sjd.pending {
        let (id, base) = (sjd.id, r.base.clone());
        return Ok(lro::start(
            state,
            r,
            Box::new(move |st| {
                let sjd = finish_create(st, &id)?;
                Ok(Some(sjd_json(st, &base, &sjd)))
            }),
        ));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &sjd_json(state, &r.base, &sjd),
    ))
}

/// Completes a 202 create: the item becomes visible and is persisted.
pub(crate) fn finish_create(state: &State, item_id: &str) -> Result<Sjd> {
    let mut sjds = lock(&state.fabric.sjds);
    let sjd = sjds
        .iter_mut()
        .find(|s| s.id == item_id)
        .ok_or_else(item_not_found)?;
    sjd.pending = false;
    let out = sjd.clone();
    save(&state.fabric.dir, &sjds)?;
    Ok(out)
}

/// `PATCH`: displayName and description.
pub(crate) fn update_item(state: &State, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    find_sjd(state, ws, id)?;
    let body = r
        .json()?
        .ok_or_else(|| bad_input("The request body is required."))?;
    let name = opt_string(&body, "displayName")?;
    let description = opt_string(&body, "description")?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    let mut sjds = lock(&state.fabric.sjds);
    if let Some(n) = &name
        && sjds
            .iter()
            .any(|s| s.display_name == *n && !s.id.eq_ignore_ascii_case(id))
    {
        return Err(name_in_use(n));
    }
    let sjd = sjds
        .iter_mut()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .ok_or_else(item_not_found)?;
    if let Some(n) = name {
        sjd.display_name = n;
    }
    if let Some(d) = description {
        sjd.description = d;
    }
    let v = sjd_json(state, &r.base, sjd);
    save(&state.fabric.dir, &sjds)?;
    Ok(json_response(StatusCode::OK, &v))
}

pub(crate) fn delete_item(state: &State, ws: Ws, id: &str) -> Result<Response> {
    require_guid("item", id)?;
    if let Some(e) = not_supported_for_item(state, ws, id) {
        return Err(e);
    }
    find_sjd(state, ws, id)?;
    let mut sjds = lock(&state.fabric.sjds);
    sjds.retain(|s| !s.id.eq_ignore_ascii_case(id));
    save(&state.fabric.dir, &sjds)?;
    let _ = std::fs::remove_dir_all(item_dir(&state.fabric.dir, &id.to_ascii_lowercase()));
    Ok(empty_response(StatusCode::OK))
}

// ---- definitions ----------------------------------------------------------------

/// A lakehouse's definition: `lakehouse.metadata.json` (an empty object for a lakehouse
/// without schemas) and `.platform`. The part list follows Microsoft's "Lakehouse
/// definition" article; the exact payloads the service returns are UNCONFIRMED.
fn lakehouse_definition(r: &Req, lh: &Lakehouse) -> Result<Response> {
    match r.query.get("format") {
        None => {}
        Some(f) if f.eq_ignore_ascii_case("LakehouseDefinitionV1") => {}
        Some(f) => return Err(invalid_format(f)),
    }
    let platform = json!({
        "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
        "metadata": {"type": "Lakehouse", "displayName": lh.name},
        "config": {"version": "2.0", "logicalId": ids::guid_from_name("logical", &lh.id)},
    });
    let part = |path: &str, v: &Value| {
        json!({
            "path": path,
            "payload": STANDARD.encode(serde_json::to_string_pretty(v).unwrap_or_default()),
            "payloadType": "InlineBase64",
        })
    };
    let body = json!({"definition": {"parts": [
        part("lakehouse.metadata.json", &json!({})),
        part(PLATFORM_PART, &platform),
    ]}});
    Ok(json_response(StatusCode::OK, &body))
}

fn wants_v2(r: &Req) -> Result<bool> {
    match r.query.get("format") {
        None => Ok(false),
        Some(FORMAT_V1) => Ok(false),
        Some(FORMAT_V2) => Ok(true),
        Some(f) => Err(invalid_format(f)),
    }
}

pub(crate) fn get_definition(state: &Arc<State>, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    require_guid("item", id)?;
    if let Some(lh) = find_lakehouse(state, ws, id) {
        return lakehouse_definition(r, lh);
    }
    if let Some(e) = not_supported_for_item(state, ws, id) {
        return Err(e);
    }
    let sjd = find_sjd(state, ws, id)?;
    let v2 = wants_v2(r)?;
    if state.fabric.lro_coin() {
        let id = sjd.id;
        return Ok(lro::start(
            state,
            r,
            Box::new(move |st| {
                let sjd = find_sjd(st, Ws::Main, &id)?;
                Ok(Some(definition_json(sjd.info(), &sjd.parts, v2)))
            }),
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &definition_json(sjd.info(), &sjd.parts, v2),
    ))
}

pub(crate) fn update_definition(state: &Arc<State>, r: &Req, ws: Ws, id: &str) -> Result<Response> {
    require_guid("item", id)?;
    if let Some(e) = not_supported_for_item(state, ws, id) {
        return Err(e);
    }
    let sjd = find_sjd(state, ws, id)?;
    let update_metadata = r
        .query
        .bool("updateMetadata")
        .map_err(bad_query)?
        .unwrap_or(false);
    let body = r
        .json()?
        .ok_or_else(|| bad_input("The request body is required."))?;
    let def = match body.get("definition") {
        None | Some(Value::Null) => {
            return Err(ServiceError::new(
                StatusCode::BAD_REQUEST,
                "MissingDefinition",
                "The definition is required.",
            ));
        }
        Some(d) => validate_definition(d)?,
    };
    if update_metadata {
        check_metadata_name(state, &sjd.id, &def)?;
    }
    if state.fabric.lro_coin() {
        let id = sjd.id;
        return Ok(lro::start(
            state,
            r,
            Box::new(move |st| {
                apply_definition(st, &id, def, update_metadata)?;
                Ok(None)
            }),
        ));
    }
    apply_definition(state, &sjd.id, def, update_metadata)?;
    Ok(empty_response(StatusCode::OK))
}

fn check_metadata_name(state: &State, id: &str, def: &Definition) -> Result<()> {
    if let Some(n) = platform_name(def) {
        check_name(&n)?;
        if lock(&state.fabric.sjds)
            .iter()
            .any(|s| s.display_name == n && !s.id.eq_ignore_ascii_case(id))
        {
            return Err(name_in_use(&n));
        }
    }
    Ok(())
}

/// Stores a validated definition on the SJD `id` and persists.
pub(crate) fn apply_definition(
    state: &State,
    id: &str,
    def: Definition,
    update_metadata: bool,
) -> Result<()> {
    let mut sjds = lock(&state.fabric.sjds);
    let sjd = sjds
        .iter_mut()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .ok_or_else(item_not_found)?;
    apply(&state.fabric.dir, sjd, def, update_metadata);
    save(&state.fabric.dir, &sjds)?;
    Ok(())
}

fn apply(dir: &Path, sjd: &mut Sjd, def: Definition, update_metadata: bool) {
    if update_metadata && let Some(p) = &def.platform {
        if let Some(n) = p.pointer("/metadata/displayName").and_then(Value::as_str) {
            sjd.display_name = n.to_owned();
        }
        if let Some(d) = p.pointer("/metadata/description").and_then(Value::as_str) {
            sjd.description = d.to_owned();
        }
    }
    sjd.format = def.format;
    sjd.parts = def.parts;
    materialise(dir, sjd);
}

// ---- persistence ----------------------------------------------------------------

fn items_file(dir: &Path) -> PathBuf {
    dir.join("items.json")
}

pub(crate) fn item_dir(dir: &Path, id: &str) -> PathBuf {
    dir.join("items").join(id)
}

pub(crate) fn load(dir: &Path) -> std::io::Result<Vec<Sjd>> {
    match std::fs::read(items_file(dir)) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes the visible SJDs atomically (temp file + rename).
fn save(dir: &Path, sjds: &[Sjd]) -> Result<()> {
    let visible: Vec<&Sjd> = sjds.iter().filter(|s| !s.pending).collect();
    let data = serde_json::to_vec_pretty(&visible).map_err(ServiceError::internal)?;
    let tmp = dir.join("items.json.tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, items_file(dir))?;
    Ok(())
}

/// Writes the `Main/` and `Libs/` parts of a V2 definition to the SJD's folder,
/// replacing what was there (omitted Libs are deleted, as the real service does).
fn materialise(dir: &Path, sjd: &Sjd) {
    let root = item_dir(dir, &sjd.id);
    for sub in ["Main", "Libs"] {
        let _ = std::fs::remove_dir_all(root.join(sub));
    }
    for p in &sjd.parts {
        if p.path.starts_with("Main/") || p.path.starts_with("Libs/") {
            let target = root.join(&p.path);
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Ok(bytes) = STANDARD.decode(&p.payload) {
                let _ = std::fs::write(target, bytes);
            }
        }
    }
}
