//! The AWS SDK's own HTTPS client (rustls on aws-lc, as `default-https-client` builds it),
//! wrapped so that every request holds one of the endpoint's `--parallelism` slots (see
//! [`crate::parallelism`]) until its answer has been read whole.
//!
//! An endpoint is a service in a region (`ec2.us-east-1.amazonaws.com`): the host tells it on
//! AWS, the request's signing scope wherever one address serves every service (a custom
//! `AWS_ENDPOINT_URL`, a test's moto), so that the bound is the same there as on AWS.
//!
//! The slot is taken inside the SDK's HTTP layer, below its retries: each attempt waits for a
//! slot, and the SDK's signing, retry and timeout logic is untouched. The answer's body is read
//! before the slot is given back, so that the bound counts what the server sees as one request.

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use crate::parallelism;

/// The HTTP client of every AWS client pushpool builds (the credential providers' STS calls
/// included): the SDK's default, bounded per endpoint.
pub fn bounded_client() -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_https();
    SharedHttpClient::new(Bounded { inner })
}

#[derive(Debug)]
struct Bounded {
    inner: SharedHttpClient,
}

impl HttpClient for Bounded {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector { inner: self.inner.http_connector(settings, components) })
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let mut slot = parallelism::slot(&endpoint(&request)).await;
            let mut response = inner.call(request).await?;
            // Throttling is AWS's 400 with a code, which the SDK's adaptive retry slows down
            // for; a 503 (S3's SlowDown) or 429 says so in the status.
            if matches!(response.status().as_u16(), 429 | 503) {
                slot.overloaded();
            }
            let body = ByteStream::new(response.take_body()).collect().await.map_err(|e| ConnectorError::io(Box::new(e)))?;
            *response.body_mut() = SdkBody::from(body.into_bytes());
            Ok(response)
        })
    }
}

/// The endpoint of `request`, as [`crate::parallelism`] bounds it: its scheme, host and port,
/// and the region and service of its SigV4 scope when it is signed.
fn endpoint(request: &HttpRequest) -> String {
    let address = parallelism::endpoint_of(request.uri());
    match request.headers().get("authorization").and_then(signing_scope) {
        Some(scope) => format!("{address} {scope}"),
        None => address,
    }
}

/// `region/service` of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/iam/aws4_request, ...`).
fn signing_scope(authorization: &str) -> Option<String> {
    let credential = authorization.split([' ', ',']).find_map(|part| part.strip_prefix("Credential="))?;
    let mut fields = credential.split('/').skip(2);
    let (region, service) = (fields.next()?, fields.next()?);
    Some(format!("{region}/{service}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_is_bounded_by_its_service_and_region_on_one_address() {
        let signed = |scope: &str| {
            let mut request = HttpRequest::get("http://127.0.0.1:15000/").unwrap();
            let header = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/{scope}/aws4_request, SignedHeaders=host, Signature=abc");
            request.headers_mut().insert("authorization", header);
            endpoint(&request)
        };
        assert_eq!(signed("us-east-1/iam"), "http://127.0.0.1:15000 us-east-1/iam");
        assert_ne!(signed("us-east-1/ec2"), signed("us-west-2/ec2"), "two regions are two endpoints");
        assert_eq!(endpoint(&HttpRequest::get("https://sts.amazonaws.com/").unwrap()), "https://sts.amazonaws.com", "unsigned: the address alone");
    }
}
