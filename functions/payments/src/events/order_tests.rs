//! The refund invariant under every order (issue 13, item 1): a pure model of one paid booking
//! and its events, driven by the rules' own functions (`on_success`, `refund_amount`,
//! `check_refund`, `failure_applies`), with each handler's writes and their DynamoDB conditions
//! as `lib.rs` makes them. Every permutation of small event sets is run exhaustively (each
//! delivery may come more than once, and events whose cause has not happened yet are delivered
//! at the end), plus seeded random longer runs (the seed is printed; `ORDER_SEED=n` replays
//! one). After every step the money Stripe refunded never exceeds what the policy owes for the
//! booking, and at the end it is exactly that.

use std::collections::{BTreeSet, HashSet};

use crate::store::{BookingRecord, RefundReason, RefundRecord, RefundStatus};
use shared::booking::{BookingStatus, Cancellation, PaymentStatus};
use shared::events::CancelledBy;
use shared::money::{Currency, Money};

use crate::events::rules::{self, IntentObject, Success};

const TOTAL: i64 = 22_400;
const PI: &str = "pi_1";

fn eur(n: i64) -> Money {
    Money::new(n, Currency::EUR)
}

/// What can happen, in any order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Step {
    /// `payment_intent.succeeded` delivered with event id `n` (the same `n` twice: a redelivery
    /// of one event; another `n`: Stripe sending it again under a new id).
    Success(u8),
    /// `payment_intent.payment_failed` (from an earlier attempt) delivered.
    Failed(u8),
    /// The guest cancels through bookings (a percentage band of the amount paid, 0/50/100).
    Cancel,
    /// `booking.cancelled` delivered (again, when listed twice); waits for `Cancel`.
    CancelledEvent,
    /// The hold lapses unpaid and the sweep stores `expired` (only while pending, unpaid).
    Expire,
    /// `booking.expired` delivered; waits for `Expire`.
    ExpiredEvent,
    /// Stripe's `charge.refunded` for whatever was refunded so far (nothing: not sent).
    ChargeRefunded(u8),
}

#[derive(Debug, Clone)]
struct World {
    b: BookingRecord,
    receipts: HashSet<String>,
    /// Refunds localstripe holds for the intent: (metadata.booking_id, amount).
    stripe_refunds: Vec<(String, i64)>,
    percent: i64,
    /// Truth, from history (not from the booking's attributes): did the payment confirm the
    /// booking, and what did the cancellation owe then.
    confirmed_ever: bool,
    cancel_due: Option<i64>,
    expired: bool,
    /// Events whose cause happened: (step, event id).
    cancelled_event: Option<(String, Money)>,
    expired_event: Option<String>,
}

fn new_booking() -> BookingRecord {
    crate::store::test_support::booking("pending_payment", "processing", Some(PI))
}

fn intent() -> IntentObject {
    IntentObject {
        id: PI.into(),
        amount: TOTAL,
        currency: "eur".into(),
        status: Some("succeeded".into()),
        metadata: [("booking_id".to_owned(), "bkg_1".to_owned())].into(),
        last_payment_error: None,
    }
}

/// A message failed (the queue delivers it again later).
#[derive(Debug)]
struct Retry;

impl World {
    fn new(percent: i64) -> Self {
        Self {
            b: new_booking(),
            receipts: HashSet::new(),
            stripe_refunds: Vec::new(),
            percent,
            confirmed_ever: false,
            cancel_due: None,
            expired: false,
            cancelled_event: None,
            expired_event: None,
        }
    }

    fn refunded(&self) -> i64 {
        self.stripe_refunds.iter().map(|(_, a)| a).sum()
    }

    /// What the policy owes for this booking, by its history.
    fn owed(&self) -> i64 {
        if self.confirmed_ever { self.cancel_due.unwrap_or(0) } else { TOTAL }
    }

    fn receipt(&mut self, id: &str) {
        self.receipts.insert(id.to_owned());
    }

    // ---- bookings' side (HTTP and the sweep) -------------------------------------------------

    fn cancel(&mut self) {
        // bookings cancels a pending (live hold) or confirmed booking; refund_due is a
        // percentage of what is recorded as paid.
        if !matches!(self.b.item.status, BookingStatus::PendingPayment | BookingStatus::Confirmed) || self.expired {
            return;
        }
        let paid = self.b.amount_paid.map_or(0, |m| m.amount);
        let due = eur(paid * self.percent / 100);
        self.b.item.status = BookingStatus::Cancelled;
        self.b.item.cancellation =
            Some(Cancellation { by: CancelledBy::Guest, at: "t".into(), reason: None, refund_due: due });
        if self.confirmed_ever {
            self.cancel_due = Some(due.amount);
        }
        self.cancelled_event = Some(("evt_cancelled".into(), due));
    }

    fn expire(&mut self) {
        if self.b.item.status == BookingStatus::PendingPayment && self.b.amount_paid.is_none() {
            self.b.item.status = BookingStatus::Expired;
            self.expired = true;
            self.expired_event = Some("evt_expired".into());
        }
    }

    // ---- payment-events' handlers, as lib.rs writes ----------------------------------------

    fn on_success(&mut self, id: &str) -> Result<(), Retry> {
        if self.receipts.contains(id) {
            return Ok(());
        }
        let i = intent();
        match rules::on_success(&self.b, &i) {
            Success::Stray(_) => panic!("the model has one matching intent"),
            Success::RecordCapture => panic!("the model books instantly"),
            Success::Recorded => self.resume_or_ack(id),
            Success::NotConfirmable => self.refund(id, eur(TOTAL), Some(eur(TOTAL)), RefundReason::NotConfirmable),
            Success::Confirm => {
                // confirm: receipt + booking (pending, this intent, no refund) + nights held.
                let nights_held = !self.expired;
                if self.b.item.status == BookingStatus::PendingPayment && self.b.refund.is_none() && nights_held {
                    self.b.item.status = BookingStatus::Confirmed;
                    self.b.item.payment.status = PaymentStatus::Succeeded;
                    self.b.amount_paid = Some(eur(TOTAL));
                    self.b.accepted_at = Some("t".into());
                    self.confirmed_ever = true;
                    self.receipt(id);
                    return Ok(());
                }
                match rules::on_success(&self.b, &i) {
                    Success::Recorded => self.resume_or_ack(id),
                    _ => self.refund(id, eur(TOTAL), Some(eur(TOTAL)), RefundReason::NotConfirmable),
                }
            }
        }
    }

    fn resume_or_ack(&mut self, id: &str) -> Result<(), Retry> {
        match &self.b.refund {
            Some(r) if r.status != RefundStatus::Succeeded => self.drive(id),
            _ => {
                self.receipt(id);
                Ok(())
            }
        }
    }

    fn on_failed(&mut self, id: &str) -> Result<(), Retry> {
        if self.receipts.contains(id) {
            return Ok(());
        }
        if rules::failure_applies(&self.b, &intent()) {
            self.b.item.payment.status = PaymentStatus::Failed;
        }
        self.receipt(id);
        Ok(())
    }

    fn on_cancelled(&mut self, id: &str, refund_due: Money) -> Result<(), Retry> {
        if self.receipts.contains(id) {
            return Ok(());
        }
        match rules::refund_amount(refund_due, self.b.amount_paid).expect("same currency") {
            Some(amount) => self.refund(id, amount, None, RefundReason::Cancelled),
            None => {
                self.receipt(id);
                Ok(())
            }
        }
    }

    fn on_charge_refunded(&mut self, id: &str) -> Result<(), Retry> {
        if self.receipts.contains(id) {
            return Ok(());
        }
        let refunded = self.refunded();
        match self.b.refund.clone() {
            Some(r) if r.status != RefundStatus::Succeeded && refunded >= r.amount => self.refund_succeeded(id),
            _ => {
                self.receipt(id);
                Ok(())
            }
        }
    }

    fn refund(&mut self, id: &str, amount: Money, paid: Option<Money>, reason: RefundReason) -> Result<(), Retry> {
        if self.b.refund.is_none() {
            // record_pending's condition.
            let allowed = match reason {
                RefundReason::NotConfirmable => {
                    self.b.accepted_at.is_none()
                        && !matches!(self.b.item.status, BookingStatus::Confirmed | BookingStatus::Completed)
                }
                RefundReason::Cancelled => self.b.item.status == BookingStatus::Cancelled,
            };
            if !allowed {
                return Err(Retry);
            }
            self.b.refund = Some(RefundRecord {
                amount: amount.amount,
                currency: amount.currency,
                status: RefundStatus::Pending,
                reason: Some(reason),
                refund_id: None,
                requested_at: None,
                succeeded_at: None,
                failure_reason: None,
                failed_at: None,
            });
            if let Some(paid) = paid {
                self.b.amount_paid = Some(paid);
                self.b.item.payment.status = PaymentStatus::Succeeded;
            }
        }
        self.drive(id)
    }

    /// drive_refund + refund_at_stripe: the invariant, then adopt or create, then record.
    fn drive(&mut self, id: &str) -> Result<(), Retry> {
        let r = self.b.refund.clone().expect("a refund to drive");
        if r.status == RefundStatus::Succeeded {
            self.receipt(id);
            return Ok(());
        }
        let amount = rules::check_refund(&self.b).map_err(|_| Retry)?;
        if !self.stripe_refunds.iter().any(|(tag, _)| tag == "bkg_1") {
            self.stripe_refunds.push(("bkg_1".into(), amount.amount));
        }
        self.refund_succeeded(id)
    }

    fn refund_succeeded(&mut self, id: &str) -> Result<(), Retry> {
        if let Some(r) = &mut self.b.refund
            && matches!(r.status, RefundStatus::Pending | RefundStatus::Failed)
        {
            r.status = RefundStatus::Succeeded;
        }
        self.receipt(id);
        Ok(())
    }

    /// Applies one step; `Some(step)` when it must come again later (not yet possible, or failed).
    fn apply(&mut self, step: Step) -> Option<Step> {
        let outcome = match step {
            Step::Success(n) => self.on_success(&format!("evt_s{n}")),
            Step::Failed(n) => self.on_failed(&format!("evt_f{n}")),
            Step::Cancel => {
                self.cancel();
                Ok(())
            }
            Step::CancelledEvent => match self.cancelled_event.clone() {
                Some((id, due)) => self.on_cancelled(&id, due),
                None => return self.will_exist(step),
            },
            Step::Expire => {
                self.expire();
                Ok(())
            }
            Step::ExpiredEvent => match self.expired_event.clone() {
                Some(id) => {
                    self.receipt(&id);
                    Ok(())
                }
                None => return self.will_exist(step),
            },
            Step::ChargeRefunded(n) => {
                if self.stripe_refunds.is_empty() {
                    return None;
                }
                self.on_charge_refunded(&format!("evt_r{n}"))
            }
        };
        outcome.err().map(|_| step)
    }

    /// An event whose cause has not happened: delivered later if its cause is still possible.
    fn will_exist(&self, step: Step) -> Option<Step> {
        Some(step)
    }
}

/// Runs `steps` in order, then delivers what is left (events whose cause came later, failed
/// messages) until nothing is; checks the invariant after every step and the outcome at the end.
fn run(steps: &[Step], percent: i64) -> Result<World, String> {
    let mut w = World::new(percent);
    let mut later = Vec::new();
    for &step in steps {
        if let Some(again) = w.apply(step) {
            later.push(again);
        }
        check_invariant(&w, steps)?;
    }
    // Every event a cause produced is delivered (once more, at least) after the rest.
    later.extend([Step::CancelledEvent, Step::ExpiredEvent]);
    for _round in 0..4 {
        let pending = std::mem::take(&mut later);
        for step in pending {
            if let Some(again) = w.apply(step) {
                later.push(again);
            }
            check_invariant(&w, steps)?;
        }
    }
    // Events whose cause never happened (a cancel refused, no expiry) are never sent.
    later.retain(|s| match s {
        Step::CancelledEvent => w.cancelled_event.is_some(),
        Step::ExpiredEvent => w.expired_event.is_some(),
        _ => true,
    });
    if !later.is_empty() {
        return Err(format!("{steps:?} (band {percent}%): messages still failing at the end: {later:?}"));
    }
    check_outcome(&w, steps)?;
    Ok(w)
}

fn check_invariant(w: &World, steps: &[Step]) -> Result<(), String> {
    let refunds = w.stripe_refunds.len();
    if refunds > 1 {
        return Err(format!("{steps:?} (band {}%): {refunds} refunds at Stripe", w.percent));
    }
    if w.refunded() > w.owed() {
        return Err(format!(
            "{steps:?} (band {}%): REFUNDED {} > OWED {} (confirmed: {}, due at cancel: {:?})",
            w.percent,
            w.refunded(),
            w.owed(),
            w.confirmed_ever,
            w.cancel_due
        ));
    }
    Ok(())
}

fn check_outcome(w: &World, steps: &[Step]) -> Result<(), String> {
    let has_success = steps.iter().any(|s| matches!(s, Step::Success(_)));
    if !has_success {
        return Ok(());
    }
    let want = w.owed();
    if w.refunded() != want {
        return Err(format!("{steps:?} (band {}%): refunded {} at the end, owed {want}", w.percent, w.refunded()));
    }
    let recorded = w.b.refund.as_ref().map(|r| (r.amount, r.status));
    let want_record = (want > 0).then_some((want, RefundStatus::Succeeded));
    if recorded != want_record {
        return Err(format!("{steps:?} (band {}%): refund record {recorded:?}, want {want_record:?}", w.percent));
    }
    let status = w.b.item.status;
    let consistent = match (w.confirmed_ever, w.cancel_due.is_some()) {
        (true, false) => status == BookingStatus::Confirmed,
        (true, true) => status == BookingStatus::Cancelled,
        (false, _) => matches!(status, BookingStatus::Cancelled | BookingStatus::Expired),
    };
    if !consistent || w.b.amount_paid != Some(eur(TOTAL)) {
        return Err(format!("{steps:?} (band {}%): final booking {status:?}, paid {:?}", w.percent, w.b.amount_paid));
    }
    Ok(())
}

/// Every distinct order of `items` (duplicates in `items` give each distinct order once).
fn permutations(items: &[Step]) -> BTreeSet<Vec<Step>> {
    fn go(rest: &mut Vec<Step>, current: &mut Vec<Step>, out: &mut BTreeSet<Vec<Step>>) {
        if rest.is_empty() {
            out.insert(current.clone());
            return;
        }
        for i in 0..rest.len() {
            let s = rest.remove(i);
            current.push(s);
            go(rest, current, out);
            current.pop();
            rest.insert(i, s);
        }
    }
    let mut out = BTreeSet::new();
    go(&mut items.to_vec(), &mut Vec::new(), &mut out);
    out
}

fn exhaustively(items: &[Step]) -> usize {
    let orders = permutations(items);
    for percent in [0, 50, 100] {
        for order in &orders {
            if let Err(e) = run(order, percent) {
                panic!("{e}");
            }
        }
    }
    orders.len() * 3
}

#[test]
fn the_bug_of_issue_13_a_success_again_after_a_cancellation_refunds_only_what_the_policy_owes() {
    use Step::*;
    for percent in [0, 50] {
        let w = run(&[Success(1), Cancel, CancelledEvent, Success(2)], percent).expect("invariant");
        assert_eq!(w.refunded(), TOTAL * percent / 100);
        // The redelivery before booking.cancelled is applied.
        let w = run(&[Success(1), Cancel, Success(2), CancelledEvent], percent).expect("invariant");
        assert_eq!(w.refunded(), TOTAL * percent / 100);
    }
}

#[test]
fn redeliveries_cancellations_and_refund_webhooks_in_every_order() {
    use Step::*;
    let runs =
        exhaustively(&[Success(1), Success(1), Success(2), Cancel, CancelledEvent, CancelledEvent, ChargeRefunded(1)]);
    assert!(runs > 1000, "{runs}");
}

#[test]
fn failures_expiry_and_cancellation_in_every_order() {
    use Step::*;
    let runs = exhaustively(&[
        Success(1),
        Success(2),
        Failed(1),
        Cancel,
        CancelledEvent,
        Expire,
        ExpiredEvent,
        ChargeRefunded(1),
    ]);
    assert!(runs > 10_000, "{runs}");
}

/// xorshift64*: enough to shuffle, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn seeded_random_long_histories() {
    use Step::*;
    let seed = std::env::var("ORDER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    println!("ORDER_SEED={seed}");
    let pool = [
        Success(1),
        Success(2),
        Success(3),
        Failed(1),
        Failed(2),
        Cancel,
        CancelledEvent,
        Expire,
        ExpiredEvent,
        ChargeRefunded(1),
        ChargeRefunded(2),
    ];
    let mut state = seed;
    for _ in 0..3_000 {
        let len = 4 + (next(&mut state) % 12) as usize;
        let steps: Vec<Step> = (0..len).map(|_| pool[(next(&mut state) % pool.len() as u64) as usize]).collect();
        let percent = [0, 50, 100][(next(&mut state) % 3) as usize];
        if let Err(e) = run(&steps, percent) {
            panic!("ORDER_SEED={seed}: {e}");
        }
    }
}
