//! `roost`: the local runtime behind `cargo roost up` and `cargo roost test`.
//! See docs/local-runtime.md for how it works and how it differs from AWS.

mod aws;
mod capacity;
mod cli;
mod commands;
mod deploy_tools;
mod emulators;
mod faults;
mod gateway;
mod lambda;
mod metrics;
mod process;
mod program;
mod provision;
mod replay;
mod seed;
mod seed_listings;
mod sources;
mod stack;
mod streams;
mod template;
#[cfg(test)]
mod test_functions;
mod throttle;
mod tools;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse_args() {
        Ok(args) => commands::run(&args),
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}
