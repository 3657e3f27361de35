// The docs page (`/v1/docs`, Swagger UI under our Content-Security-Policy) in a real browser: it
// lists every tag and every operation of the served document, logs no console error (a CSP
// violation is one), and "Try it out" on the health operation answers 200.
import { test, expect, type ConsoleMessage } from '@playwright/test';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

// The operation tried out: `GET /v1/health` unless ROOST_DOCS_TRY says another ("GET /v1/path").
const TRY = (process.env.ROOST_DOCS_TRY ?? 'GET /v1/health').split(' ');
const TRY_METHOD = TRY[0].toLowerCase();
const TRY_PATH = TRY[1];

const SCREENSHOT = process.env.ROOST_DOCS_SCREENSHOT ?? '../../target/roost/docs-page.png';

type Operation = { method: string; path: string; tag: string; operationId: string };

test('the docs page lists the whole document and tries out the health check', async ({ page, request }) => {
  const errors: string[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));

  const res = await request.get('/v1/openapi.json');
  expect(res.status(), 'GET /v1/openapi.json').toBe(200);
  const doc = await res.json();
  const tags: string[] = (doc.tags ?? []).map((t: { name: string }) => t.name);
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (op) operations.push({ method, path, tag: op.tags?.[0] ?? 'default', operationId: op.operationId });
    }
  }
  const tried = operations.find((o) => o.method === TRY_METHOD && o.path === TRY_PATH);
  expect(
    tried,
    `${TRY_METHOD.toUpperCase()} ${TRY_PATH} is not in the served document (${operations.length} operations: ` +
      `${operations.map((o) => `${o.method.toUpperCase()} ${o.path}`).join(', ')}); ` +
      'annotate it in its context (#[utoipa::path]) and regenerate docs/openapi.json',
  ).toBeDefined();

  await page.goto('/v1/docs');
  await expect(page.locator('.swagger-ui .info .title')).toContainText(doc.info.title);

  // Every tag that has an operation is a section, and every operation is listed under its tag.
  const used = new Set(operations.map((o) => o.tag));
  for (const tag of tags.filter((t) => used.has(t))) {
    await expect(page.locator(`.opblock-tag[data-tag="${tag}"]`), `tag ${tag}`).toBeVisible();
  }
  for (const op of operations) {
    const block = page.locator(`.opblock-tag-section:has(.opblock-tag[data-tag="${op.tag}"]) .opblock-${op.method}`)
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${op.path}"]`) });
    await expect(block, `${op.method.toUpperCase()} ${op.path} under ${op.tag}`).toHaveCount(1);
  }
  await expect(page.locator('.opblock')).toHaveCount(operations.length);

  // Expand the operation, try it out, execute: the live response panel shows 200.
  const block = page.locator(`.opblock-${tried!.method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${tried!.path}"]`) });
  await block.locator('.opblock-summary').first().click();
  await block.locator('.try-out__btn').click();
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table .response .response-col_status').first();
  await expect(status).toHaveText('200');
  await expect(block.locator('.live-responses-table .response .response-col_description').first()).not.toBeEmpty();

  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect(errors, 'console errors, CSP violations or failed requests on the page').toEqual([]);
});
