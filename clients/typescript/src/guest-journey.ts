// A guest's journey through the typed client: sign up, confirm, sign in, search a city, quote a
// stay, book it (with an Idempotency-Key, retried once to show the replay), and read the trip.
// Every path, body and answer is typed from docs/openapi.json (src/schema.d.ts, `npm run generate`).
//
//   npm run generate && npm run build && ROOST_API_URL=http://127.0.0.1:8000 npm run journey
//
// ROOST_CITY names the city to search (default `lisboa`, where `cargo roost up` seeds listings);
// the local Cognito accepts any confirmation code, a real one e-mails it (ROOST_CONFIRM_CODE).
import { randomUUID } from 'node:crypto';

import createClient, { type Middleware } from 'openapi-fetch';

import type { paths } from './schema.js';

const baseUrl = process.env.ROOST_API_URL;
if (!baseUrl) throw new Error('set ROOST_API_URL (e.g. http://127.0.0.1:8000)');
const city = process.env.ROOST_CITY ?? 'lisboa';

const roost = createClient<paths>({ baseUrl });

/** Fails with the problem+json body (its `code` says what went wrong). */
function check<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  console.log(`${what}: ${result.response.status}`);
  return result.data;
}

/** `YYYY-MM-DD`, `days` after today (UTC; the listing's time zone is at most a day off). */
function day(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

async function main(): Promise<void> {
  // Sign up and confirm (204: no body), then sign in for tokens.
  const email = `ts-guest-${randomUUID()}@example.com`;
  const password = 'Sunny-days-1';
  const signedUp = check('sign up', await roost.POST('/v1/auth/signup', { body: { email, password, name: 'Tess' } }));
  const confirmed = await roost.POST('/v1/auth/confirm', {
    body: { email, code: process.env.ROOST_CONFIRM_CODE ?? '123456' },
  });
  if (confirmed.response.status !== 204) throw new Error(`confirm: ${confirmed.response.status}`);
  const tokens = check('sign in', await roost.POST('/v1/auth/login', { body: { email, password } }));

  // Every later call carries the access token.
  const bearer: Middleware = {
    onRequest({ request }) {
      request.headers.set('Authorization', `Bearer ${tokens.access_token}`);
      return request;
    },
  };
  roost.use(bearer);

  // Search, then quote a two-night stay a month ahead at the first listing.
  const found = check('search', await roost.GET('/v1/search', { params: { query: { city, limit: 5 } } }));
  const listing = found.items[0];
  if (!listing) throw new Error(`no listing in ${city}: create one, or set ROOST_CITY`);
  const stay = { listing_id: listing.listing_id, check_in: day(30), check_out: day(32), guests: 1 };
  const quote = check('quote', await roost.POST('/v1/quotes', { body: stay }));
  if (!quote.available) throw new Error(`${listing.listing_id} is taken on ${stay.check_in}`);
  console.log(`  ${quote.nights} nights at ${listing.title}: ${quote.price.total} ${quote.price.currency} (minor units)`);

  // Book with an Idempotency-Key; the retry with the same key gets the same booking back.
  const key = randomUUID();
  const book = () => roost.POST('/v1/bookings', { body: stay, params: { header: { 'Idempotency-Key': key } } });
  const booking = check('book', await book());
  const again = check('book again (same key)', await book());
  if (again.booking_id !== booking.booking_id) throw new Error('the retry made a second booking');
  console.log(`  ${booking.booking_id} ${booking.status}, hold until ${booking.hold_expires_at}`);

  // The trip, and the guest's trips.
  const trip = check('read the trip', await roost.GET('/v1/bookings/{id}', { params: { path: { id: booking.booking_id } } }));
  if (trip.status !== 'pending_payment') throw new Error(`trip status ${trip.status}`);
  // The trips list reads an index that is eventually consistent: a new booking shows there
  // within moments, so a client that just booked polls briefly instead of concluding it is missing.
  let listed = false;
  for (let attempt = 0; attempt < 20 && !listed; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    const trips = check('my trips', await roost.GET('/v1/me/trips', {}));
    listed = trips.items.some((t) => t.booking_id === booking.booking_id);
  }
  if (!listed) throw new Error('the trip is not in /v1/me/trips after 5 s');
  console.log(`guest journey done: ${signedUp.user_id} booked ${booking.booking_id}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
