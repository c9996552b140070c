//! At most `--parallelism N` requests in flight per service endpoint, across the whole run.
//!
//! A plan reads every node at once, which is what makes it fast; but a pools file of a hundred
//! pools sends hundreds of requests at the same moment, and real AWS throttles IAM and EC2 per
//! account far below that. The bound is kept where requests are sent (the AWS SDK's HTTP
//! client, see [`crate::clouds::aws::http`], and [`crate::http`]'s transport for Prefect, Google
//! Cloud and Azure), so that no code path can go around it. It is per process because a run
//! builds one set of SDK clients per pool and all of them share the endpoints: a bound per
//! client would bound nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Terraform's default, which providers and cloud quotas are used to.
pub const DEFAULT: usize = 10;

static LIMIT: OnceLock<usize> = OnceLock::new();
static ENDPOINTS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();

/// Sets the bound for this process, once, before the first request; later calls keep the
/// first value (a run sets it from its command line, tests of the library get the default).
pub fn set(per_endpoint: usize) {
    let _ = LIMIT.set(per_endpoint.max(1));
}

/// The bound in force.
pub fn limit() -> usize {
    *LIMIT.get_or_init(|| DEFAULT)
}

/// Waits for a free slot of `endpoint` (scheme, host and port: one service endpoint) and holds
/// it until the permit is dropped, once the answer has been read. (None only for a closed
/// semaphore, which this module never closes.)
pub async fn slot(endpoint: &str) -> Option<OwnedSemaphorePermit> {
    let semaphore = {
        let mut endpoints = ENDPOINTS.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        endpoints.entry(endpoint.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit()))).clone()
    };
    semaphore.acquire_owned().await.ok()
}

/// The endpoint of `url`: its scheme, host and port, the unit the bound applies to.
pub fn endpoint_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in a URL are no part of the endpoint, and must not be kept.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_scheme_host_and_port_without_credentials() {
        assert_eq!(endpoint_of("https://iam.amazonaws.com/?Action=ListUsers"), "https://iam.amazonaws.com");
        assert_eq!(endpoint_of("http://user:pw@127.0.0.1:4200/api/work_pools/x"), "http://127.0.0.1:4200");
        assert_eq!(endpoint_of("HTTPS://EC2.eu-west-1.amazonaws.com"), "https://ec2.eu-west-1.amazonaws.com");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_are_in_flight_per_endpoint() {
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..40).map(|_| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            tokio::spawn(async move {
                let _slot = slot("http://test-bound:1").await;
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            })
        });
        futures::future::join_all(tasks).await;
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), limit(), "the bound is reached and never passed");
    }
}
