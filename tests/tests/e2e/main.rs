//! The end-to-end suite as one test binary: one link and one process for every module (each
//! file used to be its own test executable). Most tests drive the stack `cargo roost test`
//! starts (`roost_e2e::Stack`); `template`, `code_shape` and parts of `logs` are static checks of
//! the sources.

mod auth;
mod authorization;
mod bookings;
mod bookings_store;
mod caching;
mod calendar_sync;
mod code_shape;
mod coverage;
mod currencies;
mod delivery;
mod deploy;
mod docs_page;
mod events;
mod fault_switches;
mod fuzz;
mod graphql;
mod health;
mod journey;
mod launcher;
mod lifecycle;
mod listings;
mod logs;
mod messaging;
mod metrics;
mod notifications;
mod openapi;
mod payments;
mod payouts;
mod request_counts;
mod request_to_book;
mod reviews;
mod runtime_limits;
mod sessions;
mod template;
mod typescript_client;
mod users;
