//! Creates that never create twice.
//!
//! An SDK retries a failed call blindly. For a create whose request reached AWS but whose
//! answer was lost (a reset connection, a timeout, a 5xx), that makes a second VPC or a
//! second gateway. These creates go through clients without automatic retries, and
//! [`create_once`] looks for the object (by name or tag) before it tries again.

use std::future::Future;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::errors::{aws_error, code};
use crate::error::{Error, Result};
use crate::retry::{ATTEMPTS, backoff};

/// What a failed create means for trying again.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// AWS refused it without doing it (throttling): try again as it is.
    Refused,
    /// It may have been done (lost answer), or the object already exists: look first.
    Unknown,
    /// A real error: give up.
    Failed,
}

/// Classifies a failed create.
pub(super) fn outcome<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Outcome {
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Outcome::Unknown,
        SdkError::ServiceError(service) if service.raw().status().is_server_error() => Outcome::Unknown,
        _ => match code(err).as_deref() {
            Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException") => Outcome::Refused,
            Some("EntityAlreadyExists" | "RepositoryAlreadyExistsException" | "InvalidGroup.Duplicate") => Outcome::Unknown,
            _ => Outcome::Failed,
        },
    }
}

/// Runs `create` (which returns the new object's id) until it succeeds, retrying throttled
/// attempts, and after an attempt whose outcome is unknown adopting what `lookup` finds
/// instead of creating again.
pub async fn create_once<E, C, CF, L, LF>(what: &str, action: &str, create: C, lookup: L) -> Result<String>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    C: Fn() -> CF,
    CF: Future<Output = std::result::Result<Option<String>, SdkError<E, HttpResponse>>>,
    L: Fn() -> LF,
    LF: Future<Output = Result<Option<String>>>,
{
    let mut attempt = 1;
    loop {
        let err = match create().await {
            Ok(Some(id)) => return Ok(id),
            Ok(None) => return Err(Error::remote(what, format!("{action} answered without an id"))),
            Err(err) => err,
        };
        match outcome(&err) {
            Outcome::Failed => return Err(aws_error(what, action, err)),
            Outcome::Unknown => {
                if let Some(id) = lookup().await? {
                    return Ok(id);
                }
            }
            Outcome::Refused => {}
        }
        if attempt == ATTEMPTS {
            return Err(aws_error(what, action, err));
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}
