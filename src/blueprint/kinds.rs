//! The registry of node kinds: every kind a blueprint may name, with its typed settings.
//!
//! A blueprint node is `id`, `kind`, `name`, `says`, `after` plus the kind's own settings. The
//! settings are parsed here, when the embedded blueprints are parsed, into one struct per kind
//! that refuses unknown fields: a misspelt setting fails a unit test, not the first live run.
//! Settings that name another node (`vpc = "vpc"`) are [`NodeId`]s, checked to exist.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::policies;

/// The id of another node of the same blueprint, named by a setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A node kind and its settings. `kind = "<system>.<resource>"` selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind")]
pub enum Kind {
    /// An IAM role with a trust policy, managed policies and an inline policy.
    #[serde(rename = "aws.iam_role")]
    AwsIamRole(IamRole),
    /// An IAM user.
    #[serde(rename = "aws.iam_user")]
    AwsIamUser(NoSettings),
    /// A customer managed policy attached to a user or a role.
    #[serde(rename = "aws.iam_policy")]
    AwsIamPolicy(IamPolicy),
    /// An inline policy of a role another node manages.
    #[serde(rename = "aws.iam_role_policy")]
    AwsIamRolePolicy(IamRolePolicy),
    /// A Secrets Manager secret holding a value known at plan time.
    #[serde(rename = "aws.secret")]
    AwsSecret(AwsSecret),
    /// A CloudWatch Logs log group.
    #[serde(rename = "aws.log_group")]
    AwsLogGroup(NoSettings),
    /// An ECS task definition family, one container.
    #[serde(rename = "aws.ecs_task_definition")]
    AwsEcsTaskDefinition(EcsTaskDefinition),
    /// A Fargate service running one task.
    #[serde(rename = "aws.ecs_service")]
    AwsEcsService(EcsService),
    /// The access key of a user, held by a credentials block.
    #[serde(rename = "aws.iam_access_key")]
    AwsIamAccessKey(IamAccessKey),
    /// An ECS cluster.
    #[serde(rename = "aws.ecs_cluster")]
    AwsEcsCluster(NoSettings),
    /// An ECR repository.
    #[serde(rename = "aws.ecr_repository")]
    AwsEcrRepository(EcrRepository),
    /// The pool's VPC: the default one when it reaches the internet, else pushpool's own.
    #[serde(rename = "aws.vpc")]
    AwsVpc(NoSettings),
    /// An internet gateway attached to a VPC.
    #[serde(rename = "aws.internet_gateway")]
    AwsInternetGateway(InVpc),
    /// Public subnets, one per availability zone.
    #[serde(rename = "aws.subnets")]
    AwsSubnets(Subnets),
    /// A route table sending 0.0.0.0/0 to the gateway.
    #[serde(rename = "aws.route_table")]
    AwsRouteTable(RouteTable),
    /// A security group without inbound rules.
    #[serde(rename = "aws.security_group")]
    AwsSecurityGroup(InVpc),
    /// Google APIs enabled in the project.
    #[serde(rename = "gcp.services")]
    GcpServices(GcpServices),
    /// An Artifact Registry Docker repository.
    #[serde(rename = "gcp.artifact_repository")]
    GcpArtifactRepository(ArtifactRepository),
    /// A service account.
    #[serde(rename = "gcp.service_account")]
    GcpServiceAccount(ServiceAccount),
    /// Project roles of a service account.
    #[serde(rename = "gcp.project_roles")]
    GcpProjectRoles(ProjectRoles),
    /// A JSON key of a service account, held by a credentials block.
    #[serde(rename = "gcp.service_account_key")]
    GcpServiceAccountKey(ServiceAccountKey),
    /// An Azure resource group.
    #[serde(rename = "azure.resource_group")]
    AzureResourceGroup(NoSettings),
    /// A user-assigned managed identity.
    #[serde(rename = "azure.user_assigned_identity")]
    AzureIdentity(InResourceGroup),
    /// The pool's Azure Container Registry, found by its pool tag.
    #[serde(rename = "azure.container_registry")]
    AzureContainerRegistry(ContainerRegistry),
    /// An Entra ID app registration.
    #[serde(rename = "azure.application")]
    AzureApplication(NoSettings),
    /// The service principal of an application.
    #[serde(rename = "azure.service_principal")]
    AzureServicePrincipal(OfApplication),
    /// A client secret of an application, held by a credentials block.
    #[serde(rename = "azure.client_secret")]
    AzureClientSecret(ClientSecret),
    /// A role of a principal on a scope.
    #[serde(rename = "azure.role_assignment")]
    AzureRoleAssignment(RoleAssignment),
    /// A Prefect block document.
    #[serde(rename = "prefect.block")]
    PrefectBlock(Block),
    /// The work pool.
    #[serde(rename = "prefect.work_pool")]
    PrefectWorkPool(WorkPool),
    /// A setting of the active Prefect profile.
    #[serde(rename = "prefect.profile_setting")]
    PrefectProfileSetting(ProfileSetting),
    /// A Modal Secret filled from a block's data.
    #[serde(rename = "modal.secret")]
    ModalSecret(ModalSecret),
}

/// Settings of a kind that has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// `aws.iam_role`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    /// The trust policy's file in `policies/aws/`.
    pub trust_policy: String,
    /// ARNs of AWS managed policies to attach.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// One inline policy, for what the managed policies lack.
    pub inline_policy: Option<InlinePolicy>,
}

/// An inline policy of a role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlinePolicy {
    /// Its name on the role.
    pub name: String,
    /// Its document's file in `policies/aws/`.
    pub document: String,
}

/// `aws.iam_policy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPolicy {
    /// The document's file in `policies/aws/`. Its strings may be `@node.attr` references: the
    /// ARN of a role the user may pass, of the repository it may pull from.
    pub document: String,
    /// The user or role node it is attached to.
    pub attach_to: NodeId,
}

/// The policy document `file` of `policies/aws/` as a template; an unreadable one is empty here
/// and an error when built.
fn aws_document(file: &str) -> Value {
    policies::document("aws", file).ok().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
}

/// `aws.iam_role_policy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRolePolicy {
    /// The role node it is part of.
    pub role: NodeId,
    /// The document's file in `policies/aws/`, with `@node.attr` references.
    pub document: String,
}

/// `aws.secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSecret {
    /// The value, a reference to a secret known at plan time (`@prefect.api_key`).
    pub value: Value,
}

/// `aws.ecs_task_definition`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsTaskDefinition {
    /// The role node ECS pulls the image, writes logs and reads secrets with.
    pub execution_role: NodeId,
    /// The role node the container's code runs as.
    pub task_role: NodeId,
    /// The log group node the container logs to.
    pub log_group: NodeId,
    /// The image, a reference or a literal.
    pub image: Value,
    /// The container's command.
    pub command: Vec<String>,
    /// Environment variables, name → reference or literal.
    #[serde(default)]
    pub environment: Map<String, Value>,
    /// Secret environment variables, name → a reference to a secret node's ARN.
    #[serde(default)]
    pub secrets: Map<String, Value>,
}

/// `aws.ecs_service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsService {
    /// The cluster node it runs in.
    pub cluster: NodeId,
    /// The task definition node it runs.
    pub task_definition: NodeId,
    /// The subnets node its task gets an address in.
    pub subnets: NodeId,
    /// The security group node of its task.
    pub security_group: NodeId,
}

/// `aws.iam_access_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamAccessKey {
    /// The user node whose key it is.
    pub user: NodeId,
    /// The block node that holds it.
    pub block: NodeId,
}

/// `aws.ecr_repository`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrRepository {
    /// Nodes whose other users also push images here: a teardown keeps the repository while
    /// another pool uses them.
    #[serde(default)]
    pub in_use_with: Vec<NodeId>,
}

/// A resource that lives in a VPC node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InVpc {
    /// The VPC node.
    pub vpc: NodeId,
}

/// `aws.subnets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnets {
    /// The VPC node.
    pub vpc: NodeId,
    /// How many availability zones to cover (fewer where the region has fewer).
    #[serde(default = "three")]
    pub count: usize,
}

fn three() -> usize {
    3
}

/// `aws.route_table`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    /// The VPC node.
    pub vpc: NodeId,
    /// The gateway node the default route goes to.
    pub internet_gateway: NodeId,
    /// The subnets node whose subnets the table serves.
    pub subnets: NodeId,
}

/// `gcp.services`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpServices {
    /// Service names: `run.googleapis.com`.
    pub services: Vec<String>,
}

/// `gcp.artifact_repository`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRepository {
    /// Nodes whose other users also push images here: a teardown keeps the repository while
    /// another pool uses them.
    #[serde(default)]
    pub in_use_with: Vec<NodeId>,
}

/// `gcp.service_account`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    /// The display name it is created with.
    pub display_name: String,
}

/// `gcp.project_roles`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRoles {
    /// The service account node the roles are granted to.
    pub service_account: NodeId,
    /// The file in `policies/gcp/` that lists the roles.
    pub roles: String,
}

/// `gcp.service_account_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountKey {
    /// The service account node whose key it is.
    pub service_account: NodeId,
    /// The block node that holds it.
    pub block: NodeId,
}

/// A resource that lives in a resource group node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InResourceGroup {
    /// The resource group node.
    pub resource_group: NodeId,
}

/// `azure.container_registry`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRegistry {
    /// The resource group node.
    pub resource_group: NodeId,
    /// Nodes whose other users also pull from the registry: a teardown keeps it while another
    /// pool uses them.
    #[serde(default)]
    pub in_use_with: Vec<NodeId>,
}

/// `azure.service_principal`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfApplication {
    /// The application node.
    pub application: NodeId,
}

/// `azure.client_secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// The application node whose secret it is.
    pub application: NodeId,
    /// The block node that holds it.
    pub block: NodeId,
}

/// `azure.role_assignment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// The role's name in `policies/azure/roles.json` ("Contributor").
    pub role: String,
    /// The node whose `id` is the scope (a resource group, a registry).
    pub scope: NodeId,
    /// The node whose `principal_id` is the principal (a service principal, an identity).
    pub principal: NodeId,
}

/// `prefect.block`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The block type's slug, e.g. `aws-credentials`.
    pub block_type: String,
    /// The wanted data, with `@node.attr` references.
    pub data: Value,
    /// The data field that holds the id of a credential another node mints (the access key
    /// id): what tells which credential a block holds.
    pub holds: Option<String>,
    /// What to do when the server lacks the block type: which package registers it, or that
    /// only Prefect Cloud has it.
    pub when_type_missing: String,
}

/// `prefect.work_pool`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPool {
    /// Job variable name → wanted default, with `@node.attr` references.
    #[serde(default)]
    pub job_variables: Map<String, Value>,
}

/// `modal.secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalSecret {
    /// The block node whose data fills it (read with its secrets when written).
    pub from_block: NodeId,
    /// The secret's keys, each with the dotted field of the block's data that fills it.
    pub values: BTreeMap<String, String>,
}

/// `prefect.profile_setting`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSetting {
    /// The profile key, e.g. `PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE`.
    pub key: String,
    /// The wanted value: a reference such as `"@repository.registry"`, or a literal.
    pub value: Value,
}

impl Kind {
    /// Whether the resource is a credential minted for one block (an access key, a service
    /// account key, a client secret): another pool never shares it, whatever its owner's name.
    pub fn held_by_one_block(&self) -> bool {
        matches!(self, Kind::AwsIamAccessKey(_) | Kind::GcpServiceAccountKey(_) | Kind::AzureClientSecret(_))
    }

    /// The node a credential minted for one block belongs to (the user of an access key,
    /// the account of a key, the application of a secret): whose limit it counts against.
    pub fn credential_owner(&self) -> Option<&NodeId> {
        match self {
            Kind::AwsIamAccessKey(key) => Some(&key.user),
            Kind::GcpServiceAccountKey(key) => Some(&key.service_account),
            Kind::AzureClientSecret(secret) => Some(&secret.application),
            _ => None,
        }
    }

    /// The kind's name, `<system>.<resource>`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::AwsIamRole(_) => "aws.iam_role",
            Kind::AwsIamUser(_) => "aws.iam_user",
            Kind::AwsIamPolicy(_) => "aws.iam_policy",
            Kind::AwsIamRolePolicy(_) => "aws.iam_role_policy",
            Kind::AwsSecret(_) => "aws.secret",
            Kind::AwsLogGroup(_) => "aws.log_group",
            Kind::AwsEcsTaskDefinition(_) => "aws.ecs_task_definition",
            Kind::AwsEcsService(_) => "aws.ecs_service",
            Kind::AwsIamAccessKey(_) => "aws.iam_access_key",
            Kind::AwsEcsCluster(_) => "aws.ecs_cluster",
            Kind::AwsEcrRepository(_) => "aws.ecr_repository",
            Kind::AwsVpc(_) => "aws.vpc",
            Kind::AwsInternetGateway(_) => "aws.internet_gateway",
            Kind::AwsSubnets(_) => "aws.subnets",
            Kind::AwsRouteTable(_) => "aws.route_table",
            Kind::AwsSecurityGroup(_) => "aws.security_group",
            Kind::GcpServices(_) => "gcp.services",
            Kind::GcpArtifactRepository(_) => "gcp.artifact_repository",
            Kind::GcpServiceAccount(_) => "gcp.service_account",
            Kind::GcpProjectRoles(_) => "gcp.project_roles",
            Kind::GcpServiceAccountKey(_) => "gcp.service_account_key",
            Kind::AzureResourceGroup(_) => "azure.resource_group",
            Kind::AzureIdentity(_) => "azure.user_assigned_identity",
            Kind::AzureContainerRegistry(_) => "azure.container_registry",
            Kind::AzureApplication(_) => "azure.application",
            Kind::AzureServicePrincipal(_) => "azure.service_principal",
            Kind::AzureClientSecret(_) => "azure.client_secret",
            Kind::AzureRoleAssignment(_) => "azure.role_assignment",
            Kind::PrefectBlock(_) => "prefect.block",
            Kind::PrefectWorkPool(_) => "prefect.work_pool",
            Kind::PrefectProfileSetting(_) => "prefect.profile_setting",
            Kind::ModalSecret(_) => "modal.secret",
        }
    }

    /// The system the kind belongs to: a cloud ("aws") or "prefect".
    pub fn system(&self) -> &'static str {
        self.name().split_once('.').map_or("", |(system, _)| system)
    }

    /// The settings that name other nodes, as (setting, node id, whether this node waits for
    /// that one). A key names the block that holds it, which waits for the key; a repository
    /// names the cluster it is kept with, which it does not need.
    pub fn node_settings(&self) -> Vec<(&'static str, &NodeId, bool)> {
        let settings = match self {
            Kind::AwsIamPolicy(p) => vec![("attach_to", &p.attach_to)],
            Kind::AwsIamRolePolicy(p) => vec![("role", &p.role)],
            Kind::AwsEcsTaskDefinition(t) => vec![("execution_role", &t.execution_role), ("task_role", &t.task_role), ("log_group", &t.log_group)],
            Kind::AwsEcsService(s) => {
                vec![("cluster", &s.cluster), ("task_definition", &s.task_definition), ("subnets", &s.subnets), ("security_group", &s.security_group)]
            }
            Kind::AwsIamAccessKey(k) => vec![("user", &k.user), ("block", &k.block)],
            Kind::AwsEcrRepository(r) => r.in_use_with.iter().map(|n| ("in_use_with", n)).collect(),
            Kind::GcpArtifactRepository(r) => r.in_use_with.iter().map(|n| ("in_use_with", n)).collect(),
            Kind::GcpProjectRoles(r) => vec![("service_account", &r.service_account)],
            Kind::GcpServiceAccountKey(k) => vec![("service_account", &k.service_account), ("block", &k.block)],
            Kind::AzureIdentity(i) => vec![("resource_group", &i.resource_group)],
            Kind::AzureContainerRegistry(r) => {
                let mut refs = vec![("resource_group", &r.resource_group)];
                refs.extend(r.in_use_with.iter().map(|n| ("in_use_with", n)));
                refs
            }
            Kind::AzureServicePrincipal(s) => vec![("application", &s.application)],
            Kind::AzureClientSecret(s) => vec![("application", &s.application), ("block", &s.block)],
            Kind::AzureRoleAssignment(r) => vec![("scope", &r.scope), ("principal", &r.principal)],
            Kind::ModalSecret(s) => vec![("from_block", &s.from_block)],
            Kind::AwsInternetGateway(n) | Kind::AwsSecurityGroup(n) => vec![("vpc", &n.vpc)],
            Kind::AwsSubnets(s) => vec![("vpc", &s.vpc)],
            Kind::AwsRouteTable(t) => vec![("vpc", &t.vpc), ("internet_gateway", &t.internet_gateway), ("subnets", &t.subnets)],
            _ => Vec::new(),
        };
        settings.into_iter().map(|(setting, id)| (setting, id, !matches!(setting, "block" | "in_use_with"))).collect()
    }

    /// What tells two nameless nodes of this kind apart (a profile setting's key); empty for
    /// kinds that are told apart by name.
    pub fn identity(&self) -> &str {
        match self {
            Kind::PrefectProfileSetting(setting) => &setting.key,
            _ => "",
        }
    }

    /// The data of the node that may hold `@node.attr` references.
    pub fn templates(&self) -> Vec<Value> {
        match self {
            Kind::PrefectBlock(b) => vec![b.data.clone()],
            Kind::PrefectWorkPool(p) => vec![Value::Object(p.job_variables.clone())],
            Kind::PrefectProfileSetting(s) => vec![s.value.clone()],
            Kind::AwsIamPolicy(p) => vec![aws_document(&p.document)],
            Kind::AwsIamRolePolicy(p) => vec![aws_document(&p.document)],
            Kind::AwsSecret(s) => vec![s.value.clone()],
            Kind::AwsEcsTaskDefinition(t) => vec![t.image.clone(), Value::Object(t.environment.clone()), Value::Object(t.secrets.clone())],
            _ => Vec::new(),
        }
    }
}
