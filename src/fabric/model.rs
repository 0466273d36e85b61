//! Wire types of the Fabric REST API, parsed leniently: the fields we use, defaults for the
//! ones that may be missing or `null`, and helpers for the formats the service really sends
//! (timestamps without a `Z` and with 7 fractional digits, base64 definition parts, GUIDs).
//!
//! Nothing here does I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The one JSON part of a Spark job definition (same file name in V1 and V2).
pub const SJD_PART: &str = "SparkJobDefinitionV1.json";
/// The definition format whose `executableFile` is a full `abfss://` URL.
pub const SJD_FORMAT_V1: &str = "SparkJobDefinitionV1";

/// A workspace as listed by `GET /v1/workspaces`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Absent when the workspace is not on a capacity (then nothing Spark can run in it).
    #[serde(default)]
    pub capacity_id: Option<String>,
}

/// Any workspace item (lakehouse, Spark job definition…).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One page of a paginated list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_default")]
    pub value: Vec<T>,
    #[serde(default)]
    pub continuation_token: Option<String>,
    #[serde(default)]
    pub continuation_uri: Option<String>,
}

/// An item definition: named parts, each an inline base64 payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub parts: Vec<DefinitionPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionPart {
    pub path: String,
    pub payload: String,
    #[serde(default = "inline_base64")]
    pub payload_type: String,
}

fn inline_base64() -> String {
    "InlineBase64".into()
}

/// `{"definition": {...}}`, the body of getDefinition's answer and of updateDefinition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DefinitionEnvelope {
    pub definition: Definition,
}

/// The content of `SparkJobDefinitionV1.json`. Unknown fields are kept, so a definition
/// read, changed and written back loses nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SparkJobDefinitionV1 {
    /// V1: the full `abfss://` URL of the main file.
    #[serde(default)]
    pub executable_file: Option<String>,
    /// The default lakehouse's id (a plain GUID string).
    #[serde(default)]
    pub default_lakehouse_artifact_id: Option<String>,
    #[serde(default)]
    pub main_class: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub additional_lakehouse_ids: Vec<String>,
    #[serde(default)]
    pub retry_policy: Option<Value>,
    /// One space-separated string, never an array.
    #[serde(default)]
    pub command_line_arguments: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub additional_library_uris: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub environment_artifact_id: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl SparkJobDefinitionV1 {
    /// A Python job: `executable` (an `abfss://` URL), its default lakehouse, its arguments.
    pub fn python(executable: &str, lakehouse_id: &str, args: Option<&str>) -> Self {
        Self {
            executable_file: Some(executable.to_string()),
            default_lakehouse_artifact_id: Some(lakehouse_id.to_string()),
            main_class: Some(String::new()),
            command_line_arguments: Some(args.unwrap_or("").to_string()),
            language: Some("Python".into()),
            ..Self::default()
        }
    }

    /// True when running `self` would run the same thing as `other`: same file, lakehouse,
    /// arguments and language (GUIDs and the language compared case-insensitively).
    pub fn same_target(&self, other: &Self) -> bool {
        fn norm(v: &Option<String>) -> String {
            v.as_deref().unwrap_or("").trim().to_string()
        }
        norm(&self.executable_file) == norm(&other.executable_file)
            && norm(&self.default_lakehouse_artifact_id)
                .eq_ignore_ascii_case(&norm(&other.default_lakehouse_artifact_id))
            && norm(&self.command_line_arguments) == norm(&other.command_line_arguments)
            && norm(&self.language).eq_ignore_ascii_case(&norm(&other.language))
    }

    /// The definition carrying this content as its one part (format V1).
    pub fn to_definition(&self) -> Definition {
        let json = serde_json::to_vec(self).expect("a definition always serializes");
        Definition {
            format: Some(SJD_FORMAT_V1.into()),
            parts: vec![DefinitionPart {
                path: SJD_PART.into(),
                payload: base64_encode(&json),
                payload_type: inline_base64(),
            }],
        }
    }

    /// Reads the `SparkJobDefinitionV1.json` part of `definition`; `None` when there is none.
    pub fn from_definition(definition: &Definition) -> Result<Option<Self>, String> {
        let Some(part) = definition
            .parts
            .iter()
            .find(|p| p.path.eq_ignore_ascii_case(SJD_PART))
        else {
            return Ok(None);
        };
        let bytes = base64_decode(&part.payload)
            .ok_or_else(|| format!("the {SJD_PART} part is not valid base64"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(Self::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("the {SJD_PART} part is not the expected JSON: {e}"))
    }
}

/// State of a long-running operation (`GET /v1/operations/{id}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationState {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The Fabric error object (`failureReason`, an operation's `error`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl ErrorDetail {
    /// `message (errorCode)`, or whichever of the two is there.
    pub fn describe(&self) -> Option<String> {
        let message = self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let code = self.error_code.as_deref().filter(|c| !c.is_empty());
        match (message, code) {
            (Some(m), Some(c)) => Some(format!("{m} ({c})")),
            (Some(m), None) => Some(m.to_string()),
            (None, Some(c)) => Some(c.to_string()),
            (None, None) => None,
        }
    }
}

/// A job instance's status. The service's enum "may be extended": unknown values are kept
/// in [`JobStatus::Other`] and are not terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    NotStarted,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    Deduped,
    Other(String),
}

impl JobStatus {
    pub fn parse(s: &str) -> Self {
        let known = [
            ("NotStarted", JobStatus::NotStarted),
            ("InProgress", JobStatus::InProgress),
            ("Completed", JobStatus::Completed),
            ("Failed", JobStatus::Failed),
            ("Cancelled", JobStatus::Cancelled),
            ("Canceled", JobStatus::Cancelled),
            ("Deduped", JobStatus::Deduped),
        ];
        known
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(_, status)| status)
            .unwrap_or_else(|| JobStatus::Other(s.to_string()))
    }

    /// The terminal state this status is, if it is one.
    pub fn terminal(&self) -> Option<TerminalState> {
        match self {
            JobStatus::Completed => Some(TerminalState::Completed),
            JobStatus::Failed => Some(TerminalState::Failed),
            JobStatus::Cancelled => Some(TerminalState::Cancelled),
            JobStatus::Deduped => Some(TerminalState::Deduped),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::NotStarted => "NotStarted",
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Deduped => "Deduped",
            JobStatus::Other(s) => s,
        }
    }
}

/// How a job ended. Only [`TerminalState::Completed`] is success: `Deduped` means the job was
/// not run at all (another run of the same definition was active), `Cancelled` that it was
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalState {
    Completed,
    Failed,
    Cancelled,
    Deduped,
}

impl TerminalState {
    pub fn is_success(self) -> bool {
        self == TerminalState::Completed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TerminalState::Completed => "Completed",
            TerminalState::Failed => "Failed",
            TerminalState::Cancelled => "Cancelled",
            TerminalState::Deduped => "Deduped",
        }
    }

    /// What the state means for the person who asked for the run.
    pub fn meaning(self) -> &'static str {
        match self {
            TerminalState::Completed => "the job ran and succeeded",
            TerminalState::Failed => "the job ran and failed",
            TerminalState::Cancelled => "the job was cancelled before it finished",
            TerminalState::Deduped => {
                "not run: another run of this Spark job definition was already active"
            }
        }
    }
}

/// A job instance (`GET .../items/{id}/jobs/instances/{jobId}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobInstance {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
    #[serde(default)]
    pub job_type: Option<String>,
    #[serde(default)]
    pub invoke_type: Option<String>,
    /// Missing on throttled answers; such an answer says nothing about the job.
    #[serde(default, deserialize_with = "lenient_status")]
    pub status: Option<JobStatus>,
    #[serde(default, rename = "startTimeUtc", deserialize_with = "lenient_time")]
    pub start_time: Option<SystemTime>,
    #[serde(default, rename = "endTimeUtc", deserialize_with = "lenient_time")]
    pub end_time: Option<SystemTime>,
    #[serde(default, deserialize_with = "lenient_error")]
    pub failure_reason: Option<ErrorDetail>,
}

/// A Livy session of a Spark job definition (one per run attempt).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LivySession {
    #[serde(default)]
    pub livy_id: Option<String>,
    #[serde(default)]
    pub spark_application_id: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub job_instance_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub submitted_date_time: Option<SystemTime>,
    #[serde(default)]
    pub attempt_number: Option<i64>,
}

/// Per-run overrides (`executionData` of the run request). Field names differ from the
/// definition's: lakehouse and environment are item references here.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line_arguments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lakehouse_id: Option<ItemReference>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemReference {
    pub reference_type: String,
    pub workspace_id: String,
    pub item_id: String,
}

impl ItemReference {
    pub fn by_id(workspace_id: &str, item_id: &str) -> Self {
        Self {
            reference_type: "ById".into(),
            workspace_id: workspace_id.into(),
            item_id: item_id.into(),
        }
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn lenient_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JobStatus>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_str().map(JobStatus::parse)))
}

fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_str().and_then(parse_timestamp)))
}

fn lenient_error<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ErrorDetail>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(ErrorDetail {
            message: Some(s),
            ..ErrorDetail::default()
        }),
        Some(v @ Value::Object(_)) => serde_json::from_value(v).ok(),
        _ => None,
    })
}

/// Parses the timestamps Fabric sends: `2023-04-22T06:35:00.7812154` (no zone, read as UTC),
/// `…Z`, `…+02:00`, any number of fractional digits, `T` or a space. `None` if unreadable.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut value = 0u32;
        for (i, c) in frac[..digits].bytes().enumerate() {
            if i < 9 {
                value = value * 10 + u32::from(c - b'0');
            }
        }
        nanos = value * 10u32.pow(9u32.saturating_sub(digits as u32));
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let days = crate::time::days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

/// True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, any case).
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Standard base64 with padding (what `InlineBase64` parts carry).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes base64 as a service might send it: standard or URL-safe alphabet, padding
/// optional, line breaks ignored.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT)
        .decode(&cleaned)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT).decode(&cleaned))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn timestamps_as_the_service_sends_them() {
        // GetItemJobInstance.json: 7 fractional digits, no zone.
        let t = parse_timestamp("2023-04-22T06:35:00.7812154").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_682_145_300
        );
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(),
            781_215_400
        );
        assert_eq!(
            parse_timestamp("2023-09-13T14:56:18.477Z"),
            Some(UNIX_EPOCH + Duration::new(1_694_616_978, 477_000_000))
        );
        let zoned = parse_timestamp("2023-09-13T16:56:18+02:00").unwrap();
        assert_eq!(secs(zoned), 1_694_616_978.0);
        assert!(parse_timestamp("2025-06-06 08:16:15").is_some());
        for bad in [
            "",
            "null",
            "2023-13-01T00:00:00",
            "2023-04-22",
            "2023-04-22T06:35:00.Z",
            "2023-04-22T06:35:00 UTC",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn job_instance_with_null_failure_reason_and_zoneless_times() {
        let body = r#"{"id":"4b218778-e7a5-4d73-8187-f10824047715","itemId":"431e8d7b-4a95-4c02-8ccd-6faef5ba1bd7",
            "jobType":"sparkjob","invokeType":"Manual","status":"Completed","rootActivityId":"x",
            "startTimeUtc":"2023-04-22T06:35:00.7812154","endTimeUtc":"2023-04-22T06:36:00.1","failureReason":null}"#;
        let j: JobInstance = serde_json::from_str(body).unwrap();
        assert_eq!(j.status, Some(JobStatus::Completed));
        assert_eq!(j.failure_reason, None);
        assert!(j.end_time.unwrap() > j.start_time.unwrap());
        let running: JobInstance = serde_json::from_str(
            r#"{"status":"InProgress","startTimeUtc":null,"endTimeUtc":null}"#,
        )
        .unwrap();
        assert_eq!(running.status, Some(JobStatus::InProgress));
        assert_eq!(running.end_time, None);
    }

    #[test]
    fn throttled_body_without_status_parses_as_no_status() {
        let body = r#"{"requestId":"r","errorCode":"RequestBlocked","message":"Request is blocked by the upstream service until: 5/1/2024 10:00:00 AM (UTC)"}"#;
        let j: JobInstance = serde_json::from_str(body).unwrap();
        assert_eq!(j.status, None);
    }

    #[test]
    fn failure_reason_shapes() {
        let j: JobInstance = serde_json::from_str(
            r#"{"status":"Failed","failureReason":{"errorCode":"JobInstanceStatusFailed","message":"ValueError: boom","requestId":"r"}}"#,
        )
        .unwrap();
        assert_eq!(
            j.failure_reason.unwrap().describe().unwrap(),
            "ValueError: boom (JobInstanceStatusFailed)"
        );
        let j: JobInstance =
            serde_json::from_str(r#"{"status":"Failed","failureReason":"plain"}"#).unwrap();
        assert_eq!(j.failure_reason.unwrap().message.as_deref(), Some("plain"));
    }

    #[test]
    fn statuses_and_terminal_states() {
        assert_eq!(
            JobStatus::parse("deduped").terminal(),
            Some(TerminalState::Deduped)
        );
        assert!(!TerminalState::Deduped.is_success());
        assert!(!TerminalState::Cancelled.is_success());
        assert!(TerminalState::Completed.is_success());
        assert_eq!(JobStatus::parse("InProgress").terminal(), None);
        let odd = JobStatus::parse("DeadLettered");
        assert_eq!(odd, JobStatus::Other("DeadLettered".into()));
        assert_eq!(odd.terminal(), None);
    }

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0, 255, 128, 7],
        ] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9v*"), None);
    }

    #[test]
    fn definition_round_trip_keeps_unknown_fields() {
        let raw = r#"{"executableFile":"abfss://w@onelake.dfs.fabric.microsoft.com/l/Files/a.py",
            "defaultLakehouseArtifactId":"L","mainClass":"","additionalLakehouseIds":null,
            "retryPolicy":null,"commandLineArguments":"--x 1","additionalLibraryUris":[],
            "language":"Python","environmentArtifactId":null,"somethingNew":{"a":1}}"#;
        let def = Definition {
            format: None,
            parts: vec![DefinitionPart {
                path: SJD_PART.into(),
                payload: base64_encode(raw.as_bytes()),
                payload_type: "InlineBase64".into(),
            }],
        };
        let content = SparkJobDefinitionV1::from_definition(&def)
            .unwrap()
            .unwrap();
        assert_eq!(content.command_line_arguments.as_deref(), Some("--x 1"));
        assert!(content.extra.contains_key("somethingNew"));
        let again = SparkJobDefinitionV1::from_definition(&content.to_definition())
            .unwrap()
            .unwrap();
        assert_eq!(again, content);
        let want = SparkJobDefinitionV1::python(
            "abfss://w@onelake.dfs.fabric.microsoft.com/l/Files/a.py",
            "l",
            Some("--x 1"),
        );
        assert!(content.same_target(&want));
        let elsewhere =
            SparkJobDefinitionV1::python("abfss://w@x/l/Files/b.py", "l", Some("--x 1"));
        assert!(!content.same_target(&elsewhere));
        // The wire form: arguments one string, language Python, base64 with padding.
        let wire = serde_json::to_value(&want).unwrap();
        assert_eq!(wire["commandLineArguments"], "--x 1");
        assert_eq!(wire["language"], "Python");
        assert_eq!(wire["defaultLakehouseArtifactId"], "l");
        assert!(
            SparkJobDefinitionV1::from_definition(&Definition {
                format: None,
                parts: vec![]
            })
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn guids() {
        assert!(is_guid("4b218778-e7a5-4d73-8187-f10824047715"));
        assert!(is_guid("4B218778-E7A5-4D73-8187-F10824047715"));
        assert!(!is_guid("4b218778e7a54d738187f10824047715"));
        assert!(!is_guid("My Workspace"));
        assert!(!is_guid("4b218778-e7a5-4d73-8187-f1082404771g"));
    }

    #[test]
    fn pages_with_null_continuations() {
        let p: Page<Item> = serde_json::from_str(
            r#"{"value":[{"id":"a","displayName":"x","type":"Lakehouse"}],"continuationToken":null,"continuationUri":null}"#,
        )
        .unwrap();
        assert_eq!(p.value.len(), 1);
        assert!(p.continuation_token.is_none() && p.continuation_uri.is_none());
    }
}
