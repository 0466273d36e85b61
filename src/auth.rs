//! Bearer tokens per scope: which credential to use, and a cache in front of it.
//!
//! The chain follows DefaultAzureCredential in spirit, on azure_identity 1.x (which has no
//! such chain of its own), choosing the first credential that is *configured*:
//!
//! 1. `FABRIC_REMOTE_TOKEN`: a bearer token used as is (CI, the emulator);
//! 2. client secret: `AZURE_CLIENT_SECRET` with `AZURE_TENANT_ID`/`AZURE_CLIENT_ID`
//!    (or `FABRIC_TEST_TENANT_ID`/`FABRIC_TEST_CLIENT_ID`);
//! 3. workload identity: `AZURE_FEDERATED_TOKEN_FILE` (+ tenant and client id);
//! 4. managed identity: when the environment advertises one (`IDENTITY_ENDPOINT`,
//!    `MSI_ENDPOINT`); IMDS is not probed, because a probe costs every laptop a timeout —
//!    select it with `FABRIC_TEST_AUTH=managed_identity` on a VM;
//! 5. the Azure CLI (`az login`), the default.
//!
//! `FABRIC_TEST_AUTH` picks one explicitly. Tokens are cached per scope until five minutes
//! before they expire (the CLI credential would otherwise run `az` for every request), and
//! concurrent callers share one fetch. A token is a [`Secret`]: it never reaches output,
//! logs or error messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;

use crate::diagnostic::{Diagnostic, Kind};
use crate::env::{self, Env};
use crate::secret::{Secret, redact};

/// Scope of OneLake / ADLS Gen2 tokens.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// Scope of Fabric REST API tokens.
pub const FABRIC_SCOPE: &str = "https://api.fabric.microsoft.com/.default";

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Which credential the chain settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Token,
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

impl CredentialKind {
    pub fn describe(self) -> &'static str {
        match self {
            CredentialKind::Token => "FABRIC_REMOTE_TOKEN",
            CredentialKind::ClientSecret => "client secret",
            CredentialKind::WorkloadIdentity => "workload identity",
            CredentialKind::ManagedIdentity => "managed identity",
            CredentialKind::AzureCli => "Azure CLI",
        }
    }
}

/// A source of bearer tokens, cheap to clone and shared by every client.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    kind: CredentialKind,
    source: Source,
    cache: Mutex<HashMap<String, Cached>>,
    fetching: tokio::sync::Mutex<()>,
}

enum Source {
    Static(Secret),
    Azure(Arc<dyn TokenCredential>),
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    expires_at: SystemTime,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A fixed bearer token (never expires, never refreshed).
    pub fn from_token(token: Secret) -> Self {
        Self::new(CredentialKind::Token, Source::Static(token))
    }

    /// The credential chain described in the module docs.
    pub fn from_env(env: &Env) -> Result<Self, AuthError> {
        let choice = env.get(env::FABRIC_TEST_AUTH);
        let kind = match choice.as_deref() {
            Some(choice) => explicit_kind(choice)?.unwrap_or_else(|| implicit_kind(env)),
            None => implicit_kind(env),
        };
        let source = match kind {
            CredentialKind::Token => Source::Static(Secret::new(
                env.get(env::FABRIC_REMOTE_TOKEN)
                    .ok_or(AuthError::Missing("FABRIC_REMOTE_TOKEN"))?,
            )),
            CredentialKind::ClientSecret => {
                let tenant = tenant_id(env).ok_or(AuthError::Missing("AZURE_TENANT_ID"))?;
                let client = client_id(env).ok_or(AuthError::Missing("AZURE_CLIENT_ID"))?;
                // Remembered as a Secret so that `redact` removes it from any message.
                let secret = Secret::new(
                    env.get(env::AZURE_CLIENT_SECRET)
                        .ok_or(AuthError::Missing("AZURE_CLIENT_SECRET"))?,
                );
                let cred = azure_identity::ClientSecretCredential::new(
                    &tenant,
                    client,
                    secret.expose().to_string().into(),
                    None,
                )
                .map_err(|e| AuthError::setup(kind, &e))?;
                Source::Azure(cred)
            }
            CredentialKind::WorkloadIdentity => {
                let options = azure_identity::WorkloadIdentityCredentialOptions {
                    client_id: client_id(env),
                    tenant_id: tenant_id(env),
                    token_file_path: env.get(env::AZURE_FEDERATED_TOKEN_FILE).map(Into::into),
                    ..Default::default()
                };
                let cred = azure_identity::WorkloadIdentityCredential::new(Some(options))
                    .map_err(|e| AuthError::setup(kind, &e))?;
                Source::Azure(cred)
            }
            CredentialKind::ManagedIdentity => {
                let mut options = azure_identity::ManagedIdentityCredentialOptions::default();
                if let Some(id) = env.get(env::AZURE_CLIENT_ID) {
                    options.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(id));
                }
                let cred = azure_identity::ManagedIdentityCredential::new(Some(options))
                    .map_err(|e| AuthError::setup(kind, &e))?;
                Source::Azure(cred)
            }
            CredentialKind::AzureCli => {
                let options = azure_identity::AzureCliCredentialOptions {
                    tenant_id: env.get(env::FABRIC_TEST_TENANT_ID),
                    ..Default::default()
                };
                let cred = azure_identity::AzureCliCredential::new(Some(options))
                    .map_err(|e| AuthError::setup(kind, &e))?;
                Source::Azure(cred)
            }
        };
        Ok(Self::new(kind, source))
    }

    fn new(kind: CredentialKind, source: Source) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                source,
                cache: Mutex::new(HashMap::new()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn kind(&self) -> CredentialKind {
        self.inner.kind
    }

    /// A token for `scope`, from the cache while it has more than five minutes left.
    pub async fn token(&self, scope: &str) -> Result<Secret, AuthError> {
        if let Source::Static(token) = &self.inner.source {
            return Ok(token.clone());
        }
        if let Some(token) = self.cached(scope) {
            return Ok(token);
        }
        // One fetch at a time: a burst of parallel requests must not start a burst of `az`.
        let _guard = self.inner.fetching.lock().await;
        if let Some(token) = self.cached(scope) {
            return Ok(token);
        }
        let Source::Azure(cred) = &self.inner.source else {
            unreachable!("static tokens returned above")
        };
        let access = cred
            .get_token(&[scope], None)
            .await
            .map_err(|e| AuthError::fetch(self.inner.kind, &e))?;
        let token = Secret::new(access.token.secret());
        let expires_at = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(access.expires_on.unix_timestamp()).unwrap_or(0));
        self.lock_cache().insert(
            scope.to_string(),
            Cached {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// Forgets `token` for `scope` after the service rejected it (401), so the next call
    /// fetches a fresh one. Returns false when nothing can be refreshed (a fixed token).
    pub fn invalidate(&self, scope: &str, token: &Secret) -> bool {
        if matches!(self.inner.source, Source::Static(_)) {
            return false;
        }
        let mut cache = self.lock_cache();
        if cache.get(scope).is_some_and(|c| &c.token == token) {
            cache.remove(scope);
        }
        true
    }

    fn cached(&self, scope: &str) -> Option<Secret> {
        let cache = self.lock_cache();
        let entry = cache.get(scope)?;
        let fresh = entry
            .expires_at
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left > REFRESH_MARGIN);
        fresh.then(|| entry.token.clone())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A poisoned cache only means another thread panicked mid-insert; the map is still valid.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn tenant_id(env: &Env) -> Option<String> {
    env.get(env::AZURE_TENANT_ID)
        .or_else(|| env.get(env::FABRIC_TEST_TENANT_ID))
}

fn client_id(env: &Env) -> Option<String> {
    env.get(env::AZURE_CLIENT_ID)
        .or_else(|| env.get(env::FABRIC_TEST_CLIENT_ID))
}

fn implicit_kind(env: &Env) -> CredentialKind {
    if env.get(env::FABRIC_REMOTE_TOKEN).is_some() {
        CredentialKind::Token
    } else if env.get(env::AZURE_CLIENT_SECRET).is_some() {
        CredentialKind::ClientSecret
    } else if env.get(env::AZURE_FEDERATED_TOKEN_FILE).is_some() {
        CredentialKind::WorkloadIdentity
    } else if env.get(env::IDENTITY_ENDPOINT).is_some() || env.get(env::MSI_ENDPOINT).is_some() {
        CredentialKind::ManagedIdentity
    } else {
        CredentialKind::AzureCli
    }
}

/// `FABRIC_TEST_AUTH` values: ours, plus the spellings dbt-fabric's `test.env` uses. `None`
/// for the choices that mean "the default chain" (dbt-fabric's `ActiveDirectoryDefault`,
/// `environment`, `auto`), which [`implicit_kind`] resolves as when the variable is unset.
fn explicit_kind(choice: &str) -> Result<Option<CredentialKind>, AuthError> {
    let normalized = choice.trim().to_ascii_lowercase().replace('-', "_");
    Ok(Some(match normalized.as_str() {
        "activedirectorydefault" | "default" | "environment" | "auto" => return Ok(None),
        "token" | "env_token" => CredentialKind::Token,
        "client_secret" | "service_principal" | "activedirectoryserviceprincipal" | "spn" => {
            CredentialKind::ClientSecret
        }
        "workload_identity" | "federated" => CredentialKind::WorkloadIdentity,
        "managed_identity" | "msi" | "activedirectorymsi" => CredentialKind::ManagedIdentity,
        "cli" | "azure_cli" | "az" => CredentialKind::AzureCli,
        "notebookutils" => return Err(AuthError::NotebookUtils),
        _ => return Err(AuthError::UnknownChoice(choice.to_string())),
    }))
}

/// Why no token could be had. Messages are one sentence; none contains a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: {0} is not set")]
    Missing(&'static str),
    #[error(
        "FABRIC_TEST_AUTH={0} is not a credential fabric-remote knows; use token, client_secret, workload_identity, managed_identity, cli, or ActiveDirectoryDefault (the default chain)"
    )]
    UnknownChoice(String),
    #[error(
        "FABRIC_TEST_AUTH=notebookutils works only inside Fabric Spark; unset it locally or choose cli"
    )]
    NotebookUtils,
    #[error("the Azure CLI (`az`) is not installed or not on PATH")]
    CliMissing,
    #[error("the Azure CLI is not logged in")]
    CliNotLoggedIn,
    #[error("could not set up the {kind} credential: {message}")]
    Setup { kind: &'static str, message: String },
    #[error("could not get a token from the {kind} credential: {message}")]
    Fetch { kind: &'static str, message: String },
}

impl AuthError {
    fn setup(kind: CredentialKind, err: &azure_core::Error) -> Self {
        AuthError::Setup {
            kind: kind.describe(),
            message: redact(&first_line(&err.to_string())).into_owned(),
        }
    }

    fn fetch(kind: CredentialKind, err: &azure_core::Error) -> Self {
        let text = full_text(err);
        if kind == CredentialKind::AzureCli {
            if text.contains("not found on PATH") || text.contains("wasn't found on PATH") {
                return AuthError::CliMissing;
            }
            if text.contains("az login") {
                return AuthError::CliNotLoggedIn;
            }
        }
        AuthError::Fetch {
            kind: kind.describe(),
            message: redact(&first_line(&text)).into_owned(),
        }
    }
}

impl Diagnostic for AuthError {
    /// No token means the credentials are not configured: a configuration error.
    fn kind(&self) -> Kind {
        Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        const HOW: &str = "run `az login`, or set FABRIC_REMOTE_TOKEN, or AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (see test.env.sample)";
        Some(match self {
            AuthError::CliMissing | AuthError::CliNotLoggedIn | AuthError::Missing(_) => {
                HOW.to_string()
            }
            AuthError::Fetch { .. } | AuthError::Setup { .. } => {
                format!("check the credential's settings, or {HOW}")
            }
            _ => return None,
        })
    }
}

/// The error and its sources, joined: azure_core puts the useful part (CLI stderr) in a source.
fn full_text(err: &azure_core::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The first meaningful line, without the CLI's `ERROR:` prefix.
fn first_line(text: &str) -> String {
    text.lines()
        .map(|l| l.trim().trim_start_matches("ERROR:").trim())
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_map(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn chain_picks_the_first_configured_credential() {
        assert_eq!(
            implicit_kind(&env(&[
                ("FABRIC_REMOTE_TOKEN", "t"),
                ("AZURE_CLIENT_SECRET", "s")
            ])),
            CredentialKind::Token
        );
        assert_eq!(
            implicit_kind(&env(&[("AZURE_CLIENT_SECRET", "s")])),
            CredentialKind::ClientSecret
        );
        assert_eq!(
            implicit_kind(&env(&[("AZURE_FEDERATED_TOKEN_FILE", "/f")])),
            CredentialKind::WorkloadIdentity
        );
        assert_eq!(
            implicit_kind(&env(&[("IDENTITY_ENDPOINT", "http://x")])),
            CredentialKind::ManagedIdentity
        );
        assert_eq!(implicit_kind(&env(&[])), CredentialKind::AzureCli);
        // Empty values count as unset.
        assert_eq!(
            implicit_kind(&env(&[("FABRIC_REMOTE_TOKEN", " ")])),
            CredentialKind::AzureCli
        );
    }

    #[test]
    fn explicit_choice_accepts_dbt_fabric_spellings() {
        assert_eq!(
            explicit_kind("ActiveDirectoryServicePrincipal").unwrap(),
            Some(CredentialKind::ClientSecret)
        );
        assert_eq!(
            explicit_kind("CLI").unwrap(),
            Some(CredentialKind::AzureCli)
        );
        assert_eq!(
            explicit_kind("workload-identity").unwrap(),
            Some(CredentialKind::WorkloadIdentity)
        );
        // dbt-fabric's default (DefaultAzureCredential) means our default chain.
        assert_eq!(explicit_kind("ActiveDirectoryDefault").unwrap(), None);
        let chosen = Credentials::from_env(&env(&[
            ("FABRIC_TEST_AUTH", "ActiveDirectoryDefault"),
            ("FABRIC_REMOTE_TOKEN", "t"),
        ]));
        assert!(chosen.is_ok(), "{chosen:?}");
        assert!(matches!(
            explicit_kind("notebookutils"),
            Err(AuthError::NotebookUtils)
        ));
        assert!(matches!(
            explicit_kind("magic"),
            Err(AuthError::UnknownChoice(_))
        ));
    }

    #[test]
    fn client_secret_ids_fall_back_to_fabric_test_names() {
        let e = env(&[
            ("AZURE_CLIENT_SECRET", "very-secret-value"),
            (
                "FABRIC_TEST_TENANT_ID",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ),
            (
                "FABRIC_TEST_CLIENT_ID",
                "00000000-0000-0000-0000-000000000001",
            ),
        ]);
        let creds = Credentials::from_env(&e).unwrap();
        assert_eq!(creds.kind(), CredentialKind::ClientSecret);
        assert!(!format!("{creds:?}").contains("very-secret-value"));
    }

    #[test]
    fn missing_pieces_are_named() {
        let err = Credentials::from_env(&env(&[
            ("FABRIC_TEST_AUTH", "client_secret"),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no credentials: AZURE_CLIENT_ID is not set"
        );
        assert!(err.hint().is_some());
    }

    #[tokio::test]
    async fn static_token_is_used_as_is_and_not_refreshable() {
        let creds = Credentials::from_env(&env(&[("FABRIC_REMOTE_TOKEN", "abc")])).unwrap();
        let t = creds.token(STORAGE_SCOPE).await.unwrap();
        assert_eq!(t.expose(), "abc");
        assert!(!creds.invalidate(STORAGE_SCOPE, &t));
    }

    #[test]
    fn first_line_strips_cli_prefix() {
        assert_eq!(
            first_line("\nERROR: Please run 'az login' to setup account.\nmore"),
            "Please run 'az login' to setup account."
        );
    }
}
