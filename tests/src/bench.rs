//! What `cargo roost bench` measures and how it reports it (issue 18; docs/performance.md). The
//! measuring and reporting live here, in the harness, so `cargo roost test` compiles them and runs
//! their unit tests; the `roost-bench` binary (bench/driver) adds the load tool and runs them
//! against a release stack.

pub mod cdn;
pub mod cold;
pub mod cost;
pub mod measure;
pub mod render;
pub mod reports;
pub mod scaling;
pub mod stats;
pub mod targets;
pub mod usage;
pub mod warm;

/// The reference functions of bench/template.yaml (bench/README.md): the floor (a hello-world
/// `lambda_http` function, no SDK) and the usual alternative (Python 3.11 + boto3 doing what
/// `GET /v1/listings/{id}` does).
pub const RUST_REFERENCE: &str = "BenchRustHelloFunction";
pub const PYTHON_REFERENCE: &str = "BenchPythonBoto3Function";

/// Whether `function` is one of the reference functions (they log no request lines).
pub fn is_reference(function: &str) -> bool {
    function == RUST_REFERENCE || function == PYTHON_REFERENCE
}
