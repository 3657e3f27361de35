//! The docs page in a real browser (issue 15): `tests/browser/docs-page.spec.ts` under Playwright
//! with Debian's chromium opens `/v1/docs`, finds every tag and operation of the served document,
//! no console error (a CSP violation is one), and "Try it out" on `GET /v1/health` answering 200;
//! its screenshot is `target/roost/docs-page.png`; and `tests/browser/graphql-explorer.spec.ts`
//! opens the GraphQL explorer (`/v1/docs/graphql`), runs an example and a private field.

use std::process::Command;

use roost_e2e::tools::{node_project, out_dir, run_ok};
use roost_e2e::{Stack, needs_stack};

#[tokio::test]
async fn the_docs_page_lists_every_operation_and_tries_one_out_in_a_browser() {
    needs_stack!();
    let dir = node_project("tests/browser");
    let out = out_dir();
    let api = Stack::get().api_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("npx");
        command
            .current_dir(&dir)
            .args(["--no-install", "playwright", "test"])
            .env("ROOST_API_URL", api)
            .env("ROOST_BROWSER_OUTPUT", out.join("browser"))
            .env("ROOST_DOCS_SCREENSHOT", out.join("docs-page.png"))
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        run_ok("playwright (tests/browser)", &mut command);
    })
    .await
    .expect("playwright run");
}
