//! AWS SDK errors turned into pushpool errors that name the resource, the action, the
//! cloud's own code and message, and the fix.

use aws_sdk_iam::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// The service error code of `err`, if AWS answered with one.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// An error for `action` (e.g. "iam:CreateRole") on `what` (e.g. "IAM role X").
pub fn aws_error<E, R>(what: &str, action: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = code(&err).map(str::to_owned);
    let cause = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!("{action} failed: {} ({})", e.message().unwrap_or("no message"), e.code().unwrap_or("no code"))
        }
        _ => format!("{action} failed: {}", DisplayErrorContext(&err)),
    };
    let error = Error::remote(what, cause);
    match code.as_deref() {
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnrecognizedClientException") => {
            error.fix(format!("grant {action} to the AWS identity running pushpool, then run again"))
        }
        Some("LimitExceeded" | "LimitExceededException" | "VpcLimitExceeded" | "InternetGatewayLimitExceeded") => error
            .fix("raise the quota (Service Quotas console) or free one, then run again; what exists is kept and reused"),
        Some("InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException" | "SignatureDoesNotMatch") => {
            error.fix("refresh the AWS credentials (e.g. `aws sso login`), then run again")
        }
        _ if matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
            error.fix("check the network and AWS_ENDPOINT_URL, then run again")
        }
        _ => error,
    }
}
