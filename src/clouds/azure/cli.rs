//! What the Azure CLI knows, read from its files without running it: the subscriptions of the
//! logged-in account (`azureProfile.json`, which the CLI writes with a UTF-8 byte order mark),
//! the active cloud and its endpoints (`config`, `clouds.config`, as `az cloud set` and
//! `az cloud register` write them), and the default location (`az config set defaults.location`).
//!
//! The directory is `AZURE_CONFIG_DIR`, else `.azure` in the home directory. Subscription:
//! `--subscription` (id or name), else `AZURE_SUBSCRIPTION_ID`, else the one the profile marks
//! default, never "the first one" (which Prefect's provisioner takes when not interactive).
//! Location: `--location`, else the CLI's default, else `eastus`.

use std::path::PathBuf;

use ini::Ini;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::prefect::settings::{Env, home_dir};

/// The location when nothing names one: Prefect's provisioner's.
pub const DEFAULT_LOCATION: &str = "eastus";

/// The endpoints of one Azure cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// The cloud's name in the CLI: `AzureCloud`.
    pub name: String,
    /// Azure Resource Manager, e.g. `https://management.azure.com/`.
    pub resource_manager: String,
    /// The audience of ARM tokens, e.g. `https://management.core.windows.net/`.
    pub arm_audience: String,
    /// Microsoft Graph (also its tokens' audience), e.g. `https://graph.microsoft.com/`.
    pub graph: String,
    /// Microsoft Entra ID's authority, e.g. `https://login.microsoftonline.com`.
    pub login: String,
    /// The registries' host suffix, e.g. `.azurecr.io`.
    pub acr_suffix: String,
}

impl CloudEndpoints {
    /// The endpoints the CLI has built in, for the clouds it ships with.
    fn built_in(name: &str) -> Option<Self> {
        let (arm, audience, graph, login, acr) = match name {
            "AzureCloud" => (
                "https://management.azure.com/",
                "https://management.core.windows.net/",
                "https://graph.microsoft.com/",
                "https://login.microsoftonline.com",
                ".azurecr.io",
            ),
            "AzureChinaCloud" => (
                "https://management.chinacloudapi.cn/",
                "https://management.core.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn",
                ".azurecr.cn",
            ),
            "AzureUSGovernment" => (
                "https://management.usgovcloudapi.net/",
                "https://management.core.usgovcloudapi.net/",
                "https://graph.microsoft.us/",
                "https://login.microsoftonline.us",
                ".azurecr.us",
            ),
            _ => return None,
        };
        Some(Self { name: name.to_owned(), resource_manager: arm.into(), arm_audience: audience.into(), graph: graph.into(), login: login.into(), acr_suffix: acr.into() })
    }
}

/// One subscription of the profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscription {
    /// The subscription id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The tenant it belongs to.
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    /// Whether the CLI uses it by default.
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    subscriptions: Vec<Subscription>,
}

/// Where a run works: the cloud, subscription and location, resolved as the CLI would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The active cloud's endpoints.
    pub cloud: CloudEndpoints,
    /// The subscription id.
    pub subscription: String,
    /// Its name, when the profile knows it.
    pub subscription_name: Option<String>,
    /// The tenant, when the profile or `AZURE_TENANT_ID` knows it.
    pub tenant: Option<String>,
    /// The location of new resources.
    pub location: String,
}

/// The CLI's configuration directory.
pub fn config_dir(env: &dyn Env) -> Option<PathBuf> {
    env.var("AZURE_CONFIG_DIR").map(PathBuf::from).or_else(|| home_dir(env).map(|home| home.join(".azure")))
}

fn read_ini(path: &std::path::Path) -> Result<Option<Ini>> {
    match Ini::load_from_file_noescape(path) {
        Ok(ini) => Ok(Some(ini)),
        Err(ini::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::usage(format!("Azure CLI file {}", path.display()), format!("cannot be read: {e}")).fix("fix or delete it, then run again")),
    }
}

fn read_profile(path: &std::path::Path) -> Result<Vec<Subscription>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::usage(format!("Azure CLI profile {}", path.display()), e.to_string())),
    };
    let profile: Profile = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::usage(format!("Azure CLI profile {}", path.display()), format!("is not the CLI's JSON: {e}")).fix("run `az login` again"))?;
    Ok(profile.subscriptions)
}

/// Resolves cloud, subscription and location; `subscription` and `location` from the command line first.
pub fn resolve(env: &dyn Env, subscription: Option<&str>, location: Option<&str>) -> Result<Placement> {
    let dir = config_dir(env);
    let config = match &dir {
        Some(dir) => read_ini(&dir.join("config"))?,
        None => None,
    };
    let setting = |section: &str, key: &str| config.as_ref()?.section(Some(section))?.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let cloud_name = setting("cloud", "name").unwrap_or_else(|| "AzureCloud".to_owned());
    let cloud = cloud_endpoints(dir.as_ref(), &cloud_name)?;
    let subscriptions = match &dir {
        Some(dir) => read_profile(&dir.join("azureProfile.json"))?,
        None => Vec::new(),
    };
    let chosen = match subscription.map(str::to_owned).or_else(|| env.var("AZURE_SUBSCRIPTION_ID")) {
        Some(wanted) => subscriptions.iter().find(|s| s.id.eq_ignore_ascii_case(&wanted) || s.name == wanted).cloned().map(Ok).unwrap_or_else(|| {
            if is_guid(&wanted) {
                Ok(Subscription { id: wanted.clone(), name: String::new(), tenant_id: String::new(), is_default: false })
            } else {
                Err(Error::usage(format!("Azure subscription '{wanted}'"), "is neither a subscription id nor the name of one the Azure CLI knows")
                    .fix("pass the subscription's id (`az account list -o table`), or `az login` to an account that has it"))
            }
        })?,
        None => subscriptions.iter().find(|s| s.is_default).cloned().ok_or_else(|| {
            Error::usage("Azure subscription", "none is set: no --subscription, no AZURE_SUBSCRIPTION_ID, and the Azure CLI has no default subscription")
                .fix("run `az login` (and `az account set --subscription <id>`), or pass --subscription <id>")
        })?,
    };
    let tenant = Some(chosen.tenant_id.clone()).filter(|t| !t.is_empty()).or_else(|| env.var("AZURE_TENANT_ID"));
    let location = location.map(str::to_owned).or_else(|| setting("defaults", "location")).unwrap_or_else(|| DEFAULT_LOCATION.to_owned());
    if !location.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::usage(format!("Azure location '{location}'"), "is not a location name").fix("pass one such as eastus (`az account list-locations -o table`)"));
    }
    Ok(Placement { cloud, subscription: chosen.id, subscription_name: Some(chosen.name).filter(|n| !n.is_empty()), tenant, location: location.to_lowercase() })
}

/// The endpoints of cloud `name`: `clouds.config`'s (a registered or customised cloud), else the built-in ones.
fn cloud_endpoints(dir: Option<&PathBuf>, name: &str) -> Result<CloudEndpoints> {
    let built_in = CloudEndpoints::built_in(name);
    let clouds = match dir {
        Some(dir) => read_ini(&dir.join("clouds.config"))?,
        None => None,
    };
    let section = clouds.as_ref().and_then(|c| c.section(Some(name)));
    let get = |key: &str, fallback: Option<&String>| section.and_then(|s| s.get(key)).map(|v| v.trim().to_owned()).or_else(|| fallback.cloned());
    let missing = || {
        Error::usage(format!("Azure cloud '{name}'"), "is the CLI's active cloud but its endpoints are not known")
            .fix("`az cloud set --name AzureCloud`, or register it with `az cloud register`")
    };
    let resource_manager = get("endpoint_resource_manager", built_in.as_ref().map(|b| &b.resource_manager)).ok_or_else(missing)?;
    Ok(CloudEndpoints {
        name: name.to_owned(),
        arm_audience: get("endpoint_active_directory_resource_id", built_in.as_ref().map(|b| &b.arm_audience)).unwrap_or_else(|| resource_manager.clone()),
        graph: get("endpoint_microsoft_graph_resource_id", built_in.as_ref().map(|b| &b.graph)).ok_or_else(missing)?,
        login: get("endpoint_active_directory", built_in.as_ref().map(|b| &b.login)).ok_or_else(missing)?,
        acr_suffix: get("suffix_acr_login_server_endpoint", built_in.as_ref().map(|b| &b.acr_suffix)).unwrap_or_else(|| ".azurecr.io".to_owned()),
        resource_manager,
    })
}

/// A GUID in its usual text form.
pub fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::prefect::settings::MapEnv;

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    fn cli_dir(config: &str, clouds: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let profile = format!(
            "\u{feff}{{\"subscriptions\": [{{\"id\": \"{A}\", \"name\": \"first\", \"tenantId\": \"t1\", \"isDefault\": false}}, {{\"id\": \"{B}\", \"name\": \"second\", \"tenantId\": \"t2\", \"isDefault\": true}}]}}"
        );
        std::fs::write(dir.path().join("azureProfile.json"), profile).unwrap();
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(dir.path().join("clouds.config"), clouds).unwrap();
        dir
    }

    fn env(dir: &tempfile::TempDir, extra: &[(&'static str, &str)]) -> MapEnv {
        let mut vars = HashMap::from([("AZURE_CONFIG_DIR", dir.path().display().to_string())]);
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        MapEnv(vars)
    }

    #[test]
    fn the_default_subscription_is_taken_never_the_first_and_the_bom_is_no_problem() {
        let dir = cli_dir("", "");
        let placement = resolve(&env(&dir, &[]), None, None).unwrap();
        assert_eq!((placement.subscription.as_str(), placement.tenant.as_deref()), (B, Some("t2")));
        assert_eq!(placement.subscription_name.as_deref(), Some("second"));
        assert_eq!((placement.location.as_str(), placement.cloud.name.as_str()), (DEFAULT_LOCATION, "AzureCloud"));
        assert_eq!(placement.cloud.resource_manager, "https://management.azure.com/");
        // By name, by id, by variable; the flag wins.
        assert_eq!(resolve(&env(&dir, &[]), Some("first"), None).unwrap().subscription, A);
        assert_eq!(resolve(&env(&dir, &[("AZURE_SUBSCRIPTION_ID", A)]), None, None).unwrap().subscription, A);
        assert_eq!(resolve(&env(&dir, &[("AZURE_SUBSCRIPTION_ID", A)]), Some(B), Some("westeurope")).unwrap().location, "westeurope");
        assert!(resolve(&env(&dir, &[]), Some("nope"), None).unwrap_err().fix.unwrap().contains("az account list"));
    }

    #[test]
    fn a_registered_cloud_and_the_default_location_come_from_the_cli_files() {
        let clouds = "[Custom]\nendpoint_resource_manager = http://127.0.0.1:1/arm/\nendpoint_active_directory_resource_id = http://127.0.0.1:1/arm/\nendpoint_microsoft_graph_resource_id = http://127.0.0.1:1/graph/\nendpoint_active_directory = http://127.0.0.1:1/login\nsuffix_acr_login_server_endpoint = .azurecr.io\n";
        let dir = cli_dir("[cloud]\nname = Custom\n\n[defaults]\nlocation = westus2\n", clouds);
        let placement = resolve(&env(&dir, &[]), None, None).unwrap();
        assert_eq!(placement.cloud.graph, "http://127.0.0.1:1/graph/");
        assert_eq!(placement.cloud.login, "http://127.0.0.1:1/login");
        assert_eq!(placement.location, "westus2");
        let unknown = cli_dir("[cloud]\nname = Nowhere\n", "");
        assert!(resolve(&env(&unknown, &[]), None, None).unwrap_err().cause.contains("endpoints are not known"));
    }

    #[test]
    fn no_subscription_names_az_login() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(&env(&dir, &[]), None, None).unwrap_err();
        assert!(error.fix.unwrap().contains("az login"));
    }
}
