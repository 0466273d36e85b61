//! Long-running operations: calls (SJD create, getDefinition, updateDefinition) that answer
//! either at once (200/201 with the result) or with `202 Accepted` + `x-ms-operation-id`.
//!
//! A 202 is followed by polling `GET /v1/operations/{id}` — the URLs are built here from the
//! operation id, never taken from `Location` (documented examples lack `/v1`) — sleeping the
//! `Retry-After` each answer asks for, until `Succeeded`, then `GET .../result`. An operation
//! with no result (`OperationHasNoResult`) succeeded. `Failed` and `Undefined` are errors
//! carrying the operation's own message. The wait is bounded by wall-clock time, not by a
//! count of polls. Job runs are *not* long-running operations and never come here.

use std::time::Instant;

use reqwest::Method;

use super::client::{FabricClient, Op, parse_json, retry_after, seg};
use super::error::FabricError;
use super::model::OperationState;

impl FabricClient {
    /// Sends the initiating call and, on a 202, waits for the operation. Returns the result
    /// body (`None` when there is none: an empty 200, or `OperationHasNoResult`).
    pub(crate) async fn send_lro(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        op: &Op,
    ) -> Result<Option<bytes::Bytes>, FabricError> {
        let sent = self.send(method, url, body, op).await?;
        let status = sent.response.status().as_u16();
        let headers = sent.response.headers().clone();
        if status != 202 {
            let body = sent
                .response
                .bytes()
                .await
                .map_err(|e| op.bad(format!("the body could not be read: {e}")))?;
            return Ok(Some(body).filter(|b| !b.iter().all(u8::is_ascii_whitespace)));
        }
        let id = operation_id(&headers).ok_or_else(|| {
            op.bad("a 202 without an x-ms-operation-id (or an operations Location)")
        })?;
        self.wait_operation(&id, retry_after(&headers), op).await
    }

    async fn wait_operation(
        &self,
        id: &str,
        first_wait: Option<std::time::Duration>,
        op: &Op,
    ) -> Result<Option<bytes::Bytes>, FabricError> {
        let started = Instant::now();
        let limit = self.poll.operation_timeout;
        let state_url = self.url(&format!("operations/{}", seg(id)));
        let mut wait = first_wait;
        loop {
            let wait_for = wait
                .unwrap_or(self.poll.default_interval)
                .max(self.poll.min_interval);
            if started.elapsed() + wait_for > limit {
                return Err(FabricError::OperationTimeout {
                    what: op.what.clone(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(wait_for).await;
            let sent = self.send(Method::GET, &state_url, None, op).await?;
            wait = retry_after(sent.response.headers());
            let body = sent
                .response
                .bytes()
                .await
                .map_err(|e| op.bad(format!("the body could not be read: {e}")))?;
            let state: OperationState = parse_json(&body, op)?;
            let status = state.status.as_deref().unwrap_or("");
            if status.eq_ignore_ascii_case("Succeeded") {
                break;
            }
            if status.eq_ignore_ascii_case("Failed") || status.eq_ignore_ascii_case("Undefined") {
                let error = state.error.unwrap_or_default();
                return Err(FabricError::OperationFailed {
                    what: op.what.clone(),
                    code: error.error_code.clone(),
                    message: error
                        .describe()
                        .unwrap_or_else(|| format!("the operation ended with status {status}")),
                });
            }
            // NotStarted, Running, a status we do not know, or a throttled body without one:
            // keep waiting.
        }
        let result_url = self.url(&format!("operations/{}/result", seg(id)));
        match self.send_raw(Method::GET, &result_url, None).await {
            Ok(sent) => {
                let body = sent
                    .response
                    .bytes()
                    .await
                    .map_err(|e| op.bad(format!("the body could not be read: {e}")))?;
                Ok(Some(body).filter(|b| !b.iter().all(u8::is_ascii_whitespace)))
            }
            Err(e)
                if e.code()
                    .is_some_and(|c| c.eq_ignore_ascii_case("OperationHasNoResult")) =>
            {
                Ok(None)
            }
            Err(e) => Err(op.fail(e)),
        }
    }
}

/// The operation id of a 202: `x-ms-operation-id`, else the segment after `/operations/` in
/// `Location`. `None` for anything else (a job instance `Location` is not an operation).
pub(crate) fn operation_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(id) = header("x-ms-operation-id") {
        return Some(id);
    }
    let location = header("location")?;
    let path = location.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.split('/');
    parts.by_ref().find(|p| *p == "operations")?;
    parts.next().filter(|p| !p.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::retry::tests::headers;

    #[test]
    fn operation_ids() {
        assert_eq!(
            operation_id(&headers(&[
                ("x-ms-operation-id", "0acd697c-1550-43cd-b998-91bfbfbd47c6"),
                (
                    "location",
                    "https://api.fabric.microsoft.com/v1/operations/other"
                ),
            ]))
            .as_deref(),
            Some("0acd697c-1550-43cd-b998-91bfbfbd47c6")
        );
        // The documented Location without /v1 still yields the id; we build the URL ourselves.
        assert_eq!(
            operation_id(&headers(&[(
                "location",
                "https://api.fabric.microsoft.com/operations/abc/result"
            )]))
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            operation_id(&headers(&[(
                "location",
                "https://api.fabric.microsoft.com/v1/workspaces/w/items/i/jobs/instances/j"
            )])),
            None
        );
        assert_eq!(operation_id(&headers(&[])), None);
    }
}
