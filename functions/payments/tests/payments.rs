//! The `payments` context's one integration test binary (it also makes `cargo test` build the
//! context's two Lambda binaries). One module per subject:
//! - `adopt`: the payment call adopts the intent a failed call left at Stripe;
//! - `webhook_samples`: every `events/payments/` sample through the HTTP router;
//! - `batch_samples`: every `events/payment-events/` batch through the SQS consumer;
//! - `template`: what infra/template.yaml must keep true for the consumer.

mod payments {
    mod adopt;
    mod batch_samples;
    mod template;
    mod webhook_samples;
}
