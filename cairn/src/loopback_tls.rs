//! The HTTP client of the console's own S3 calls when the S3 listener serves HTTPS: an
//! aws-sdk HTTP client (hyper with rustls) that trusts exactly the certificate this server
//! serves now ([`cairn_net::TlsFiles::loopback_client_config`]), so the loopback call needs
//! no CA bundle and no name in the certificate matching 127.0.0.1, and verification is never
//! switched off.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type Https = hyper_rustls::HttpsConnector<TcpConnector>;

/// See the module docs.
#[derive(Clone)]
pub struct LoopbackHttps {
    client: Client<Https, SdkBody>,
}

impl std::fmt::Debug for LoopbackHttps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopbackHttps")
    }
}

impl LoopbackHttps {
    /// A client trusting what `tls` serves.
    pub fn client(tls: &Arc<cairn_net::TlsFiles>) -> anyhow::Result<SharedHttpClient> {
        let mut config = tls.loopback_client_config()?;
        // hyper-rustls sets ALPN from `enable_http1` itself.
        config.alpn_protocols.clear();
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(SharedHttpClient::new(LoopbackHttps { client }))
    }
}

impl HttpConnector for LoopbackHttps {
    fn call(&self, request: aws_smithy_runtime_api::http::Request) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let response = client
                .request(request)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

impl HttpClient for LoopbackHttps {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
