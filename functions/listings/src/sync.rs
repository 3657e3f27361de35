//! The scheduled calendar sync (template: `CalendarSyncFunction`, every 30 minutes): fetches
//! every due import's feed and brings its imported nights in step with it. A feed that cannot be
//! fetched or read keeps the nights it had and records the error on the import.
//!
//! Listings are synced [`LISTINGS_AT_ONCE`] at a time (a slow feed, up to its 15 s, holds up
//! only its own listing), the imports of one listing one after another (they write the same
//! nights and search item); no import starts with less than [`IMPORT_BUDGET`] before the
//! invocation's deadline: what a run does not reach stays due for the next.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::time::Instant;

use crate::SyncState;
use crate::feeds::FeedFetcher;
use crate::ical;
use crate::store::{self, calendar_sync as cs};

/// How often an import is fetched.
pub const INTERVAL: SignedDuration = SignedDuration::from_mins(30);
/// Imports per run (the next run takes the rest: the oldest due first).
const PER_RUN: u32 = 100;
/// Listings whose imports are synced at once.
pub const LISTINGS_AT_ONCE: usize = 8;
/// What one import may take: its fetch (15 s at most) and its writes.
pub const IMPORT_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub synced: u32,
    pub failed: u32,
    pub nights_added: usize,
    pub nights_removed: usize,
    pub conflicts: usize,
    /// Due imports left for the next run (the invocation's deadline was near).
    pub left_for_next_run: u32,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.synced += other.synced;
        self.failed += other.failed;
        self.nights_added += other.nights_added;
        self.nights_removed += other.nights_removed;
        self.conflicts += other.conflicts;
        self.left_for_next_run += other.left_for_next_run;
    }
}

/// One run: the due imports, grouped by listing, [`LISTINGS_AT_ONCE`] listings at a time, until
/// `deadline` (less [`IMPORT_BUDGET`]). A table error fails the run after every group ended.
pub async fn run(st: &SyncState, deadline: Option<Instant>) -> anyhow::Result<Report> {
    let now = st.clock.now();
    let mut by_listing: BTreeMap<String, Vec<cs::CalendarImport>> = BTreeMap::new();
    for import in cs::due_imports(&st.table, now, PER_RUN).await? {
        by_listing.entry(import.listing_id.clone()).or_default().push(import);
    }
    let groups = futures::stream::iter(by_listing.into_values())
        .map(|imports| sync_listing(st, imports, now, deadline))
        .buffer_unordered(LISTINGS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut report = Report::default();
    let mut first_error = None;
    for (part, error) in groups {
        report.add(part);
        first_error = first_error.or(error);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The imports of one listing, one after another; what it did, and the table error that
/// stopped it, if any.
async fn sync_listing(
    st: &SyncState,
    imports: Vec<cs::CalendarImport>,
    now: Timestamp,
    deadline: Option<Instant>,
) -> (Report, Option<anyhow::Error>) {
    let mut report = Report::default();
    let total = imports.len();
    for (done, import) in imports.into_iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() + IMPORT_BUDGET >= d) {
            report.left_for_next_run += u32::try_from(total - done).unwrap_or(u32::MAX);
            tracing::warn!(listing_id = %import.listing_id, "the invocation's deadline is near: imports left for the next run");
            break;
        }
        if let Err(e) = sync_import(st, &import, now, &mut report).await {
            return (report, Some(e));
        }
    }
    (report, None)
}

/// One import: fetched, applied and recorded.
async fn sync_import(
    st: &SyncState,
    import: &cs::CalendarImport,
    now: Timestamp,
    report: &mut Report,
) -> anyhow::Result<()> {
    let result = sync_one(st, &st.fetcher, import, now, report).await?;
    let outcome = cs::Outcome { fetched_at: now, next_due: now + INTERVAL, result };
    match &outcome.result {
        Ok(_) => report.synced += 1,
        Err(e) => {
            report.failed += 1;
            tracing::warn!(import_id = %import.import_id, error = %e, "calendar import failed");
        }
    }
    if !cs::record(&st.table, import, &outcome).await? {
        // Deleted while it ran: free what this run may have written.
        free_nights(&st.table, &import.listing_id, &import.import_id, now).await?;
    }
    Ok(())
}

/// One import: `Ok` with its night count and conflicts, `Err` with the message to record.
async fn sync_one(
    st: &SyncState,
    fetcher: &FeedFetcher,
    import: &cs::CalendarImport,
    now: Timestamp,
    report: &mut Report,
) -> anyhow::Result<Result<(u32, Vec<cs::Conflict>), String>> {
    let Some(listing) = store::get(&st.table, &import.listing_id).await? else {
        return Ok(Err("the listing no longer exists".into()));
    };
    if !listing.is_active() {
        return Ok(Err("the listing is archived".into()));
    }
    let text = match fetcher.fetch(&import.url).await {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let zone = TimeZone::get(&listing.fields.timezone).unwrap_or(TimeZone::UTC);
    let (first, end) = ical::import_window(crate::rules::today_in(&listing.fields.timezone, now));
    let wanted = match ical::parse_feed(&text, &zone, first, end) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e.0)),
    };
    let current = cs::nights(&st.table, &import.listing_id, first, end).await?;
    let plan = cs::plan(&import.import_id, &wanted, &current, now);
    let added = cs::add_nights(&st.table, &import.listing_id, &import.import_id, &plan.add, now).await?;
    let removed = cs::remove_nights(&st.table, &import.listing_id, &import.import_id, &plan.remove).await?;
    report.nights_added += added.len();
    report.nights_removed += removed.len();
    report.conflicts += plan.conflicts.len();
    let count = plan.keep + added.len() + (plan.remove.len() - removed.len());
    Ok(Ok((u32::try_from(count).unwrap_or(u32::MAX), plan.conflicts)))
}

/// Frees every night of the import from today on (its delete, or a delete during a run).
pub async fn free_nights(
    table: &shared::Table,
    listing_id: &str,
    import_id: &str,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let first = now.to_zoned(TimeZone::UTC).date().yesterday().unwrap_or(jiff::civil::Date::MIN);
    let (_, end) = ical::import_window(first);
    let nights = cs::nights(table, listing_id, first, end).await?;
    let mine: Vec<_> =
        nights.iter().filter(|n| n.import_id.as_deref() == Some(import_id)).filter_map(|n| n.civil_date()).collect();
    Ok(cs::remove_nights(table, listing_id, import_id, &mine).await?.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn near_the_deadline_no_import_starts_and_all_are_left_for_the_next_run() {
        let now: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let st = SyncState {
            // Offline: an import that started would fail on its first read.
            table: Arc::new(shared::testing::offline_table()),
            clock: Arc::new(shared::clock::FixedClock::at("2027-01-01T00:00:00Z").unwrap()),
            fetcher: Arc::new(FeedFetcher::new(false).unwrap()),
        };
        let imports: Vec<_> = (0..3)
            .map(|i| cs::CalendarImport::new("lst_1", "h", format!("https://cal.example.com/{i}.ics"), None, now))
            .collect();
        let deadline = Instant::now() + IMPORT_BUDGET / 2;
        let (report, error) = sync_listing(&st, imports, now, Some(deadline)).await;
        assert!(error.is_none(), "nothing was tried: {error:?}");
        assert_eq!((report.left_for_next_run, report.synced, report.failed), (3, 0, 0));
    }
}
