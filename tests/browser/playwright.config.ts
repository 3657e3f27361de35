// The docs page in a real browser (tests/tests/e2e/docs_page.rs runs this with ROOST_API_URL set).
// The browser is Debian's chromium (installed by `cargo roost test`), the build this Playwright
// version expects: never `npx playwright install`, which downloads.
import { defineConfig } from '@playwright/test';

const api = process.env.ROOST_API_URL;
if (!api) {
  throw new Error('ROOST_API_URL is not set: run through `cargo roost test` (tests/tests/e2e/docs_page.rs)');
}

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  retries: 0,
  workers: 1,
  reporter: [['list']],
  outputDir: process.env.ROOST_BROWSER_OUTPUT ?? '../../target/roost/browser',
  use: {
    baseURL: api,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.ROOST_CHROMIUM ?? '/usr/bin/chromium',
      // Containers and CI runners as root have no user namespaces for the sandbox.
      args: ['--no-sandbox'],
    },
    trace: 'retain-on-failure',
  },
});
