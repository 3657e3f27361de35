//! The typed TypeScript client (issue 15): `clients/typescript` generates its types from
//! docs/openapi.json (openapi-typescript), type-checks its example against them (`tsc --noEmit`:
//! a route, field or type the example uses that the document lacks fails here), then runs the
//! compiled example, a guest's journey through openapi-fetch, against the stack.

use std::process::Command;

use roost_e2e::tools::{node_project, run_ok};
use roost_e2e::{NewListing, Stack, User, needs_stack, unique};

fn npm(dir: &std::path::Path, script: &str) -> Command {
    let mut command = Command::new("npm");
    command.current_dir(dir).args(["run", "--silent", script]);
    command
}

#[tokio::test]
async fn the_generated_client_type_checks_and_runs_a_guest_journey() {
    needs_stack!();
    let dir = node_project("clients/typescript");
    // The listing the guest finds: a host's, in a city of its own.
    let host = User::host("TS Host").await;
    let city = unique("Tsville");
    host.api().new_listing(&NewListing::in_city(&city)).await;
    let api = Stack::get().api_url.clone();
    tokio::task::spawn_blocking(move || {
        run_ok("openapi-typescript docs/openapi.json", &mut npm(&dir, "generate"));
        run_ok("tsc --noEmit (clients/typescript)", &mut npm(&dir, "check"));
        run_ok("tsc (clients/typescript -> dist)", &mut npm(&dir, "build"));
        let mut journey = npm(&dir, "journey");
        journey.env("ROOST_API_URL", api).env("ROOST_CITY", city);
        let ran = run_ok("the guest journey (node dist/guest-journey.js)", &mut journey);
        assert!(ran.output.contains("guest journey done"), "{}", ran.output);
    })
    .await
    .expect("the client's tools");
}
