//! What happens to a booking after it is made: cancellation (by its guest, per the policy it was
//! sold under, or by its host) and the sweep that writes the statuses time changes (a lapsed
//! hold becomes `expired` and frees its nights; an ended stay becomes `completed`).
//!
//! Every change is one transaction with its nights, the listing's search availability and its
//! outbox event, so the event exists iff the change committed (docs/events.md).
//!
//! This is the store part of the skeleton for a booking's life after it is made (its reads and
//! transactions); the rules that decide a cancellation are `cancellation`, its answer `views`.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use shared::Table;
use shared::booking::{self, BookingItem, BookingStatus, Cancellation, Decline};
use shared::events::{
    self, BookingAccepted, BookingCancelled, BookingDeclined, BookingExpired, CancelledBy, Envelope, EventData,
};
use shared::listing;
use shared::night::{self, Night};
use shared::table::{Expr, Page, Query, TableError, TransactError, Transaction};

use crate::cancellation::RefundDecision;

/// The nights this booking still has, read with one Query on the stay's NIGHT range. A lapsed
/// hold may have been taken over by another booking: those nights are not ours to release.
async fn own_nights(table: &Table, b: &BookingItem) -> Result<Vec<jiff::civil::Date>, TableError> {
    let Some(last) = night::last_night(b.check_out) else { return Ok(Vec::new()) };
    let page: Page<Night> = table.query(night::range_query(&b.listing_id, b.check_in, last)).await?;
    Ok(page
        .items
        .iter()
        .filter(|n| n.booking_id.as_deref() == Some(b.booking_id.as_str()))
        .filter_map(Night::civil_date)
        .collect())
}

/// The items of a lifecycle transaction (a cancellation, an expiry, a completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LifecycleItem {
    /// The booking's move (condition: unchanged since read).
    Booking,
    /// A night released (condition: still this booking's).
    Night(jiff::civil::Date),
    /// The search item's availability (condition: it exists).
    SearchItem,
    /// The change's outbox event (a new id: never fails).
    Event,
}

/// Adds to `tx` the items that release `nights` of `b`: each deleted only while still this
/// booking's, and their dates removed from the listing's search availability.
fn release(
    tx: &mut Transaction<'_, LifecycleItem>,
    b: &BookingItem,
    nights: &[jiff::civil::Date],
) -> Result<(), TableError> {
    let ours =
        Expr::new("#n_booking = :n_booking").name("#n_booking", night::BOOKING_ID_ATTR).s(":n_booking", &b.booking_id);
    for d in nights {
        tx.delete(LifecycleItem::Night(*d), &night::key(&b.listing_id, *d), Some(&ours))?;
    }
    if let Some(remove) = listing::remove_unavailable(nights) {
        tx.update(
            LifecycleItem::SearchItem,
            &listing::search_key(&b.listing_id),
            &remove,
            Some(&listing::condition_search_item_exists()),
        )?;
    }
    Ok(())
}

/// `status` moves from what was read, and nothing else changed meanwhile (`updated_at`).
fn unchanged_since_read(b: &BookingItem) -> Expr {
    Expr::new("#b_status = :b_seen_status AND #b_updated = :b_seen_updated")
        .name("#b_status", booking::STATUS_ATTR)
        .name("#b_updated", "updated_at")
        .s(":b_seen_status", b.status.as_str())
        .s(":b_seen_updated", &b.updated_at)
}

/// Adds `event` to the outbox of `tx` and commits it: `done` (the booking as the transaction
/// leaves it) once it committed, `Changed` when a condition failed (read and decide again).
async fn commit_with_event<T: EventData>(
    table: &Table,
    mut tx: Transaction<'_, LifecycleItem>,
    event: &Envelope<T>,
    done: BookingItem,
) -> Result<BookingItem, ChangeError> {
    let put = events::outbox_put(table, event)
        .map_err(|e| TableError::Unexpected(anyhow::anyhow!("{}: {e}", T::TYPE.as_str())))?;
    tx.push(LifecycleItem::Event, put);
    match tx.commit().await {
        Ok(()) => Ok(done),
        Err(TransactError::Conditions(_)) => Err(ChangeError::Changed),
        Err(TransactError::Table(e)) => Err(e.into()),
    }
}

/// Why a change of a booking (a cancellation, an answer to a request) was not written.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The booking changed between read and write (a payment, a sweep, another cancel): decide again.
    #[error("the booking changed since it was read")]
    Changed,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Cancels `b` in ONE transaction (1 Query + 1 TransactWriteItems): the booking (status,
/// cancellation, sweep keys removed; condition: unchanged since read), its nights deleted and
/// released from search, and `booking.cancelled` with the refund due. At most 90 + 3 items.
/// Returns the booking as cancelled.
pub async fn cancel(
    table: &Table,
    b: &BookingItem,
    by: CancelledBy,
    decision: &RefundDecision,
    reason: Option<String>,
    now: Timestamp,
) -> Result<BookingItem, ChangeError> {
    let nights = own_nights(table, b).await?;
    let at = night::instant(now);
    let record = Cancellation { by, at: at.clone(), reason, refund_due: decision.refund };
    let update = Expr::new("SET #status = :cancelled, #cancellation = :c, #updated = :now REMOVE #spk, #ssk")
        .name("#status", booking::STATUS_ATTR)
        .name("#cancellation", "cancellation")
        .name("#updated", "updated_at")
        .name("#spk", booking::SWEEP_PK_ATTR)
        .name("#ssk", booking::SWEEP_SK_ATTR)
        .s(":cancelled", BookingStatus::Cancelled.as_str())
        .ser(":c", &record)?
        .s(":now", &at);
    let mut tx = Transaction::new(table);
    tx.update(LifecycleItem::Booking, &booking::key(&b.booking_id), &update, Some(&unchanged_since_read(b)))?;
    release(&mut tx, b, &nights)?;
    let event = Envelope::new(
        BookingCancelled {
            booking_id: b.booking_id.clone(),
            listing_id: b.listing_id.clone(),
            guest_id: b.guest.user_id.clone(),
            host_id: b.host.user_id.clone(),
            cancelled_by: by,
            refund_due: decision.refund,
        },
        now,
    );
    let mut done = b.clone();
    done.status = BookingStatus::Cancelled;
    done.cancellation = Some(record);
    done.updated_at = at;
    done.gsi3pk = None;
    done.gsi3sk = None;
    commit_with_event(table, tx, &event, done).await
}

/// Accepts the request `b` in ONE transaction (1 TransactWriteItems, at most 90 + 2 items):
/// the booking `requested` -> `confirmed` (condition: unchanged since read, its card
/// authorised and its hold not lapsed; found again by the sweep when its stay ends), every
/// night `held` by it -> `booked` (condition: still held by it), and `booking.accepted`, on
/// which payment-events captures the authorised payment. So the nights are booked, and the
/// capture ordered, exactly once however often the host accepts.
pub async fn accept(table: &Table, b: &BookingItem, now: Timestamp) -> Result<BookingItem, ChangeError> {
    let intent_id = b
        .payment
        .payment_intent_id
        .clone()
        .ok_or_else(|| TableError::Unexpected(anyhow::anyhow!("accepting {} without an intent", b.booking_id)))?;
    let at = night::instant(now);
    let (sweep_pk, sweep_sk) = booking::sweep_keys(&b.booking_id, &b.check_out_at);
    let update = Expr::new("SET #status = :confirmed, #p.#accepted = :now, #updated = :now, #spk = :spk, #ssk = :ssk")
        .name("#status", booking::STATUS_ATTR)
        .name("#p", "payment")
        .name("#accepted", "accepted_at")
        .name("#updated", "updated_at")
        .name("#spk", booking::SWEEP_PK_ATTR)
        .name("#ssk", booking::SWEEP_SK_ATTR)
        .s(":confirmed", BookingStatus::Confirmed.as_str())
        .s(":now", &at)
        .s(":spk", sweep_pk)
        .s(":ssk", sweep_sk);
    let answerable = unchanged_since_read(b).and(
        Expr::new("#c_p.#c_ps = :c_authorized AND #c_hold > :c_now")
            .name("#c_p", "payment")
            .name("#c_ps", "status")
            .name("#c_hold", booking::HOLD_EXPIRES_AT_ATTR)
            .s(":c_authorized", "authorized")
            .s(":c_now", &at),
    );
    let mut tx = Transaction::new(table);
    tx.update(LifecycleItem::Booking, &booking::key(&b.booking_id), &update, Some(&answerable))?;
    let book = night::book_update(now);
    let held = night::condition_held_by(&b.booking_id);
    for d in night::nights(b.check_in, b.check_out, shared::listing::MAX_STAY_NIGHTS as usize) {
        tx.update(LifecycleItem::Night(d), &night::key(&b.listing_id, d), &book, Some(&held))?;
    }
    let event = Envelope::new(
        BookingAccepted {
            booking_id: b.booking_id.clone(),
            listing_id: b.listing_id.clone(),
            guest_id: b.guest.user_id.clone(),
            host_id: b.host.user_id.clone(),
            check_in: b.check_in,
            check_out: b.check_out,
            amount: b.price.total_money(),
            payment_intent_id: intent_id,
        },
        now,
    );
    let mut done = b.clone();
    done.status = BookingStatus::Confirmed;
    done.updated_at = at;
    commit_with_event(table, tx, &event, done).await
}

/// Declines the request `b` in ONE transaction (1 Query + 1 TransactWriteItems): the booking
/// `requested` -> `declined` with the host's message (condition: unchanged since read), its
/// nights freed and released from search, and `booking.declined`, on which payment-events
/// cancels the card's authorisation.
pub async fn decline(
    table: &Table,
    b: &BookingItem,
    message: Option<String>,
    now: Timestamp,
) -> Result<BookingItem, ChangeError> {
    let nights = own_nights(table, b).await?;
    let at = night::instant(now);
    let record = Decline { at: at.clone(), message };
    let update = Expr::new("SET #status = :declined, #decline = :d, #updated = :now REMOVE #spk, #ssk")
        .name("#status", booking::STATUS_ATTR)
        .name("#decline", "decline")
        .name("#updated", "updated_at")
        .name("#spk", booking::SWEEP_PK_ATTR)
        .name("#ssk", booking::SWEEP_SK_ATTR)
        .s(":declined", BookingStatus::Declined.as_str())
        .ser(":d", &record)?
        .s(":now", &at);
    let mut tx = Transaction::new(table);
    tx.update(LifecycleItem::Booking, &booking::key(&b.booking_id), &update, Some(&unchanged_since_read(b)))?;
    release(&mut tx, b, &nights)?;
    let event = Envelope::new(
        BookingDeclined {
            booking_id: b.booking_id.clone(),
            listing_id: b.listing_id.clone(),
            guest_id: b.guest.user_id.clone(),
            host_id: b.host.user_id.clone(),
        },
        now,
    );
    let mut done = b.clone();
    done.status = BookingStatus::Declined;
    done.decline = Some(record);
    done.updated_at = at;
    done.gsi3pk = None;
    done.gsi3sk = None;
    commit_with_event(table, tx, &event, done).await
}

/// What one sweep did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    pub completed: usize,
    /// Changed meanwhile (paid, cancelled): left for the next run to judge again.
    pub skipped: usize,
}

/// How far back the sweep looks: a sweep that was down for days still catches up.
pub const SWEEP_LOOKBACK_DAYS: i64 = 7;

/// Writes the statuses time changed: lapsed holds become `expired` (nights freed, search
/// availability restored, `booking.expired` emitted) and ended stays `completed`. Finds them
/// with one Query per day of GSI3 (sparse: only bookings that time will change), never a Scan.
pub async fn sweep(table: &Table, now: Timestamp) -> Result<SweepReport, TableError> {
    let mut report = SweepReport::default();
    let due = format!("{}#~", night::instant(now));
    for back in (0..=SWEEP_LOOKBACK_DAYS).rev() {
        let day = (now - SignedDuration::from_hours(24 * back)).to_zoned(TimeZone::UTC).date();
        let mut start = None;
        loop {
            let condition = Expr::new("#pk = :pk AND #sk <= :due")
                .name("#pk", booking::SWEEP_PK_ATTR)
                .name("#sk", booking::SWEEP_SK_ATTR)
                .s(":pk", booking::sweep_partition(&day.to_string()))
                .s(":due", &due);
            let page: Page<BookingItem> =
                table.query(Query::new(condition).index(booking::SWEEP_INDEX).start(start)).await?;
            for b in &page.items {
                match sweep_one(table, b, now).await? {
                    Some(BookingStatus::Expired) => {
                        report.expired += 1;
                        shared::metrics::count(shared::metrics::Business::BookingsExpired);
                    }
                    Some(BookingStatus::Completed) => report.completed += 1,
                    _ => report.skipped += 1,
                }
            }
            start = page.last_key;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(report)
}

/// The booking's move to a status time decided (`expired`, `completed`): its sweep keys go, as
/// it needs no more attention; condition: unchanged since read.
fn settle(
    tx: &mut Transaction<'_, LifecycleItem>,
    b: &BookingItem,
    to: BookingStatus,
    at: &str,
) -> Result<(), TableError> {
    let update = Expr::new("SET #status = :to, #updated = :now REMOVE #spk, #ssk")
        .name("#status", booking::STATUS_ATTR)
        .name("#updated", "updated_at")
        .name("#spk", booking::SWEEP_PK_ATTR)
        .name("#ssk", booking::SWEEP_SK_ATTR)
        .s(":to", to.as_str())
        .s(":now", at);
    tx.update(LifecycleItem::Booking, &booking::key(&b.booking_id), &update, Some(&unchanged_since_read(b)))
}

async fn sweep_one(table: &Table, b: &BookingItem, now: Timestamp) -> Result<Option<BookingStatus>, TableError> {
    let to = b.effective_status(now);
    let at = night::instant(now);
    let mut tx = Transaction::new(table);
    match (b.status, to) {
        // A lapsed unpaid hold, or a request its host did not answer in time.
        (BookingStatus::PendingPayment | BookingStatus::Requested, BookingStatus::Expired) => {
            settle(&mut tx, b, to, &at)?;
            // Only nights this booking still holds: a lapsed hold may already be another's.
            let held: Vec<_> = own_nights(table, b).await?;
            release(&mut tx, b, &held)?;
            let event = Envelope::new(
                BookingExpired {
                    booking_id: b.booking_id.clone(),
                    listing_id: b.listing_id.clone(),
                    guest_id: b.guest.user_id.clone(),
                    host_id: b.host.user_id.clone(),
                },
                now,
            );
            tx.push(
                LifecycleItem::Event,
                events::outbox_put(table, &event).map_err(|e| anyhow::anyhow!("booking.expired: {e}"))?,
            );
        }
        (BookingStatus::Confirmed, BookingStatus::Completed) => {
            settle(&mut tx, b, to, &at)?;
        }
        // Not due yet, or already terminal with stale sweep keys: nothing to write.
        _ => return Ok(None),
    }
    match tx.commit().await {
        Ok(()) => Ok(Some(to)),
        Err(TransactError::Conditions(_)) => Ok(None),
        Err(TransactError::Table(e)) => Err(e),
    }
}
