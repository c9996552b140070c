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
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Terraform's default, which providers and cloud quotas are used to.
pub const DEFAULT: usize = 10;

static LIMIT: OnceLock<usize> = OnceLock::new();
static ENDPOINTS: OnceLock<Mutex<HashMap<String, Arc<Endpoint>>>> = OnceLock::new();

/// Sets the bound for this process, once, before the first request; later calls keep the
/// first value (a run sets it from its command line, tests of the library get the default).
pub fn set(per_endpoint: usize) {
    let _ = LIMIT.set(per_endpoint.max(1));
}

/// The bound in force.
pub fn limit() -> usize {
    *LIMIT.get_or_init(|| DEFAULT)
}

/// One endpoint's slots. The bound is a ceiling: an endpoint that answers that it is
/// overloaded (429, 503: a SQLite-backed Prefect server whose writers collide) gets half as
/// many requests at once, down to one, and one more each time as many answers as it gets at
/// once came back well (TCP's additive increase, multiplicative decrease), so that a run
/// backs off together instead of retrying ten at a time into the same contention.
struct Endpoint {
    semaphore: Arc<Semaphore>,
    /// The bound: the window never grows past it.
    ceiling: usize,
    window: Mutex<Window>,
}

/// How many requests an endpoint gets at once now.
struct Window {
    /// The requests allowed at once.
    size: usize,
    /// Slots to take out of use as they come back, after the window shrank below what was
    /// in use.
    owed: usize,
    /// Answers without overload since the window last changed.
    good: usize,
}

impl Endpoint {
    fn new(ceiling: usize) -> Self {
        Self { semaphore: Arc::new(Semaphore::new(ceiling)), ceiling, window: Mutex::new(Window { size: ceiling, owed: 0, good: 0 }) }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Halves the window (down to one).
    fn overloaded(&self) {
        let mut window = self.window();
        let size = (window.size / 2).max(1);
        window.owed += window.size - size;
        window.size = size;
        window.good = 0;
    }

    /// A slot comes back: whether to take it out of use (the window shrank), else, after a
    /// well answered request, whether the window grows by one.
    fn release(&self, overloaded: bool) -> bool {
        let mut window = self.window();
        if window.owed > 0 {
            window.owed -= 1;
            return true;
        }
        if !overloaded && window.size < self.ceiling {
            window.good += 1;
            if window.good >= window.size {
                window.good = 0;
                window.size += 1;
                self.semaphore.add_permits(1);
            }
        }
        false
    }
}

/// One request's slot of its endpoint, given back when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    endpoint: Arc<Endpoint>,
    overloaded: bool,
}

impl Slot {
    /// The endpoint answered this request that it is overloaded (429, 503): it gets fewer
    /// requests at once until it answers well again.
    pub fn overloaded(&mut self) {
        if !self.overloaded {
            self.overloaded = true;
            self.endpoint.overloaded();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take()
            && self.endpoint.release(self.overloaded)
        {
            permit.forget();
        }
    }
}

/// Waits for a free slot of `endpoint` (scheme, host and port, refined for AWS by the signing
/// scope: one service endpoint) and holds it until the slot is dropped, once the answer has
/// been read.
pub async fn slot(endpoint: &str) -> Slot {
    let endpoint = {
        let mut endpoints = ENDPOINTS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
        endpoints.entry(endpoint.to_owned()).or_insert_with(|| Arc::new(Endpoint::new(limit()))).clone()
    };
    // The semaphore is never closed: a permit always comes.
    let permit = endpoint.semaphore.clone().acquire_owned().await.ok();
    Slot { permit, endpoint, overloaded: false }
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

    #[test]
    fn an_overloaded_endpoint_gets_half_the_requests_and_grows_back_one_at_a_time() {
        let endpoint = Arc::new(Endpoint::new(8));
        let take = || Slot { permit: endpoint.semaphore.clone().try_acquire_owned().ok(), endpoint: endpoint.clone(), overloaded: false };
        let mut slots: Vec<Slot> = (0..8).map(|_| take()).collect();
        slots[0].overloaded();
        slots[0].overloaded();
        assert_eq!(endpoint.window().size, 4, "one request's overload halves the window once");
        slots[1].overloaded();
        assert_eq!(endpoint.window().size, 2, "halved twice");
        // The six slots owed are taken out of use as they come back; the last two answered
        // well, a window's worth: one slot more.
        drop(slots);
        assert_eq!((endpoint.window().size, endpoint.semaphore.available_permits()), (3, 3));
        let mut slots: Vec<Slot> = (0..3).map(|_| take()).collect();
        assert!(endpoint.semaphore.try_acquire().is_err(), "never more than the window");
        slots[2].overloaded();
        drop(slots);
        assert_eq!((endpoint.window().size, endpoint.semaphore.available_permits()), (1, 1), "3 halved to 1: two slots out of use");
        for _ in 0..40 {
            drop(take());
        }
        assert_eq!((endpoint.window().size, endpoint.semaphore.available_permits()), (8, 8), "back to the bound, never past it");
    }
}
