//! Every environment variable fabric-remote reads, in one place, with what it means.
//!
//! Reading goes through [`Env`], so tests and `test.env` layering can supply their own values
//! instead of the process environment.

use std::collections::HashMap;

/// A bearer token used as is for every request (CI, the emulator). Never printed.
pub const FABRIC_REMOTE_TOKEN: &str = "FABRIC_REMOTE_TOKEN";
/// Replaces `https://onelake.dfs.fabric.microsoft.com` (emulator, sovereign clouds).
pub const FABRIC_REMOTE_ONELAKE_ENDPOINT: &str = "FABRIC_REMOTE_ONELAKE_ENDPOINT";
/// Replaces `https://api.fabric.microsoft.com` (emulator, sovereign clouds).
pub const FABRIC_REMOTE_API_ENDPOINT: &str = "FABRIC_REMOTE_API_ENDPOINT";

/// A PEM file with a CA certificate to trust besides the system's (the one
/// `fabric-remote emulator --tls` writes to its data directory).
pub const FABRIC_REMOTE_CA_FILE: &str = "FABRIC_REMOTE_CA_FILE";

/// Where sync keeps its hash cache and manifest copy (default: `~/.cache/fabric-remote`).
pub const FABRIC_REMOTE_CACHE_DIR: &str = "FABRIC_REMOTE_CACHE_DIR";

/// `1`: the remote entry point skips `pip install` (the emulator runs jobs with a Python that
/// already has what the tests need).
pub const FABRIC_REMOTE_SKIP_INSTALL: &str = "FABRIC_REMOTE_SKIP_INSTALL";

/// Blob API: a SAS token (`sv=…&sig=…`, with or without the leading `?`) for the account or
/// container (the Azure CLI's name). Never printed.
pub const AZURE_STORAGE_SAS_TOKEN: &str = "AZURE_STORAGE_SAS_TOKEN";
/// Blob API: a base64 account key for Shared Key authorisation (the Azure CLI's name). Never
/// printed.
pub const AZURE_STORAGE_KEY: &str = "AZURE_STORAGE_KEY";
/// Blob API: the account [`AZURE_STORAGE_KEY`] belongs to, when the URL does not name it.
pub const AZURE_STORAGE_ACCOUNT: &str = "AZURE_STORAGE_ACCOUNT";
/// Blob API: a connection string (`AccountName=…;AccountKey=…` or
/// `SharedAccessSignature=…`, or `UseDevelopmentStorage=true` for Azurite). Never printed.
pub const AZURE_STORAGE_CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// Selects one credential explicitly: `token`, `client_secret`, `workload_identity`,
/// `managed_identity`, `cli` (plus dbt-fabric's spellings, see `auth`).
pub const FABRIC_TEST_AUTH: &str = "FABRIC_TEST_AUTH";
pub const FABRIC_TEST_TENANT_ID: &str = "FABRIC_TEST_TENANT_ID";
pub const FABRIC_TEST_CLIENT_ID: &str = "FABRIC_TEST_CLIENT_ID";
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// Set on Azure compute that offers a managed identity (App Service, Functions, Arc…).
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// Older name of [`IDENTITY_ENDPOINT`] (Cloud Shell, older App Service).
pub const MSI_ENDPOINT: &str = "MSI_ENDPOINT";

pub const FABRIC_TEST_WORKSPACE_NAME: &str = "FABRIC_TEST_WORKSPACE_NAME";
pub const FABRIC_TEST_WORKSPACE_ID: &str = "FABRIC_TEST_WORKSPACE_ID";
pub const FABRIC_TEST_LAKEHOUSE_NAME: &str = "FABRIC_TEST_LAKEHOUSE_NAME";
pub const FABRIC_TEST_SPARK_JOB_NAME: &str = "FABRIC_TEST_SPARK_JOB_NAME";
pub const FABRIC_TEST_SPARK_EXEC_MODE: &str = "FABRIC_TEST_SPARK_EXEC_MODE";
pub const FABRIC_TEST_ONELAKE_PATH: &str = "FABRIC_TEST_ONELAKE_PATH";

/// A source of environment variables: the process environment, or a fixed map.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { overrides: None }
    }

    /// A fixed set of variables (tests; `test.env` merged with the process environment).
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            overrides: Some(vars),
        }
    }

    /// The variable's value, with empty values treated as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }
}
