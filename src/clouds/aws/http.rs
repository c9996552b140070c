//! The AWS SDK's own HTTPS client (rustls on aws-lc, as `default-https-client` builds it),
//! wrapped so that every request holds one of the endpoint's `--parallelism` slots (see
//! [`crate::parallelism`]) until its answer has been read whole.
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
            let _slot = parallelism::slot(&parallelism::endpoint_of(request.uri())).await;
            let mut response = inner.call(request).await?;
            let body = ByteStream::new(response.take_body()).collect().await.map_err(|e| ConnectorError::io(Box::new(e)))?;
            *response.body_mut() = SdkBody::from(body.into_bytes());
            Ok(response)
        })
    }
}
