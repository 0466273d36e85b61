//! Spark Job Definition *definitions*: the `{format, parts[]}` documents of create,
//! getDefinition and updateDefinition — validation of what a client sends, and the
//! document the service answers (V1 leaves out `Main/` and `Libs/`; `.platform` is made
//! from the item). Pure: no state, no I/O.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::bad_input;
use crate::error::{Result, ServiceError};
use crate::ids;

pub(crate) const SJD_TYPE: &str = "SparkJobDefinition";
pub(crate) const CONFIG_PART: &str = "SparkJobDefinitionV1.json";
pub(crate) const PLATFORM_PART: &str = ".platform";
pub(crate) const FORMAT_V1: &str = "SparkJobDefinitionV1";
pub(crate) const FORMAT_V2: &str = "SparkJobDefinitionV2";

/// The item a definition belongs to, as `.platform` names it.
pub(crate) struct ItemInfo<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Part {
    pub path: String,
    pub payload: String,
}

/// A validated definition from a request.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub format: Option<String>,
    pub parts: Vec<Part>,
    /// The decoded `.platform`, when sent.
    pub platform: Option<Value>,
}

pub(crate) fn invalid_format(f: &str) -> ServiceError {
    ServiceError::new(
        StatusCode::BAD_REQUEST,
        "InvalidDefinitionFormat",
        format!("The definition format '{f}' is not supported for this item type."),
    )
}

pub(crate) fn platform_name(def: &Definition) -> Option<String> {
    def.platform
        .as_ref()?
        .pointer("/metadata/displayName")?
        .as_str()
        .map(str::to_owned)
}

/// The `{"definition": …}` body of getDefinition. V1 (the default) leaves out the
/// `Main/` and `Libs/` parts; `.platform` is generated from the item.
pub(crate) fn definition_json(item: ItemInfo<'_>, stored: &[Part], v2: bool) -> Value {
    let mut parts = Vec::new();
    let config = stored
        .iter()
        .find(|p| p.path == CONFIG_PART)
        .map(|p| p.payload.clone())
        .unwrap_or_else(|| STANDARD.encode(empty_config().to_string()));
    parts.push(json!({"path": CONFIG_PART, "payload": config, "payloadType": "InlineBase64"}));
    if v2 {
        for p in stored.iter().filter(|p| p.path != CONFIG_PART) {
            parts
                .push(json!({"path": p.path, "payload": p.payload, "payloadType": "InlineBase64"}));
        }
    }
    let platform = json!({
        "$schema": "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json",
        "metadata": {"type": SJD_TYPE, "displayName": item.display_name, "description": item.description},
        "config": {"version": "2.0", "logicalId": ids::guid_from_name("logical", item.id)},
    });
    parts.push(json!({
        "path": PLATFORM_PART,
        "payload": STANDARD.encode(serde_json::to_string_pretty(&platform).unwrap_or_default()),
        "payloadType": "InlineBase64",
    }));
    json!({"definition": {"format": if v2 { FORMAT_V2 } else { FORMAT_V1 }, "parts": parts}})
}

/// What an SJD created without a definition answers (TF's empty definition).
pub(crate) fn empty_config() -> Value {
    json!({
        "executableFile": null,
        "defaultLakehouseArtifactId": null,
        "mainClass": null,
        "additionalLakehouseIds": [],
        "retryPolicy": null,
        "commandLineArguments": null,
        "additionalLibraryUris": [],
        "language": null,
        "environmentArtifactId": null,
    })
}

/// The decoded `SparkJobDefinitionV1.json` of an SJD.
pub(crate) fn config(parts: &[Part]) -> Value {
    parts
        .iter()
        .find(|p| p.path == CONFIG_PART)
        .and_then(|p| STANDARD.decode(&p.payload).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(empty_config)
}

fn invalid_parts(msg: String) -> ServiceError {
    ServiceError::new(StatusCode::BAD_REQUEST, "InvalidDefinitionParts", msg)
}

/// Validates a request's `definition` like the real service would. Codes are from the
/// GOSDK list; which code the service picks for each fault is UNCONFIRMED:
/// unknown `format` → `InvalidDefinitionFormat`; `payloadType` other than
/// `InlineBase64` → `UnsupportedPayloadType`; no `SparkJobDefinitionV1.json` →
/// `MissingDefinitionParts`; bad base64, bad JSON, wrongly typed fields (e.g.
/// `commandLineArguments` as an array), unknown or duplicate part paths, `Main/`/`Libs/`
/// parts outside V2 → `InvalidDefinitionParts`; an unparsable `.platform` →
/// `InvalidPlatformFile`.
pub(crate) fn validate_definition(v: &Value) -> Result<Definition> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad_input("The definition must be an object."))?;
    let format = match obj.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f == FORMAT_V1 || f == FORMAT_V2 => Some(f.clone()),
        Some(Value::String(f)) => return Err(invalid_format(f)),
        Some(_) => return Err(invalid_format("?")),
    };
    let v2 = format.as_deref() == Some(FORMAT_V2);
    let parts = match obj.get("parts") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(ServiceError::new(
                StatusCode::BAD_REQUEST,
                "MissingDefinitionParts",
                "The definition has no parts.",
            ));
        }
    };
    let mut out = Vec::new();
    let mut platform = None;
    let mut seen = std::collections::HashSet::new();
    for p in parts {
        let path = p
            .get("path")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid_parts("Every definition part needs a path.".into()))?;
        match p.get("payloadType").and_then(Value::as_str) {
            Some("InlineBase64") => {}
            other => {
                return Err(ServiceError::new(
                    StatusCode::BAD_REQUEST,
                    "UnsupportedPayloadType",
                    format!(
                        "Payload type '{}' of part '{path}' is not supported.",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
        let payload = p
            .get("payload")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_parts(format!("Part '{path}' has no payload.")))?;
        let bytes = STANDARD.decode(payload).map_err(|_| {
            invalid_parts(format!("The payload of part '{path}' is not valid base64."))
        })?;
        if !seen.insert(path.to_owned()) {
            return Err(invalid_parts(format!(
                "Part '{path}' appears more than once."
            )));
        }
        if path == PLATFORM_PART {
            let pv: Value = serde_json::from_slice(&bytes).map_err(|_| {
                ServiceError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidPlatformFile",
                    "The .platform part is not valid JSON.",
                )
            })?;
            platform = Some(pv);
            continue;
        }
        if path == CONFIG_PART {
            check_config(&bytes)?;
        } else if let Some(name) = path
            .strip_prefix("Main/")
            .or_else(|| path.strip_prefix("Libs/"))
        {
            if !v2 {
                return Err(invalid_parts(format!(
                    "Part '{path}' is only allowed in the {FORMAT_V2} format."
                )));
            }
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(invalid_parts(format!("Part path '{path}' is not valid.")));
            }
        } else {
            return Err(invalid_parts(format!(
                "Part '{path}' is not a valid part of a Spark Job Definition."
            )));
        }
        out.push(Part {
            path: path.to_owned(),
            payload: payload.to_owned(),
        });
    }
    if !out.iter().any(|p| p.path == CONFIG_PART) {
        return Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "MissingDefinitionParts",
            format!("The definition lacks the required part '{CONFIG_PART}'."),
        ));
    }
    Ok(Definition {
        format,
        parts: out,
        platform,
    })
}

fn check_config(bytes: &[u8]) -> Result<()> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid_parts(format!("{CONFIG_PART} is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid_parts(format!("{CONFIG_PART} must be a JSON object.")))?;
    let string_fields = [
        "executableFile",
        "defaultLakehouseArtifactId",
        "mainClass",
        "commandLineArguments",
        "language",
        "environmentArtifactId",
    ];
    for f in string_fields {
        match obj.get(f) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => {
                return Err(invalid_parts(format!(
                    "{CONFIG_PART}: field '{f}' must be a string or null."
                )));
            }
        }
    }
    for f in ["additionalLakehouseIds", "additionalLibraryUris"] {
        match obj.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(invalid_parts(format!(
                    "{CONFIG_PART}: field '{f}' must be an array of strings."
                )));
            }
        }
    }
    for f in ["defaultLakehouseArtifactId", "environmentArtifactId"] {
        if let Some(s) = obj.get(f).and_then(Value::as_str)
            && !s.is_empty()
            && !ids::is_guid(s)
        {
            return Err(invalid_parts(format!(
                "{CONFIG_PART}: field '{f}' must be a GUID."
            )));
        }
    }
    Ok(())
}
