//! The form of an AWS region name, checked before any call.
//!
//! A region that is not of the form reaches no endpoint: the SDK then fails with a transport
//! error (`us-east-1x`: "ecs:DescribeClusters failed: 500" behind a test endpoint, a DNS error
//! on AWS) or an interceptor's text (`US EAST`: not a valid host), and the user is not told
//! that the region is the problem. Every partition's regions share one form: a two-letter
//! area, one or more lowercase words, a number (`us-east-1`, `us-gov-west-1`, `cn-north-1`,
//! `us-isob-east-1`, `eusc-de-east-1` has a four-letter area, so the area is 2 to 4 letters).
//! See <https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html>.

use crate::error::{Error, Result};

/// Whether `region` has the form of an AWS region name.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let letters = |part: &&str| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase());
    match parts.as_slice() {
        [area, words @ .., number] if !words.is_empty() => {
            (2..=4).contains(&area.len()) && letters(area) && words.iter().all(letters) && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// Checks `region`, which came from `source` (`--region`, `AWS_REGION`, the AWS profile),
/// naming both in the error.
pub fn check_region(region: &str, source: &str) -> Result<()> {
    if is_region_name(region) {
        return Ok(());
    }
    Err(Error::usage(format!("AWS region '{}' (from {source})", region.escape_debug()), "is not a region name: lowercase words and a number, like us-east-1 or eu-west-2")
        .fix(format!("correct {source}: `aws ec2 describe-regions --query 'Regions[].RegionName'` lists the regions")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_of_every_partition_pass_and_typos_do_not() {
        for region in ["us-east-1", "eu-west-2", "ap-southeast-5", "us-gov-west-1", "cn-northwest-1", "us-isob-east-1", "eusc-de-east-1", "il-central-1"] {
            assert!(is_region_name(region), "{region}");
        }
        for region in ["us-east-1x", "US EAST", "us-east", "useast1", "us-east-1 ", "us-east-1\n", "", "us--1", "u-east-1", "us-east-one"] {
            assert!(!is_region_name(region), "{region:?}");
        }
        let error = check_region("us-east-1\n", "AWS_REGION").unwrap_err();
        assert_eq!(error.what, "AWS region 'us-east-1\\n' (from AWS_REGION)");
        assert!(error.fix.unwrap().starts_with("correct AWS_REGION"));
    }
}
