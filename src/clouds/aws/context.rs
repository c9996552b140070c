//! The AWS side of a run: clients from the standard credential chain, the account and
//! region, the ownership tags to write, and reads that several nodes share.
//!
//! Dependencies point one way: the node kinds (iam, containers, access_key, network/*)
//! import this module; this module imports only leaves that import nothing of it
//! ([`errors`](super::errors) and [`network::facts`](super::network::facts), the region's VPC
//! facts it holds) and the engine's ownership rule, whose marking for AWS is [`MARKING`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::types::{Filter, ResourceType, TagSpecification};
use aws_sdk_sts::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::error::SdkError;

use super::errors::aws_error;
use super::iam_inventory::{Details, Inventory};
use super::network::facts::RegionNetwork;
use super::region::check_region;
use crate::engine::Attrs;
use crate::engine::memo::Memo;
use crate::engine::ownership::Marking;
use crate::error::{Error, Result};
use crate::header::{AWS_CREDENTIAL_VARIABLES, check_header_variables};
use crate::prefect::settings::{Env, ProcessEnv};
use crate::secret::Secret;

/// How AWS marks what pushpool creates: tags, the pool's under `prefect.work-pool`.
pub const MARKING: Marking = Marking { pool_key: "prefect.work-pool" };

/// The clients and facts of one AWS account and region.
pub struct AwsContext {
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// EC2 (network).
    pub ec2: aws_sdk_ec2::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// Secrets Manager (a worker's API key).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// CloudWatch Logs (a worker's log group).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// IAM, EC2 and ECR without automatic retries, for creates that must not run twice
    /// (see [`create_once`](super::once::create_once)).
    pub once: Arc<OnceClients>,
    /// The region, from the standard chain (`AWS_REGION`, the profile).
    pub region: String,
    /// The account, from STS.
    pub account_id: String,
    /// The AWS profile asked for (`--profile`, a pools file's `profile`, the pool's record);
    /// None for the standard chain's own choice.
    pub profile: Option<String>,
    /// `AWS_ENDPOINT_URL` when set: the block records it so that workers reach the same API.
    pub endpoint_url: Option<String>,
    /// The pool the resources are for, for the ownership tag.
    pub pool: String,
    /// The region's VPC facts, read once per run for the network nodes.
    pub network: Arc<RegionNetwork>,
    /// The account's IAM inventory, shared by every pool of the run in the account.
    pub iam_inventory: Arc<Inventory>,
    pub(super) zones: Arc<Memo<(), Result<Vec<String>>>>,
}

/// What connecting for one region and profile asked for resolved: the endpoint, the region
/// and account, the clients and the reads they share. Every pool of a run that
/// asks the same shares one, so that a pools file of a hundred pools in ten accounts checks
/// each account's credentials once, not a hundred times, and reads each region's VPCs once.
#[derive(Clone)]
struct Connection {
    endpoint_url: Option<String>,
    region: String,
    account_id: String,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    ecs: aws_sdk_ecs::Client,
    ecr: aws_sdk_ecr::Client,
    secrets: aws_sdk_secretsmanager::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    once: Arc<OnceClients>,
    network: Arc<RegionNetwork>,
    iam_inventory: Arc<Inventory>,
    zones: Arc<Memo<(), Result<Vec<String>>>>,
}

/// The region and profile a connection was asked for (None: the standard chain's choice).
type ConnectionKey = (Option<String>, Option<String>);

/// The run's connections, one per region and profile asked for: the environment and the AWS
/// files they are resolved from do not change while pushpool runs.
static CONNECTIONS: OnceLock<Memo<ConnectionKey, Result<Connection>>> = OnceLock::new();

impl AwsContext {
    /// Loads the standard credential chain and region, or those of AWS profile `profile`
    /// (which wins over credentials in the environment, as the AWS CLI's `--profile` does), and
    /// checks the credentials with STS `GetCallerIdentity`: a missing region or profile, or
    /// unusable credentials, fail here, before anything is read or written, with the fix.
    /// `region` overrides the chain's region (a pool declared in another region). Every client
    /// sends through the run's bounded HTTP client and retries throttling adaptively.
    pub async fn connect(pool: &str, region: Option<&str>, profile: Option<&str>) -> Result<Self> {
        let key = (region.map(str::to_owned), profile.map(str::to_owned));
        let connection = CONNECTIONS.get_or_init(Memo::default).get_or_init(&key, || open(region, profile)).await?;
        Ok(Self {
            iam: connection.iam,
            ec2: connection.ec2,
            ecs: connection.ecs,
            ecr: connection.ecr,
            secrets: connection.secrets,
            logs: connection.logs,
            once: connection.once,
            endpoint_url: connection.endpoint_url,
            region: connection.region,
            account_id: connection.account_id,
            profile: profile.map(str::to_owned),
            pool: pool.to_owned(),
            network: connection.network,
            iam_inventory: connection.iam_inventory,
            zones: connection.zones,
        })
    }
}

/// Connects for `region` and `profile` as asked (see [`AwsContext::connect`]).
async fn open(region: Option<&str>, profile: Option<&str>) -> Result<Connection> {
    // The SDK's signer panics on a header value it cannot send: check them first.
    check_header_variables(&ProcessEnv, AWS_CREDENTIAL_VARIABLES)?;
    if let Some(profile) = profile {
        super::profile::check_defined(profile).await?;
    }
    // Each attempt may take 30 s, each call (its retries included) 2 minutes.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(120))
        .build();
    // The SDK's adaptive mode: standard's retries of throttling, 5xx and transient errors,
    // with backoff and jitter, plus a client-side rate that slows down when throttled.
    let retries = RetryConfig::adaptive().with_max_attempts(6).with_initial_backoff(Duration::from_millis(200));
    let http = super::http::bounded_client();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).retry_config(retries).http_client(http.clone());
    let region_asked = region.is_some();
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    let mut config = loader.load().await;
    let region = config
        .region()
        .map(ToString::to_string)
        .ok_or_else(|| Error::usage("AWS region", "none is configured").fix("set AWS_REGION (e.g. AWS_REGION=us-east-1) or `region` in your AWS profile"))?;
    check_region(&region, &region_source(region_asked, profile))?;
    if let Some(profile) = profile {
        let credentials = super::profile::credentials(profile, &region, http);
        config = config.into_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build();
    }
    let Some(provider) = config.credentials_provider() else {
        return Err(no_credentials("no credential provider is configured", profile));
    };
    // The chain's own error says which sources it tried; STS's would only say it failed. A
    // profile's provider is asked by the STS call instead: asked here, a role_arn profile would
    // assume its role twice (the clients' identity cache does not see this call).
    if profile.is_none() {
        provider.provide_credentials().await.map_err(|e| no_credentials(&super::errors::causes(&e), profile))?;
    }
    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts.get_caller_identity().send().await.map_err(|e| match (profile, &e) {
        // No answer from STS: the profile's credentials could not be had.
        (Some(_), SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)) => no_credentials(&super::errors::causes(&e), profile),
        _ => aws_error("AWS credentials", "sts:GetCallerIdentity", e),
    })?;
    let account_id = identity.account().unwrap_or_default().to_owned();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    Ok(Connection {
        iam: aws_sdk_iam::Client::new(&config),
        network: Arc::new(RegionNetwork::new(ec2.clone(), region.clone())),
        ec2,
        ecs: aws_sdk_ecs::Client::new(&config),
        ecr: aws_sdk_ecr::Client::new(&config),
        secrets: aws_sdk_secretsmanager::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        once: Arc::new(OnceClients::new(&config)),
        iam_inventory: Inventory::of_account(&account_id),
        region,
        account_id,
        endpoint_url: config.endpoint_url().map(str::to_owned),
        zones: Arc::default(),
    })
}

impl AwsContext {
    /// The `aws` context attributes that blueprint references may name.
    pub fn attrs(&self) -> Attrs {
        let mut attrs = Attrs::new().with("region", self.region.as_str()).with("account_id", self.account_id.as_str());
        if let Some(url) = &self.endpoint_url {
            attrs.set("endpoint_url", url.as_str());
        }
        attrs
    }

    /// The ownership tags every created resource carries.
    pub fn tags(&self) -> [(&str, &str); 2] {
        MARKING.marks(&self.pool)
    }

    /// The ownership tags plus `Name`, as an EC2 tag specification for `resource`.
    pub fn ec2_tags(&self, resource: ResourceType, name: &str) -> TagSpecification {
        let tags = self.tags().into_iter().chain([("Name", name)]).map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
        TagSpecification::builder().resource_type(resource).set_tags(Some(tags.collect())).build()
    }

    /// The ownership tags as IAM tags.
    pub fn iam_tags(&self) -> Vec<aws_sdk_iam::types::Tag> {
        self.tags().into_iter().filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok()).collect()
    }

    /// The ARN IAM gives a role or policy of this account at path `/`.
    pub fn iam_arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:{kind}/{name}", self.account_id)
    }

    /// The ARN ECR gives repository `name` of this account and region.
    pub fn repository_arn(&self, name: &str) -> String {
        format!("arn:aws:ecr:{}:{}:repository/{name}", self.region, self.account_id)
    }

    /// The account's ECR registry host in this region.
    pub fn registry(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.account_id, self.region)
    }

    /// The account's IAM inventory when the run plans several pools in the account (see
    /// [`iam_inventory`](super::iam_inventory)); None: read each entity by name.
    pub async fn iam_details(&self) -> Result<Option<Arc<Details>>> {
        self.iam_inventory.details(&self.iam).await
    }

    /// The region's available availability zones, sorted, read once per run.
    pub async fn zones(&self) -> Result<Vec<String>> {
        self.zones
            .get_or_init(&(), || async {
                let filter = Filter::builder().name("state").values("available").build();
                let out = self
                    .ec2
                    .describe_availability_zones()
                    .filters(filter)
                    .send()
                    .await
                    .map_err(|e| aws_error(&format!("region {}", self.region), "ec2:DescribeAvailabilityZones", e))?;
                let mut zones: Vec<String> = out.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_owned)).collect();
                zones.sort();
                Ok(zones)
            })
            .await
    }

    /// Docker credentials for the account's registry: user `AWS` and a 12-hour token.
    pub async fn docker_credentials(&self) -> Result<(String, Secret)> {
        let what = format!("ECR registry {}", self.registry());
        let out = self.ecr.get_authorization_token().send().await.map_err(|e| aws_error(&what, "ecr:GetAuthorizationToken", e))?;
        let token =
            out.authorization_data().first().and_then(|d| d.authorization_token()).ok_or_else(|| Error::remote(&what, "ecr:GetAuthorizationToken returned no token"))?;
        let decoded = aws_smithy_types::base64::decode(token).map_err(|_| Error::remote(&what, "the ECR token is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::remote(&what, "the ECR token is not text"))?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| Error::remote(&what, "the ECR token has no user"))?;
        Ok((user.to_owned(), Secret::new(password)))
    }
}

/// Clients whose calls are tried once: their creates are retried by pushpool itself.
pub struct OnceClients {
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
}

impl OnceClients {
    fn new(config: &aws_config::SdkConfig) -> Self {
        let once = || RetryConfig::disabled();
        Self {
            iam: aws_sdk_iam::Client::from_conf(aws_sdk_iam::config::Builder::from(config).retry_config(once()).build()),
            ec2: aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(config).retry_config(once()).build()),
            ecr: aws_sdk_ecr::Client::from_conf(aws_sdk_ecr::config::Builder::from(config).retry_config(once()).build()),
        }
    }
}

/// Where the AWS region of a run came from, as the SDK's chain looks: the region asked for
/// (`--region`, a pools file's `region`, the pool's record), else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the profile.
fn region_source(asked: bool, profile: Option<&str>) -> String {
    if asked {
        return "--region (or the pool's `region`)".to_owned();
    }
    let set = ["AWS_REGION", "AWS_DEFAULT_REGION"].into_iter().find(|name| ProcessEnv.var(name).is_some());
    match set {
        Some(name) => name.to_owned(),
        None => format!("`region` of AWS profile '{}'", profile.map(str::to_owned).or_else(|| ProcessEnv.var("AWS_PROFILE")).unwrap_or_else(|| "default".to_owned())),
    }
}

fn no_credentials(cause: &str, profile: Option<&str>) -> Error {
    match profile {
        Some(profile) => Error::usage(format!("AWS credentials of profile '{profile}'"), cause.to_owned()).fix(format!(
            "check the profile's keys, role_arn and source_profile or credential_source, credential_process or SSO (`aws sso login --profile {profile}`); `aws sts get-caller-identity --profile {profile}` shows what the AWS CLI makes of it"
        )),
        None => Error::usage("AWS credentials", cause.to_owned()).fix(
            "configure credentials the AWS CLI way: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or `aws sso login`",
        ),
    }
}
