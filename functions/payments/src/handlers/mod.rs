//! The payments Lambda's routes, one module each: `POST /v1/bookings/{id}/payment`
//! ([`payment::pay`]) and `POST /v1/webhooks/stripe` ([`webhook::stripe_webhook`]).

pub mod payment;
pub mod webhook;
