//! The scheduled calendar sync (template: `CalendarSyncFunction`, every 30 minutes): fetches
//! every due import's feed and brings its imported nights in step with it. A feed that cannot be
//! fetched or read keeps the nights it had and records the error on the import.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::SyncState;
use crate::feeds::FeedFetcher;
use crate::ical;
use crate::store::{self, calendar_sync as cs};

/// How often an import is fetched.
pub const INTERVAL: SignedDuration = SignedDuration::from_mins(30);
/// Imports per run (the next run takes the rest: the oldest due first).
const PER_RUN: u32 = 100;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub synced: u32,
    pub failed: u32,
    pub nights_added: usize,
    pub nights_removed: usize,
    pub conflicts: usize,
}

pub async fn run(st: &SyncState) -> anyhow::Result<Report> {
    let now = st.clock.now();
    let mut report = Report::default();
    for import in cs::due_imports(&st.table, now, PER_RUN).await? {
        let result = sync_one(st, &st.fetcher, &import, now, &mut report).await?;
        let outcome = cs::Outcome { fetched_at: now, next_due: now + INTERVAL, result };
        match &outcome.result {
            Ok(_) => report.synced += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(import_id = %import.import_id, error = %e, "calendar import failed");
            }
        }
        if !cs::record(&st.table, &import, &outcome).await? {
            // Deleted while it ran: free what this run may have written.
            free_nights(&st.table, &import.listing_id, &import.import_id, now).await?;
        }
    }
    Ok(report)
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
