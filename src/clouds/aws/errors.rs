//! AWS SDK errors turned into pushpool errors that name the resource, the action, the
//! cloud's own code and message, and the fix.

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// An error and its sources, each by its message: "dispatch failure: io error: connection
/// refused". Never the SDK's debug dump, which holds the whole raw response.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let message = inner.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        source = inner.source();
    }
    text
}

/// The error code and message AWS answered with. When the SDK could not read them (an
/// error body in another shape: a proxy's, a load balancer's, an emulator's), they are
/// looked for in the raw body, and the HTTP status stands in for a missing code.
pub(super) fn code_and_message<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<(String, String)> {
    let raw = match err {
        SdkError::ServiceError(service) => {
            let parsed = service.err();
            if let Some(code) = parsed.code() {
                return Some((code.to_owned(), parsed.message().unwrap_or("no message").to_owned()));
            }
            service.raw()
        }
        SdkError::ResponseError(response) => response.raw(),
        _ => return None,
    };
    let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    let code = xml_element(&body, "Code").unwrap_or_else(|| format!("HTTP {}", raw.status().as_u16()));
    let message = xml_element(&body, "Message").or_else(|| xml_element(&body, "title")).unwrap_or_else(|| body.chars().take(200).collect());
    Some((code, message))
}

/// The text of the first `<name>` element of `body`.
fn xml_element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + end].to_owned())
}

/// The service error code of `err`, if AWS answered with one.
pub fn code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    code_and_message(err).map(|(code, _)| code)
}

/// Succeeds when `result` did, or failed with one of `codes`: answers such as "already
/// associated" after a resumed create, or "no such entity" for a delete, that mean the work
/// is done.
pub fn accept<E, R>(result: Result<R, SdkError<E, HttpResponse>>, codes: &[&str], what: &str, action: &str) -> crate::error::Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if code(&e).is_some_and(|c| codes.contains(&c.as_str())) => Ok(()),
        Err(e) => Err(aws_error(what, action, e)),
    }
}

/// An error for `action` (e.g. "iam:CreateRole") on `what` (e.g. "IAM role X").
pub fn aws_error<E>(what: &str, action: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let answer = code_and_message(&err);
    let cause = match &answer {
        Some((code, message)) => format!("{action} failed: {message} ({code})"),
        None => format!("{action} failed: {}", causes(&err)),
    };
    let error = Error::remote(what, cause);
    match answer.as_ref().map(|(code, _)| code.as_str()) {
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnrecognizedClientException") => {
            error.fix(format!("grant {action} to the AWS identity running pushpool (see policies/aws/operator-apply.json), then run again"))
        }
        Some("LimitExceeded" | "LimitExceededException" | "VpcLimitExceeded" | "InternetGatewayLimitExceeded") => {
            error.fix("raise the quota (Service Quotas console) or free one, then run again; what exists is kept and reused")
        }
        Some("InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException" | "SignatureDoesNotMatch") => {
            error.fix("refresh the AWS credentials (e.g. `aws sso login`), then run again")
        }
        Some(code) if code.starts_with("HTTP 5") => error.fix("check the region (AWS_REGION) and AWS_ENDPOINT_URL; if they are right, AWS is failing: run again later"),
        _ if matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
            error.fix("check the network, the region (AWS_REGION) and AWS_ENDPOINT_URL, then run again")
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_code_and_message_in_an_unusual_error_body() {
        let body = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>not authorized</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_element(body, "Message").as_deref(), Some("not authorized"));
        assert_eq!(xml_element("{}", "Code"), None);
    }
}
