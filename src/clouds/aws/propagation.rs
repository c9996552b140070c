//! IAM's propagation delay, as ECS meets it: a role created or changed moments ago is not yet
//! usable everywhere (IAM is eventually consistent), so ECS refuses it for some seconds:
//! `RegisterTaskDefinition` answers `ClientException: Role is not valid`, and `CreateService` or
//! `UpdateService` an `InvalidParameterException` saying ECS was unable to assume the role.
//! Such a refusal is waited out through [`crate::retry::settle`] (bounded, named on the step's
//! progress line); any other error ends the step at once.
//!
//! pushpool never signs a request with an access key it mints (the block's holder does, later),
//! so the same delay for a new key is not met here.

use std::future::Future;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::errors::{aws_error, code_and_message};
use crate::error::Result;
use crate::retry::{Settling, settle};

/// Whether ECS's answer `code`/`message` is its refusal of a role IAM has not propagated yet.
fn role_not_yet_usable(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    matches!(code, "ClientException" | "InvalidParameterException") && (message.contains("role is not valid") || message.contains("unable to assume"))
}

/// Sends the ECS call `send` (`action` on `what`, naming `roles`) until ECS accepts the roles it
/// names, waiting out IAM's propagation delay.
pub async fn until_roles_usable<T, E, F, Fut>(what: &str, action: &str, roles: &str, mut send: F) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
{
    let waiting_for = format!("IAM to make {roles} usable by ECS");
    settle(&waiting_for, || {
        let sent = send();
        async move {
            match sent.await {
                Ok(out) => Ok(Settling::Done(out)),
                Err(e) if code_and_message(&e).is_some_and(|(code, message)| role_not_yet_usable(&code, &message)) => Ok(Settling::NotYet(aws_error(what, action, e))),
                Err(e) => Err(aws_error(what, action, e)),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::role_not_yet_usable;

    #[test]
    fn only_ecss_refusals_of_a_role_are_waited_out() {
        assert!(role_not_yet_usable("ClientException", "Role is not valid"));
        let assume = "ECS was unable to assume the role 'arn:aws:iam::123456789012:role/r' that was provided for this task.";
        assert!(role_not_yet_usable("InvalidParameterException", assume));
        assert!(!role_not_yet_usable("ClientException", "Family names can only contain letters"));
        assert!(!role_not_yet_usable("AccessDeniedException", "not authorized to perform: iam:PassRole on resource role"));
        assert!(!role_not_yet_usable("InvalidParameterException", "subnet is not valid"));
    }
}
