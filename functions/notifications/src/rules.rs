//! What notifications decide from values alone: who gets what for an event
//! ([`recipients`]), and the rules of an e-mail's state ([`email`]).

pub mod email;
pub mod recipients;
