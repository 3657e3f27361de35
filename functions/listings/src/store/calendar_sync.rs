//! Storage of calendar sync: the export feed's token, the calendar imports (with their sparse
//! "due" index entry on GSI3) and the imported NIGHT items with the search item's dates.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use shared::Table;
use shared::keys::{Key, PK, SK};
use shared::listing;
use shared::night::{self, Night, NightKind};
use shared::table::{Expr, Page, Query, TableError, TransactError, Transaction};

pub const FEED_SK: &str = "CALENDAR_FEED";
pub const IMPORT_SK_PREFIX: &str = "CALIMPORT#";
pub const IMPORT_COUNT_SK: &str = "CALIMPORTS";
/// The GSI3 partition of every import, sorted by when it is due.
pub const DUE_PARTITION: &str = "CALSYNC";
pub const DUE_INDEX: &str = "GSI3";
/// Imports per listing.
pub const MAX_IMPORTS: i64 = 5;
/// Nights per transaction (two items each: the night and nothing else; the search item once).
const NIGHTS_PER_TRANSACTION: usize = 50;

/// `LISTING#<id>` / `CALENDAR_FEED`: the secret of the listing's export URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedToken {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub listing_id: String,
    pub token: String,
    pub rotated_at: String,
}

/// One night of an import's feed over a Roost booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub date: String,
    pub booking_id: String,
}

/// `LISTING#<id>` / `CALIMPORT#<cim id>`; GSI3 `CALSYNC` / `<due instant>#<cim id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalendarImport {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    #[serde(rename = "GSI3PK")]
    pub gsi3pk: String,
    #[serde(rename = "GSI3SK")]
    pub gsi3sk: String,
    pub import_id: String,
    pub listing_id: String,
    pub host_id: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetched_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub night_count: u32,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
}

pub fn import_key(listing_id: &str, import_id: &str) -> Key {
    Key::new(listing::pk(listing_id), format!("{IMPORT_SK_PREFIX}{import_id}"))
}

fn due_sort_key(due: Timestamp, import_id: &str) -> String {
    format!("{}#{import_id}", night::instant(due))
}

impl CalendarImport {
    pub fn new(listing_id: &str, host_id: &str, url: String, name: Option<String>, now: Timestamp) -> Self {
        let import_id = shared::ids::new_id_at("cim", now);
        let key = import_key(listing_id, &import_id);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "calendar_import".into(),
            gsi3pk: DUE_PARTITION.into(),
            gsi3sk: due_sort_key(now, &import_id),
            import_id,
            listing_id: listing_id.to_owned(),
            host_id: host_id.to_owned(),
            url,
            name,
            created_at: now.to_string(),
            last_fetched_at: None,
            last_synced_at: None,
            last_error: None,
            night_count: 0,
            conflicts: Vec::new(),
        }
    }
}

pub async fn feed_token(table: &Table, listing_id: &str) -> Result<Option<FeedToken>, TableError> {
    table.get(&Key::new(listing::pk(listing_id), FEED_SK)).await
}

pub async fn put_feed_token(table: &Table, listing_id: &str, token: &str, now: Timestamp) -> Result<(), TableError> {
    table
        .put(&FeedToken {
            pk: listing::pk(listing_id),
            sk: FEED_SK.into(),
            item_type: "calendar_feed".into(),
            listing_id: listing_id.to_owned(),
            token: token.to_owned(),
            rotated_at: now.to_string(),
        })
        .await
}

/// A listing's imports (at most `MAX_IMPORTS`): one strongly consistent Query.
pub async fn imports(table: &Table, listing_id: &str) -> Result<Vec<CalendarImport>, TableError> {
    let q = Query::begins_with(PK, listing::pk(listing_id), SK, IMPORT_SK_PREFIX).consistent();
    let page: Page<CalendarImport> = table.query(q).await?;
    Ok(page.items)
}

pub async fn get_import(
    table: &Table,
    listing_id: &str,
    import_id: &str,
) -> Result<Option<CalendarImport>, TableError> {
    table.get(&import_key(listing_id, import_id)).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImportItem {
    Import,
    Count,
    Listing,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the listing has its maximum of imports")]
    TooMany,
    #[error("the listing is not the caller's active listing")]
    ListingInactive,
    #[error("no such import")]
    NotFound,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// One TransactWriteItems: the import, the listing's import count (`< MAX_IMPORTS`, `ADD 1`) and
/// a ConditionCheck that the listing is the host's and active.
pub async fn create_import(table: &Table, import: &CalendarImport) -> Result<(), ImportError> {
    let mut tx = Transaction::new(table);
    tx.put(ImportItem::Import, import, Some(&Expr::not_exists()))?;
    let count = Key::new(listing::pk(&import.listing_id), IMPORT_COUNT_SK);
    let add = Expr::new("ADD #c :one").name("#c", "count").n(":one", 1);
    let below = Expr::new("attribute_not_exists(#c) OR #c < :max").name("#c", "count").n(":max", MAX_IMPORTS);
    tx.update(ImportItem::Count, &count, &add, Some(&below))?;
    let owner = Expr::new("#l_status = :l_active AND #l_host = :l_host")
        .name("#l_status", listing::STATUS_ATTR)
        .name("#l_host", "host_id")
        .s(":l_active", listing::ListingStatus::Active.as_str())
        .s(":l_host", &import.host_id);
    tx.check(ImportItem::Listing, &listing::key(&import.listing_id), &owner)?;
    tx.commit().await.map_err(|e| match e {
        TransactError::Conditions(failed) if failed.contains(&ImportItem::Listing) => ImportError::ListingInactive,
        TransactError::Conditions(failed) if failed.contains(&ImportItem::Count) => ImportError::TooMany,
        other => ImportError::Table(other.into()),
    })
}

/// One TransactWriteItems: the import's delete and the count's `ADD -1`; its nights are freed
/// afterwards (`free_nights`).
pub async fn delete_import(table: &Table, listing_id: &str, import_id: &str) -> Result<(), ImportError> {
    let mut tx = Transaction::new(table);
    tx.delete(ImportItem::Import, &import_key(listing_id, import_id), Some(&Expr::exists()))?;
    let count = Key::new(listing::pk(listing_id), IMPORT_COUNT_SK);
    tx.update(ImportItem::Count, &count, &Expr::new("ADD #c :minus").name("#c", "count").n(":minus", -1), None)?;
    tx.commit().await.map_err(|e| match e {
        TransactError::Conditions(failed) if failed.contains(&ImportItem::Import) => ImportError::NotFound,
        other => ImportError::Table(other.into()),
    })
}

/// Imports due at `now` (GSI3 `CALSYNC`, `GSI3SK <= <now>#~`), oldest first, at most `limit`.
pub async fn due_imports(table: &Table, now: Timestamp, limit: u32) -> Result<Vec<CalendarImport>, TableError> {
    let q = Query::due(DUE_INDEX, DUE_PARTITION, now).limit(limit);
    let page: Page<CalendarImport> = table.query(q).await?;
    Ok(page.items)
}

/// What a run recorded on the import: its fetch and, on success, its nights and conflicts.
pub struct Outcome {
    pub fetched_at: Timestamp,
    pub next_due: Timestamp,
    /// `Ok((night count, conflicts))` or the error.
    pub result: Result<(u32, Vec<Conflict>), String>,
}

/// The items of `record`'s transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordItem {
    Import,
    Event,
}

/// Records `outcome` on the import, if it still exists (false: deleted meanwhile), in ONE
/// transaction with a `calendar.conflict` event per booking that this run found in conflict and
/// the import had not recorded yet (so the host is told once, not every 30 minutes).
pub async fn record(table: &Table, import: &CalendarImport, outcome: &Outcome) -> Result<bool, TableError> {
    let fetched = night::instant(outcome.fetched_at);
    let mut set = "SET #gsk = :gsk, last_fetched_at = :f".to_owned();
    let mut e = Expr::new("")
        .name("#gsk", "GSI3SK")
        .s(":gsk", due_sort_key(outcome.next_due, &import.import_id))
        .s(":f", fetched.clone());
    let mut tx = Transaction::new(table);
    match &outcome.result {
        Ok((count, conflicts)) => {
            set.push_str(", last_synced_at = :f, night_count = :n, conflicts = :c REMOVE last_error");
            e = e.n(":n", i64::from(*count)).ser(":c", conflicts)?;
            for event in new_conflicts(import, conflicts, outcome.fetched_at) {
                let put = shared::events::outbox_put(table, &event)
                    .map_err(|err| TableError::Unexpected(anyhow::anyhow!("calendar.conflict: {err}")))?;
                tx.push(RecordItem::Event, put);
            }
        }
        Err(message) => {
            set.push_str(", last_error = :e");
            e = e.s(":e", message.clone());
        }
    }
    e.expression = set;
    tx.update(RecordItem::Import, &import_key(&import.listing_id, &import.import_id), &e, Some(&Expr::exists()))?;
    match tx.commit().await {
        Ok(()) => Ok(true),
        Err(TransactError::Conditions(_)) => Ok(false),
        Err(TransactError::Table(err)) => Err(err),
    }
}

/// At most this many bookings are told about in one run (a transaction holds 100 items); more
/// new conflicts in one run than that are still on the import's list (`GET`), untold.
const MAX_CONFLICT_EVENTS: usize = 20;

/// One `calendar.conflict` per booking with a conflicting night the import had not recorded,
/// carrying all of the booking's conflicting dates of this run.
pub fn new_conflicts(
    import: &CalendarImport,
    found: &[Conflict],
    now: Timestamp,
) -> Vec<shared::events::Envelope<shared::events::CalendarConflict>> {
    let known: BTreeSet<(&str, &str)> =
        import.conflicts.iter().map(|c| (c.booking_id.as_str(), c.date.as_str())).collect();
    let mut by_booking: std::collections::BTreeMap<&str, Vec<Date>> = std::collections::BTreeMap::new();
    for c in found {
        if !known.contains(&(c.booking_id.as_str(), c.date.as_str())) {
            by_booking.entry(c.booking_id.as_str()).or_default();
        }
    }
    for c in found {
        if let (Some(dates), Ok(d)) = (by_booking.get_mut(c.booking_id.as_str()), c.date.parse::<Date>()) {
            dates.push(d);
        }
    }
    by_booking
        .into_iter()
        .take(MAX_CONFLICT_EVENTS)
        .map(|(booking_id, mut dates)| {
            dates.sort_unstable();
            dates.dedup();
            shared::events::Envelope::new(
                shared::events::CalendarConflict {
                    listing_id: import.listing_id.clone(),
                    import_id: import.import_id.clone(),
                    host_id: import.host_id.clone(),
                    booking_id: booking_id.to_owned(),
                    dates,
                },
                now,
            )
        })
        .collect()
}

/// The NIGHT items with `first <= date < end`.
pub async fn nights(table: &Table, listing_id: &str, first: Date, end: Date) -> Result<Vec<Night>, TableError> {
    let Some(last) = night::last_night(end) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page: Page<Night> = table.query(night::range_query(listing_id, first, last).start(start)).await?;
        out.extend(page.items);
        match page.last_key {
            Some(k) => start = Some(k),
            None => return Ok(out),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncItem {
    Night,
    SearchItem,
}

/// Adds imported nights on `dates` (each only while free) and the dates to the search item, in
/// transactions of 50 nights; a transaction that a booking raced (a night no longer free) is
/// retried night by night and the nights taken meanwhile are skipped. Returns the nights added.
pub async fn add_nights(
    table: &Table,
    listing_id: &str,
    import_id: &str,
    dates: &[Date],
    now: Timestamp,
) -> Result<Vec<Date>, TableError> {
    write_nights(
        table,
        listing_id,
        dates,
        |tx, d| {
            let n = Night { expires_at: expiry(*d), ..Night::imported(listing_id, *d, import_id, now) };
            tx.put(SyncItem::Night, &n, Some(&night::condition_free()))
        },
        true,
    )
    .await
}

/// Removes `import_id`'s nights on `dates` (each only while still its) and the dates from the
/// search item. Returns the nights removed.
pub async fn remove_nights(
    table: &Table,
    listing_id: &str,
    import_id: &str,
    dates: &[Date],
) -> Result<Vec<Date>, TableError> {
    write_nights(
        table,
        listing_id,
        dates,
        |tx, d| tx.delete(SyncItem::Night, &night::key(listing_id, *d), Some(&night::condition_imported_by(import_id))),
        false,
    )
    .await
}

/// TTL of an imported night: two days after it (past nights are never read as taken anyway).
fn expiry(d: Date) -> Option<i64> {
    d.checked_add(jiff::Span::new().days(2))
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

async fn write_nights<F>(
    table: &Table,
    listing_id: &str,
    dates: &[Date],
    night_op: F,
    add: bool,
) -> Result<Vec<Date>, TableError>
where
    F: Fn(&mut Transaction<'_, SyncItem>, &Date) -> Result<(), TableError>,
{
    let mut done = Vec::new();
    for chunk in dates.chunks(NIGHTS_PER_TRANSACTION) {
        match commit_nights(table, listing_id, chunk, &night_op, add).await? {
            true => done.extend_from_slice(chunk),
            // Raced: one night at a time, skipping the ones whose condition fails.
            false => {
                for d in chunk {
                    if commit_nights(table, listing_id, std::slice::from_ref(d), &night_op, add).await? {
                        done.push(*d);
                    }
                }
            }
        }
    }
    Ok(done)
}

/// One transaction: the nights' writes and the search item's dates. False when a night's
/// condition failed (nothing written).
async fn commit_nights<F>(
    table: &Table,
    listing_id: &str,
    dates: &[Date],
    night_op: &F,
    add: bool,
) -> Result<bool, TableError>
where
    F: Fn(&mut Transaction<'_, SyncItem>, &Date) -> Result<(), TableError>,
{
    let change = if add { listing::add_unavailable(dates) } else { listing::remove_unavailable(dates) };
    let Some(change) = change else { return Ok(true) };
    let mut tx = Transaction::new(table);
    for d in dates {
        night_op(&mut tx, d)?;
    }
    tx.update(
        SyncItem::SearchItem,
        &listing::search_key(listing_id),
        &change,
        Some(&listing::condition_search_item_exists()),
    )?;
    match tx.commit().await {
        Ok(()) => Ok(true),
        Err(TransactError::Conditions(failed)) if failed.contains(&SyncItem::Night) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What a feed's nights change: the nights to add (free now), to remove (this import's, no
/// longer in the feed), the conflicts (held or booked by a Roost booking), and the import's
/// night count once applied.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub add: Vec<Date>,
    pub remove: Vec<Date>,
    pub keep: usize,
    pub conflicts: Vec<Conflict>,
}

/// The plan for `import_id` from the feed's `wanted` nights and the listing's NIGHT items in the
/// same window. Nights blocked by the host or imported by another import stay as they are.
pub fn plan(import_id: &str, wanted: &BTreeSet<Date>, current: &[Night], now: Timestamp) -> Plan {
    let mut p = Plan::default();
    let mut seen = BTreeSet::new();
    for n in current {
        let Some(d) = n.civil_date() else { continue };
        seen.insert(d);
        let mine = n.kind == NightKind::Imported && n.import_id.as_deref() == Some(import_id);
        match (mine, wanted.contains(&d)) {
            (true, true) => p.keep += 1,
            (true, false) => p.remove.push(d),
            (false, true) => {
                if let (NightKind::Held | NightKind::Booked, Some(b)) = (n.kind, n.booking_id.as_deref())
                    && n.is_taken_at(now)
                {
                    p.conflicts.push(Conflict { date: d.to_string(), booking_id: b.to_owned() });
                }
            }
            (false, false) => {}
        }
    }
    p.add = wanted.iter().filter(|d| !seen.contains(d)).copied().collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_is_told_once_per_booking_with_all_its_dates() {
        let now: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let c = |date: &str, booking_id: &str| Conflict { date: date.into(), booking_id: booking_id.into() };
        let mut import = CalendarImport::new("lst_1", "host-1", "https://example.com/a.ics".into(), None, now);
        let found = [c("2027-02-04", "bkg_1"), c("2027-02-03", "bkg_1"), c("2027-02-10", "bkg_2")];
        let events = new_conflicts(&import, &found, now);
        let told: Vec<_> = events.iter().map(|e| (e.data.booking_id.as_str(), e.data.dates.len())).collect();
        assert_eq!(told, [("bkg_1", 2), ("bkg_2", 1)]);
        assert_eq!(events[0].data.dates[0].to_string(), "2027-02-03");
        assert_eq!(events[0].data.host_id, "host-1");
        // Recorded: the next run with the same conflicts tells nobody; a new night of bkg_2 does.
        import.conflicts = found.to_vec();
        assert!(new_conflicts(&import, &found, now).is_empty());
        let more = [found.to_vec(), vec![c("2027-02-11", "bkg_2")]].concat();
        let again = new_conflicts(&import, &more, now);
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].data.booking_id.as_str(), again[0].data.dates.len()), ("bkg_2", 2));
    }

    #[test]
    fn plans_add_free_nights_remove_dropped_ones_and_report_bookings() {
        let now: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let d = |s: &str| -> Date { s.parse().unwrap() };
        let mut booked = Night::blocked("l", d("2027-02-03"), now);
        booked.kind = NightKind::Booked;
        booked.booking_id = Some("bkg_1".into());
        let current = vec![
            Night::imported("l", d("2027-02-01"), "cim_1", now),
            Night::imported("l", d("2027-02-02"), "cim_1", now),
            booked,
            Night::blocked("l", d("2027-02-04"), now),
            Night::imported("l", d("2027-02-05"), "cim_2", now),
        ];
        let wanted: BTreeSet<Date> =
            ["2027-02-02", "2027-02-03", "2027-02-04", "2027-02-05", "2027-02-06"].iter().map(|s| d(s)).collect();
        let p = plan("cim_1", &wanted, &current, now);
        assert_eq!(p.add, [d("2027-02-06")]);
        assert_eq!(p.remove, [d("2027-02-01")]);
        assert_eq!(p.keep, 1);
        assert_eq!(p.conflicts, [Conflict { date: "2027-02-03".into(), booking_id: "bkg_1".into() }]);
    }
}
