//! The payouts function's reads and writes. Every write to a payout item bumps its `version`,
//! conditioned on the version it was read with: two runs at once (a schedule overlapping a
//! manual invoke) cannot both act on one read.

use jiff::Timestamp;
use shared::night;
use shared::payout::{self, DUE_PARTITION, PayoutItem, PayoutStatus, due_sort_key};
use shared::table::{Expr, Page, Query, Table, TableError};

/// GSI3: payouts are indexed there while they have work.
pub const DUE_INDEX: &str = "GSI3";

/// Payouts due at `now`, oldest first: one Query on GSI3 (`PAYOUTS_DUE`, sort key up to now).
pub async fn due(table: &Table, now: Timestamp, limit: u32) -> Result<Vec<PayoutItem>, TableError> {
    let q = Query::due(DUE_INDEX, DUE_PARTITION, now).limit(limit);
    let page: Page<PayoutItem> = table.query(q).await?;
    Ok(page.items)
}

/// GetItem of a payout (consistent: the index may lag).
pub async fn payout(table: &Table, booking_id: &str) -> Result<Option<PayoutItem>, TableError> {
    table.get(&payout::key(booking_id)).await
}

/// One write of `p`: `set` (assignments, placeholders bound in `values`) and `remove`
/// (attributes), plus `version + 1` and `updated_at`, on condition that `version` is still the
/// one read.
async fn write(
    table: &Table,
    p: &PayoutItem,
    set: &str,
    remove: &[&str],
    values: Expr,
    now: Timestamp,
) -> Result<(), TableError> {
    let mut expression = format!("SET {set}, #version = :version, #updated = :now");
    if !remove.is_empty() {
        expression = format!("{expression} REMOVE {}", remove.join(", "));
    }
    let update = Expr { expression, ..values }
        .name("#version", "version")
        .name("#updated", "updated_at")
        .n(":version", i64::try_from(p.version + 1).unwrap_or(i64::MAX))
        .s(":now", night::instant(now));
    // Every payout item is written with its `version` (0 when new).
    let read = i64::try_from(p.version).unwrap_or(i64::MAX);
    let condition = Expr::new("#c_version = :c_version").name("#c_version", "version").n(":c_version", read);
    table.update(&payout::key(&p.booking_id), &update, Some(&condition)).await
}

/// Claims a transfer attempt of `amount` before Stripe is called (or takes over a claim left
/// by a run that stopped); answers the version the claim wrote.
pub async fn claim_transfer(table: &Table, p: &PayoutItem, amount: i64, now: Timestamp) -> Result<u64, TableError> {
    let values = Expr::new("").n(":amount", amount).s(":claimed", night::instant(now));
    write(table, p, "transfer_attempt = :amount, attempt_claimed_at = :claimed", &[], values, now).await?;
    Ok(p.version + 1)
}

/// The transfer went through: `paid` with its id and amount (the index entry stays: the next
/// step settles it, or reverses a refund that came meanwhile).
pub async fn record_transfer(
    table: &Table,
    p: &PayoutItem,
    transfer_id: &str,
    amount: i64,
    now: Timestamp,
) -> Result<(), TableError> {
    let values = Expr::new("")
        .name("#status", "status")
        .s(":paid", PayoutStatus::Paid.as_str())
        .s(":tid", transfer_id)
        .n(":amount", amount)
        .s(":paid_at", night::instant(now));
    let set = "#status = :paid, transfer_id = :tid, transferred = :amount, paid_at = :paid_at";
    write(table, p, set, &["transfer_attempt", "attempt_claimed_at", "last_error"], values, now).await
}

/// `amount` more of the transfer was reversed.
pub async fn record_reversal(table: &Table, p: &PayoutItem, amount: i64, now: Timestamp) -> Result<(), TableError> {
    let values = Expr::new("").n(":reversed", p.reversed + amount);
    write(table, p, "reversed = :reversed", &["last_error"], values, now).await
}

/// An attempt failed: counted, its code kept, tried again at `retry_at`. A refusal also moves
/// to the next idempotency key and forgets the attempt's amount (nothing was transferred).
pub async fn record_failure(
    table: &Table,
    p: &PayoutItem,
    code: &str,
    refused: bool,
    retry_at: Timestamp,
    now: Timestamp,
) -> Result<(), TableError> {
    let values = Expr::new("")
        .name("#status", "status")
        .s(":failed", PayoutStatus::Failed.as_str())
        .n(":failures", i64::from(p.failed_attempts + 1))
        .n(":refused", i64::from(p.refused_attempts + u32::from(refused)))
        .s(":code", code)
        .s(":pk", DUE_PARTITION)
        .s(":sk", due_sort_key(&night::instant(retry_at), &p.booking_id));
    let set = "#status = :failed, failed_attempts = :failures, refused_attempts = :refused, last_error = :code, \
               GSI3PK = :pk, GSI3SK = :sk";
    let remove: &[&str] =
        if refused && p.transfer_id.is_none() { &["transfer_attempt", "attempt_claimed_at"] } else { &[] };
    write(table, p, set, remove, values, now).await
}

/// The host has no account that can receive: waits (indexed again at `retry_at`).
pub async fn wait_for_account(
    table: &Table,
    p: &PayoutItem,
    retry_at: Timestamp,
    now: Timestamp,
) -> Result<(), TableError> {
    let values = Expr::new("")
        .name("#status", "status")
        .s(":waiting", PayoutStatus::WaitingForAccount.as_str())
        .s(":sk", due_sort_key(&night::instant(retry_at), &p.booking_id));
    write(table, p, "#status = :waiting, GSI3SK = :sk", &[], values, now).await
}

/// Done: `status` recorded, out of the due index.
pub async fn settle(table: &Table, p: &PayoutItem, status: PayoutStatus, now: Timestamp) -> Result<(), TableError> {
    let values = Expr::new("").name("#status", "status").s(":status", status.as_str());
    write(table, p, "#status = :status", &["GSI3PK", "GSI3SK"], values, now).await
}
