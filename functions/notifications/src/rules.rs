//! What notifications decide from values alone: who gets what for an event
//! ([`recipients`]), the rules of an e-mail's state ([`email`]), and the messages' e-mail
//! throttle ([`throttle`]).

pub mod email;
pub mod recipients;
pub mod throttle;
