//! Probe queues: SQS queues a test creates and subscribes to the domain-events topic to see
//! what is published. They are removed however the test ends: a test that fails (panics)
//! before its last line used to leave its queue subscribed, and every later publication was
//! copied into it for the rest of the stack's life.

/// Unsubscribes `subscription_arn` and deletes the queue at `queue_url` when dropped, on a
/// panic too.
#[derive(Debug)]
pub struct ProbeGuard {
    queue_url: String,
    subscription_arn: String,
}

impl ProbeGuard {
    pub fn new(queue_url: impl Into<String>, subscription_arn: impl Into<String>) -> ProbeGuard {
        ProbeGuard { queue_url: queue_url.into(), subscription_arn: subscription_arn.into() }
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        let queue_url = std::mem::take(&mut self.queue_url);
        let subscription_arn = std::mem::take(&mut self.subscription_arn);
        // `drop` cannot await and runs inside the test's runtime (which must not be blocked on
        // from within): the clean-up runs on a thread with a runtime of its own, waited for.
        // A clean-up that fails (the stack is gone) is only reported, never a second panic.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if !subscription_arn.is_empty() {
                    let _ = crate::sns().unsubscribe().subscription_arn(&subscription_arn).send().await;
                }
                crate::sqs("DeleteQueue", &serde_json::json!({"QueueUrl": queue_url})).await;
            });
        });
        if cleanup.join().is_err() {
            eprintln!("a probe queue could not be removed");
        }
    }
}
