// The GraphQL explorer (`/v1/docs/graphql`, our own page under the docs' Content-Security-Policy)
// in a real browser: it loads the schema and the persisted queries from us, runs an example
// against `/v1/graphql` and shows the answer, with no console error (a CSP violation is one).
import { test, expect, type ConsoleMessage } from '@playwright/test';

test('the GraphQL explorer shows the schema and runs an example query', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));

  await page.goto('/v1/docs/graphql');
  await expect(page.locator('#schema')).toContainText('type Query');
  await page.locator('#filter').fill('ListingSummary');
  await expect(page.locator('#schema')).not.toContainText('type Booking ');

  await page.locator('#examples').selectOption('search');
  await expect(page.locator('#query')).toHaveValue(/query Search/);
  await page.locator('#run').click();
  await expect(page.locator('#status')).toContainText('200');
  await expect(page.locator('#result')).toContainText('"search"');
  await expect(page.locator('#result')).toContainText('"pageInfo"');
  await expect(page.locator('#result')).not.toContainText('"errors"');

  // A private field without a token: null, with REST's problem code in the error.
  await page.locator('#query').fill('{ me { id } }');
  await page.locator('#variables').fill('{}');
  await page.keyboard.press('Control+Enter');
  await expect(page.locator('#result')).toContainText('"unauthorized"');

  expect(errors, errors.join('\n')).toEqual([]);
});
