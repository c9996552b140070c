//! What AWS takes as names and tag values, from each API's reference: every name pushpool
//! derives or is given (`--set`) and the pool name it tags every resource with are checked
//! here before any call. moto takes names AWS refuses, so these rules are unit-tested at
//! their limits rather than through moto.

use crate::blueprint::Kind;
use crate::names::{Rule, ascii_or, lowercase_or};

/// The characters of IAM names, `[\w+=,.@-]` (`\w` being ASCII letters, digits and `_`).
fn iam_char(c: char) -> bool {
    ascii_or(c, "_+=,.@-")
}

/// IAM `CreateUser` `UserName`: 1 to 64 of `[\w+=,.@-]`.
pub const IAM_USER: Rule = Rule {
    what: "IAM user name",
    len: 1..=64,
    chars: iam_char,
    shape: None,
    says: "1 to 64 ASCII letters, digits and _+=,.@-",
    source: "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html",
};

/// IAM `CreateRole` `RoleName`: 1 to 64 of `[\w+=,.@-]`.
pub const IAM_ROLE: Rule = Rule { what: "IAM role name", source: "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html", ..IAM_USER };

/// IAM `CreatePolicy` `PolicyName`: 1 to 128 of `[\w+=,.@-]`.
pub const IAM_POLICY: Rule = Rule {
    what: "IAM policy name",
    len: 1..=128,
    says: "1 to 128 ASCII letters, digits and _+=,.@-",
    source: "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html",
    ..IAM_USER
};

/// IAM `PutRolePolicy` `PolicyName`: 1 to 128 of `[\w+=,.@-]`.
pub const IAM_ROLE_POLICY: Rule =
    Rule { what: "IAM inline policy name", source: "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html", ..IAM_POLICY };

/// IAM `Tag` `Value`: 0 to 256 of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`. IAM's is the narrowest tag
/// alphabet of the services pushpool tags (EC2 takes any character), so it is the rule for
/// the pool name every AWS resource is tagged with. Letters are `char::is_alphabetic`, which
/// also holds the few combining vowel signs Unicode counts as alphabetic (`\p{L}` does not);
/// separators (`\p{Z}`) are the white space that is no control character (no newline, no tab).
pub const TAG_VALUE: Rule = Rule {
    what: "IAM tag value",
    len: 0..=256,
    chars: |c| c.is_alphabetic() || c.is_numeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c),
    shape: None,
    says: "0 to 256 letters, digits, spaces and _.:/=+-@",
    source: "https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html",
};

/// ECS `CreateCluster` `clusterName`: up to 255 letters, digits, hyphens and underscores.
pub const ECS_CLUSTER: Rule = Rule {
    what: "ECS cluster name",
    len: 1..=255,
    chars: |c| ascii_or(c, "_-"),
    shape: None,
    says: "1 to 255 ASCII letters, digits, hyphens and underscores",
    source: "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html",
};

/// ECS `CreateService` `serviceName`: up to 255 letters, digits, hyphens and underscores.
pub const ECS_SERVICE: Rule = Rule { what: "ECS service name", source: "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html", ..ECS_CLUSTER };

/// ECS `RegisterTaskDefinition` `family`: up to 255 letters, digits, hyphens and underscores.
pub const ECS_TASK_FAMILY: Rule =
    Rule { what: "ECS task definition family", source: "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html", ..ECS_CLUSTER };

/// ECR `CreateRepository` `repositoryName`: 2 to 256 characters matching
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`: lowercase words joined by
/// single `.`, `_` or `-`, in `/`-separated parts.
pub const ECR_REPOSITORY: Rule = Rule {
    what: "ECR repository name",
    len: 2..=256,
    chars: |c| lowercase_or(c, "._-/"),
    shape: Some((
        |name| name.split('/').all(|part| part.split(['.', '_', '-']).all(|word| !word.is_empty())),
        "has an empty part: '/', '.', '_' and '-' each go between letters or digits",
    )),
    says: "2 to 256 lowercase letters and digits, joined by single . _ - and /",
    source: "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html",
};

/// EC2 `CreateSecurityGroup` `GroupName` in a VPC: up to 255 of a-z, A-Z, 0-9, spaces and
/// `._-:/()#,@[]+=&;{}!$*`, not starting with `sg-`.
pub const SECURITY_GROUP: Rule = Rule {
    what: "security group name",
    len: 1..=255,
    chars: |c| ascii_or(c, " ._-:/()#,@[]+=&;{}!$*"),
    shape: Some((|name| !name.to_ascii_lowercase().starts_with("sg-"), "starts with 'sg-'")),
    says: "1 to 255 ASCII letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*, not starting with 'sg-'",
    source: "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html",
};

/// The `Name` tag of a VPC, internet gateway or route table: an EC2 tag value, up to 256
/// characters (EC2 takes any character in tags).
pub const EC2_NAME: Rule = Rule {
    what: "EC2 Name tag",
    len: 1..=256,
    chars: |_| true,
    shape: None,
    says: "1 to 256 characters",
    source: "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions",
};

/// The subnets' name, which each subnet's `Name` tag follows with `-` and its zone's name
/// (`-ap-southeast-2a`, up to 20 characters): the tag's 256 less those.
pub const SUBNETS: Rule = Rule { what: "subnets name", len: 1..=236, says: "1 to 236 characters (each subnet's adds its zone)", ..EC2_NAME };

/// Secrets Manager `CreateSecret` `Name`: 1 to 512 ASCII letters, digits and `/_+=.@-`.
pub const SECRET: Rule = Rule {
    what: "Secrets Manager secret name",
    len: 1..=512,
    chars: |c| ascii_or(c, "/_+=.@-"),
    shape: None,
    says: "1 to 512 ASCII letters, digits and /_+=.@-",
    source: "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html",
};

/// CloudWatch Logs `CreateLogGroup` `logGroupName`: 1 to 512 of `[\.\-_/#A-Za-z0-9]`.
pub const LOG_GROUP: Rule = Rule {
    what: "log group name",
    len: 1..=512,
    chars: |c| ascii_or(c, ".-_/#"),
    shape: None,
    says: "1 to 512 ASCII letters, digits and .-_/#",
    source: "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
};

/// The rule of the name a node of `kind` gives its resource; None for a kind whose resource
/// takes no name of its own (an access key).
pub fn rule(kind: &Kind) -> Option<&'static Rule> {
    Some(match kind {
        Kind::AwsIamUser(_) => &IAM_USER,
        Kind::AwsIamRole(_) => &IAM_ROLE,
        Kind::AwsIamPolicy(_) => &IAM_POLICY,
        Kind::AwsIamRolePolicy(_) => &IAM_ROLE_POLICY,
        Kind::AwsEcsCluster(_) => &ECS_CLUSTER,
        Kind::AwsEcsService(_) => &ECS_SERVICE,
        Kind::AwsEcsTaskDefinition(_) => &ECS_TASK_FAMILY,
        Kind::AwsEcrRepository(_) => &ECR_REPOSITORY,
        Kind::AwsSecurityGroup(_) => &SECURITY_GROUP,
        Kind::AwsVpc(_) | Kind::AwsInternetGateway(_) | Kind::AwsRouteTable(_) => &EC2_NAME,
        Kind::AwsSubnets(_) => &SUBNETS,
        Kind::AwsSecret(_) => &SECRET,
        Kind::AwsLogGroup(_) => &LOG_GROUP,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::holds;

    #[test]
    fn iam_names_are_1_to_64_or_128_of_their_alphabet() {
        let (n64, n65, n128, n129) = ("u".repeat(64), "u".repeat(65), "p".repeat(128), "p".repeat(129));
        holds(&IAM_USER, &["a", &n64, "team_a+b=c,d.e@f-g"], &["", &n65, "a b", "a/b", "a\nb", "ü"]);
        holds(&IAM_ROLE, &[&n64], &[&n65, "role!"]);
        holds(&IAM_POLICY, &[&n128], &[&n129, "a b"]);
        holds(&IAM_ROLE_POLICY, &[&n128], &[&n129, "a#b"]);
    }

    #[test]
    fn tag_values_are_0_to_256_letters_digits_spaces_and_a_few_signs() {
        let (n256, n257) = ("v".repeat(256), "v".repeat(257));
        holds(&TAG_VALUE, &["", &n256, "My Pool_1.a:b/c=d+e-f@g", "Équipe 池 ٣"], &[&n257, "a\nb", "a\tb", "a!b", "a,b", "a#b", "a'b"]);
    }

    #[test]
    fn ecs_names_are_up_to_255_letters_digits_hyphens_and_underscores() {
        let (n255, n256) = ("c".repeat(255), "c".repeat(256));
        for rule in [&ECS_CLUSTER, &ECS_SERVICE, &ECS_TASK_FAMILY] {
            holds(rule, &["a", &n255, "Prefect_ECS-cluster"], &["", &n256, "a b", "a.b", "a/b"]);
        }
    }

    #[test]
    fn ecr_names_are_lowercase_words_joined_by_single_separators() {
        let (n256, n257) = ("r".repeat(256), "r".repeat(257));
        holds(
            &ECR_REPOSITORY,
            &["ab", &n256, "prefect-flows", "team/prefect_flows.v2", "a-b/c"],
            &["a", &n257, "Prefect_Flows", "-flows", "flows-", "a--b", "a/", "/a", "a//b", "a b"],
        );
    }

    #[test]
    fn security_groups_take_their_alphabet_and_no_sg_prefix() {
        let (n255, n256) = ("g".repeat(255), "g".repeat(256));
        holds(&SECURITY_GROUP, &["a", &n255, "prefect sg (ecs) #1"], &["", &n256, "sg-123", "SG-x", "a~b", "é"]);
    }

    #[test]
    fn ec2_names_secrets_and_log_groups_keep_to_their_limits() {
        holds(&EC2_NAME, &["x", &"n".repeat(256), "any ~ thing"], &["", &"n".repeat(257)]);
        holds(&SUBNETS, &[&"s".repeat(236)], &[&"s".repeat(237)]);
        holds(&SECRET, &["prefect-worker-p/api+key=x.y@z_", &"s".repeat(512)], &["", &"s".repeat(513), "a b", "a#b"]);
        holds(&LOG_GROUP, &["/prefect/workers/p#1", &"l".repeat(512)], &["", &"l".repeat(513), "/prefect/workers/my pool", "a@b"]);
    }
}
