//! One message at a time: the event's plan, the booking and profiles it needs, then for each
//! recipient the inbox item and its e-mail.

use jiff::Timestamp;
use serde_json::Value;
use shared::clock::Clock;
use shared::events::{Envelope, EventType, MessagePosted};
use shared::keys::Key;
use tracing::Instrument;

use crate::AppState;
use crate::mailer::{Email, Mailer};
use crate::rules::email::{Claim, EmailState, Step};
use crate::rules::recipients::{Plan, ProfileView, plan, profile_of};
use crate::rules::throttle;
use crate::store::{self, BookingView, ITEM_TYPE, InboxItem, InboxStore, inbox_key, notification_id};
use crate::templates::{self, Context, Kind, MessageContext};

/// Applies one message under `claim` (its own; it ends with the invocation).
/// SES calls must be answered by `send_by`.
pub async fn apply(st: &AppState, body: Value, claim: &Claim, send_by: tokio::time::Instant) -> anyhow::Result<()> {
    let envelope = Envelope::from_json(&body.to_string())?;
    let span = tracing::info_span!("domain_event", event_id = %envelope.id, event_type = %envelope.event_type);
    apply_envelope(st, envelope, claim, send_by).instrument(span).await
}

async fn apply_envelope(
    st: &AppState,
    envelope: Envelope,
    claim: &Claim,
    send_by: tokio::time::Instant,
) -> anyhow::Result<()> {
    if envelope.event_type == EventType::MessagePosted {
        return apply_message(st, &envelope, claim, send_by).await;
    }
    let Some(plan) = plan(&envelope)? else {
        tracing::warn!("event type not handled (filter policy drift?): acknowledged");
        return Ok(());
    };
    let Some(booking) = store::read_booking(&st.table, &plan.booking_id).await? else {
        tracing::warn!(booking_id = %plan.booking_id, "event for an unknown booking: acknowledged");
        return Ok(());
    };
    let profiles = store::read_profiles(&st.table, plan.recipients.iter().map(|(u, _)| u.as_str())).await?;
    let id = notification_id(&envelope.id);
    let now = st.clock.now();
    // Every recipient is tried, so one refused e-mail does not hold the others back; the
    // message fails if any did (the redelivery finds the others done).
    let mut failure = None;
    for (user_id, kind) in &plan.recipients {
        let profile = match profile_of(&profiles, user_id) {
            Ok(profile) => profile,
            Err(unreadable) => {
                // Not "no address": the e-mail is due, this delivery cannot build it. No inbox
                // item either; the message fails and ends in the DLQ if the profile stays so.
                tracing::warn!(user_id = %user_id, "profile unreadable: not notified, the message fails");
                failure.get_or_insert(anyhow::Error::new(unreadable).context(format!("notifying user {user_id}")));
                continue;
            }
        };
        let recipient = Recipient { user_id, kind: *kind, profile: profile.as_ref() };
        let (item, email) = compose(&envelope, &plan, &booking, &recipient, now);
        let user = tracing::info_span!("recipient", user_id = %user_id, notification_id = %id);
        match deliver(st.inbox.as_ref(), st.mailer.as_ref(), item, email, claim, send_by, st.clock.as_ref())
            .instrument(user)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(e.context(format!("notifying user {user_id}")));
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// A `message.posted`: the recipient's inbox item, and an e-mail unless one about this
/// conversation went to them in the last 15 minutes (`store::claim_message_email`). The
/// message's text is read from the conversation, and never logged.
async fn apply_message(
    st: &AppState,
    envelope: &Envelope,
    claim: &Claim,
    send_by: tokio::time::Instant,
) -> anyhow::Result<()> {
    let d: MessagePosted = envelope.clone().decode::<MessagePosted>()?.data;
    let Some((conversation, message)) = store::read_message(&st.table, &d.conversation_id, &d.message_id).await? else {
        tracing::warn!(conversation_id = %d.conversation_id, "event for an unknown message: acknowledged");
        return Ok(());
    };
    let profiles = store::read_profiles(&st.table, std::iter::once(d.recipient_id.as_str())).await?;
    let profile = profile_of(&profiles, &d.recipient_id)
        .map_err(|e| anyhow::Error::new(e).context(format!("notifying user {}", d.recipient_id)))?;
    let now = st.clock.now();
    let sender = if conversation.guest.user_id == d.sender_id { &conversation.guest } else { &conversation.host };
    let rendered = templates::render_message(&MessageContext {
        recipient_name: profile.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        sender_name: sender.name.clone(),
        listing_title: conversation.listing.title.clone(),
        text: message.text,
    });
    let address = profile.as_ref().map(|p| p.email.clone()).filter(|e| !e.is_empty());
    let due = match address {
        Some(_) => {
            let (at, cutoff) = (throttle::instant(now), throttle::cutoff(now));
            store::claim_message_email(&st.table, &d.recipient_id, &d.conversation_id, &envelope.id, &at, &cutoff)
                .await?
        }
        None => false,
    };
    let email = address.filter(|_| due).map(|to| Email {
        to,
        subject: rendered.title.clone(),
        text: rendered.text,
        html: rendered.html,
    });
    let id = notification_id(&envelope.id);
    let item = InboxItem {
        key: inbox_key(&d.recipient_id, &id),
        item_type: ITEM_TYPE.to_owned(),
        notification_id: id.clone(),
        user_id: d.recipient_id.clone(),
        event_id: envelope.id.clone(),
        notification_type: envelope.event_type.as_str().to_owned(),
        title: rendered.title,
        body: rendered.inbox_body,
        booking_id: None,
        created_at: now.to_string(),
        read: false,
        email: None,
    };
    let user = tracing::info_span!("recipient", user_id = %d.recipient_id, notification_id = %id, throttled = !due);
    deliver(st.inbox.as_ref(), st.mailer.as_ref(), item, email, claim, send_by, st.clock.as_ref())
        .instrument(user)
        .await
        .map(|_| ())
}

/// One person an event concerns: what they get, and their profile (`None`: they have none).
struct Recipient<'a> {
    user_id: &'a str,
    kind: Kind,
    profile: Option<&'a ProfileView>,
}

/// The inbox item for `recipient`, and its e-mail when they have an address.
fn compose(
    envelope: &Envelope,
    plan: &Plan,
    booking: &BookingView,
    recipient: &Recipient,
    now: Timestamp,
) -> (InboxItem, Option<Email>) {
    let profile = recipient.profile;
    let ctx = Context {
        recipient_name: profile.map(|p| p.name.clone()).unwrap_or_default(),
        listing_title: booking.listing_title.clone(),
        booking_id: plan.booking_id.clone(),
        check_in: Some(booking.check_in),
        check_out: Some(booking.check_out),
        amount: plan.amount,
        rating: plan.rating,
        host_message: booking.decline.as_ref().and_then(|d| d.message.clone()),
    };
    let rendered = templates::render(recipient.kind.for_booking(booking.booking_mode), &ctx);
    let email = profile.map(|p| p.email.as_str()).filter(|e| !e.is_empty()).map(|to| Email {
        to: to.to_owned(),
        subject: rendered.title.clone(),
        text: rendered.text,
        html: rendered.html,
    });
    let id = notification_id(&envelope.id);
    let item = InboxItem {
        key: inbox_key(recipient.user_id, &id),
        item_type: ITEM_TYPE.to_owned(),
        notification_id: id,
        user_id: recipient.user_id.to_owned(),
        event_id: envelope.id.clone(),
        notification_type: envelope.event_type.as_str().to_owned(),
        title: rendered.title,
        body: rendered.inbox_body,
        booking_id: Some(plan.booking_id.clone()),
        created_at: now.to_string(),
        read: false,
        email: None,
    };
    (item, email)
}

/// What [`deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The e-mail went (SES accepted it) under this delivery's claim.
    Sent,
    /// No e-mail is due: the inbox item only.
    NoEmailDue,
    /// A previous delivery did it all.
    AlreadyDone,
}

/// The inbox item, then its e-mail, for one recipient (`email`: `None` when they have no
/// address). Errors leave the e-mail `pending` (or under a claim that expires) for the
/// redelivery; nothing is deleted. SES must answer by `send_by`: an unanswered send counts as
/// refused (SES may have accepted it: the at-least-once window of docs/events.md).
pub async fn deliver(
    inbox: &dyn InboxStore,
    mailer: &dyn Mailer,
    item: InboxItem,
    email: Option<Email>,
    claim: &Claim,
    send_by: tokio::time::Instant,
    clock: &dyn Clock,
) -> anyhow::Result<Delivered> {
    let key = item.key.clone();
    let Some(state) = write_or_take_over(inbox, item, email.is_some(), claim, clock).await? else {
        return Ok(Delivered::AlreadyDone);
    };
    let Some(email) = email else {
        tracing::warn!("no profile e-mail: inbox item only");
        return Ok(Delivered::NoEmailDue);
    };
    let answer = match tokio::time::timeout_at(send_by, mailer.send(&email)).await {
        Ok(answer) => answer,
        Err(_) => Err(anyhow::anyhow!("SES SendEmail unanswered at the invocation's send cutoff")),
    };
    match answer {
        Err(e) => {
            release(inbox, &key, &state, claim).await;
            Err(e.context("sending the e-mail"))
        }
        Ok(message_id) => {
            // SES has it: counted even if recording it fails (a redelivery would resend it).
            shared::metrics::count(shared::metrics::Business::NotificationsSent);
            record_sent_or_log(inbox, &key, &state, &message_id, clock.now()).await;
            Ok(Delivered::Sent)
        }
    }
}

/// Writes the new inbox item with its e-mail claimed by this delivery (or `skipped` when no
/// e-mail is due); when the item exists already, takes its e-mail over if [`Step`] says so.
/// The e-mail state this delivery now holds, `None` when a previous delivery did it all.
async fn write_or_take_over(
    inbox: &dyn InboxStore,
    mut item: InboxItem,
    email_due: bool,
    claim: &Claim,
    clock: &dyn Clock,
) -> anyhow::Result<Option<EmailState>> {
    let state = if email_due { EmailState::first_claim(claim) } else { EmailState::nothing_due() };
    item.email = Some(state.clone());
    if inbox.put_new(&item).await? {
        return Ok(Some(state));
    }
    // The item exists: this event was delivered before (or is being delivered right now).
    let stored = inbox.get(&item.key).await?.ok_or_else(|| anyhow::anyhow!("the inbox item vanished"))?;
    let Some(current) = stored.email else {
        tracing::info!("already notified (item from before e-mail states): nothing sent");
        return Ok(None);
    };
    let ours = match crate::rules::email::step(Some(&current), clock.now(), claim) {
        Step::Done => {
            tracing::info!(email_status = ?current.status, "already notified (duplicate delivery): nothing sent");
            return Ok(None);
        }
        Step::Busy { until } => {
            anyhow::bail!("another delivery is sending this e-mail (its claim holds until {until}): retry later")
        }
        // Our own put landed though its answer was lost (an SDK retry of it then failed its
        // condition): the claim is ours already.
        Step::Ours => email_due,
        Step::Send => false,
    };
    if ours {
        return Ok(Some(current));
    }
    let next = if email_due { current.claimed(claim) } else { current.skipped() };
    if !inbox.swap_email(&item.key, current.rev, &next).await? {
        anyhow::bail!("another delivery changed this e-mail's state first: retry later");
    }
    Ok(Some(next))
}

/// SES refused: back to `pending` for the redelivery; if even that fails, the claim expires.
async fn release(inbox: &dyn InboxStore, key: &Key, state: &EmailState, claim: &Claim) {
    match inbox.swap_email(key, state.rev, &state.released()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("e-mail failed; its state had changed meanwhile"),
        Err(r) => tracing::warn!(
            error = %format!("{r:#}"),
            claimed_until = %claim.until,
            "e-mail failed and could not be set back to pending: a redelivery after the claim expires sends it"
        ),
    }
}

/// SES accepted it: records `sent`, and logs what happened when that could not be done.
async fn record_sent_or_log(inbox: &dyn InboxStore, key: &Key, state: &EmailState, message_id: &str, at: Timestamp) {
    let sent = state.sent(message_id, at);
    match record_sent(inbox, key, state.rev, &sent).await {
        Ok(true) => tracing::info!(ses_message_id = %message_id, "notified"),
        Ok(false) => tracing::warn!(
            ses_message_id = %message_id,
            "e-mail sent, but another delivery had taken it over: it may have gone twice"
        ),
        // SES has it: failing the message would send it again for certain. The item
        // stays `sending` until its claim expires; a redelivery (another recipient of
        // this event failed) or a replay then sends it again (docs/events.md).
        Err(e) => tracing::error!(
            ses_message_id = %message_id,
            error = %format!("{e:#}"),
            "e-mail sent but not recorded as sent: a redelivery or replay of this event would send it again"
        ),
    }
}

/// Writes to try to record `sent` before giving up: the e-mail is with SES, and an item left
/// `sending` is sent again by any redelivery after its claim expires. Repeating is safe: the
/// swap compares `rev`, so a write that did land makes the next try answer `false`, not resend.
const RECORD_SENT_TRIES: u32 = 3;
const RECORD_SENT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

async fn record_sent(inbox: &dyn InboxStore, key: &Key, rev: u32, sent: &EmailState) -> anyhow::Result<bool> {
    let mut tries = 1;
    loop {
        match inbox.swap_email(key, rev, sent).await {
            Err(e) if tries < RECORD_SENT_TRIES => {
                tracing::warn!(error = %format!("{e:#}"), tries, "recording the sent e-mail failed: trying again");
                tokio::time::sleep(RECORD_SENT_BACKOFF * tries).await;
                tries += 1;
            }
            // `false` after a failed try: that try did land (the answer was lost), unless
            // another delivery took the e-mail over meanwhile.
            Ok(false) if tries > 1 => {
                let landed = inbox.get(key).await?.and_then(|i| i.email).is_some_and(|e| e == *sent);
                return Ok(landed);
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use jiff::SignedDuration;
    use shared::clock::FixedClock;

    use super::*;
    use crate::BoxFuture;
    use crate::rules::email::EmailStatus;
    use crate::store::{InboxFuture, MemoryInbox};

    /// Records what it sent; refuses while `down`.
    #[derive(Default)]
    struct FakeMailer {
        sent: Mutex<Vec<Email>>,
        down: AtomicBool,
    }

    impl Mailer for FakeMailer {
        fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<String>> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    anyhow::bail!("SES SendEmail failed: ServiceUnavailable (HTTP 503)");
                }
                let mut sent = self.sent.lock().unwrap();
                sent.push(email.clone());
                Ok(format!("ses-{}", sent.len()))
            })
        }
    }

    impl FakeMailer {
        fn count(&self) -> usize {
            self.sent.lock().unwrap().len()
        }
    }

    /// The memory inbox, with e-mail state swaps that fail while `swaps_down` (DynamoDB down
    /// right after the item was written).
    #[derive(Default)]
    struct FlakyInbox {
        inner: MemoryInbox,
        swaps_down: AtomicBool,
        /// The next this many swaps fail (then they work again).
        swap_failures: AtomicUsize,
        /// `put_new` writes but answers "exists" (an SDK retry of a put whose answer was lost).
        put_answer_lost: AtomicBool,
    }

    impl InboxStore for FlakyInbox {
        fn put_new<'a>(&'a self, item: &'a InboxItem) -> InboxFuture<'a, bool> {
            Box::pin(async move {
                let written = self.inner.put_new(item).await?;
                Ok(written && !self.put_answer_lost.load(Ordering::SeqCst))
            })
        }
        fn get<'a>(&'a self, key: &'a Key) -> InboxFuture<'a, Option<InboxItem>> {
            self.inner.get(key)
        }
        fn swap_email<'a>(&'a self, key: &'a Key, expected_rev: u32, new: &'a EmailState) -> InboxFuture<'a, bool> {
            let failing_once =
                self.swap_failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            if self.swaps_down.load(Ordering::SeqCst) || failing_once {
                return Box::pin(async { anyhow::bail!("UpdateItem: service unavailable") });
            }
            self.inner.swap_email(key, expected_rev, new)
        }
    }

    impl FlakyInbox {
        fn email(&self) -> EmailState {
            let items = self.inner.items();
            assert_eq!(items.len(), 1, "one inbox item");
            items[0].email.clone().expect("an e-mail state")
        }
    }

    const TEN_SECONDS: std::time::Duration = std::time::Duration::from_secs(10);

    fn item() -> InboxItem {
        InboxItem {
            key: inbox_key("u-1", "ntf_1"),
            item_type: ITEM_TYPE.into(),
            notification_id: "ntf_1".into(),
            user_id: "u-1".into(),
            event_id: "evt_1".into(),
            notification_type: "booking.confirmed".into(),
            title: "Your booking is confirmed".into(),
            body: "Loft".into(),
            booking_id: Some("bkg_1".into()),
            created_at: "2026-11-26T10:00:00Z".into(),
            read: false,
            email: None,
        }
    }

    fn mail() -> Option<Email> {
        Some(Email { to: "ann@example.com".into(), subject: "s".into(), text: "t".into(), html: "h".into() })
    }

    struct World {
        inbox: FlakyInbox,
        mailer: FakeMailer,
        clock: FixedClock,
    }

    impl World {
        fn new() -> Self {
            Self {
                inbox: FlakyInbox::default(),
                mailer: FakeMailer::default(),
                clock: FixedClock::at("2026-11-26T10:00:00Z").unwrap(),
            }
        }

        /// One delivery of the event, as an invocation with ten seconds left would make it.
        async fn deliver(&self, email: Option<Email>) -> anyhow::Result<Delivered> {
            let claim = Claim::new(self.clock.now(), TEN_SECONDS);
            let send_by = tokio::time::Instant::now() + TEN_SECONDS;
            deliver(&self.inbox, &self.mailer, item(), email, &claim, send_by, &self.clock).await
        }
    }

    #[tokio::test]
    async fn a_refused_e_mail_stays_pending_and_fails_the_message() {
        let w = World::new();
        w.mailer.down.store(true, Ordering::SeqCst);
        assert!(w.deliver(mail()).await.is_err(), "the message fails");
        assert_eq!(w.mailer.count(), 0);
        let state = w.inbox.email();
        assert_eq!((state.status, state.attempts, state.claim_id), (EmailStatus::Pending, 1, None));
        assert_eq!(w.inbox.inner.items().len(), 1, "the inbox item stays");
    }

    #[tokio::test]
    async fn the_redelivery_sends_it_once_and_later_ones_send_nothing() {
        let counts = shared::testing::BusinessCounts::start();
        let w = World::new();
        w.mailer.down.store(true, Ordering::SeqCst);
        assert!(w.deliver(mail()).await.is_err());
        w.mailer.down.store(false, Ordering::SeqCst);
        w.clock.advance(SignedDuration::from_secs(60));
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        assert_eq!(w.mailer.count(), 1);
        let state = w.inbox.email();
        assert_eq!((state.status, state.attempts), (EmailStatus::Sent, 2));
        assert_eq!(state.message_id.as_deref(), Some("ses-1"));
        assert_eq!(state.sent_at, Some(w.clock.now()));
        for _ in 0..3 {
            assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::AlreadyDone);
        }
        assert_eq!(w.mailer.count(), 1, "sent once");
        let counted = counts.all();
        assert_eq!(counted, [("NotificationsSent".to_owned(), 1)], "counted once: not the failure, not the repeats");
    }

    #[tokio::test]
    async fn an_e_mail_already_sent_is_not_sent_again() {
        let w = World::new();
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        assert_eq!(w.inbox.email().status, EmailStatus::Sent);
        w.clock.advance(SignedDuration::from_hours(24));
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::AlreadyDone);
        assert_eq!(w.mailer.count(), 1);
    }

    /// The lost e-mail of issue 13 item 7: SES refuses and the state cannot be written either.
    /// Nothing is deleted; the claim expires and a redelivery sends it.
    #[tokio::test]
    async fn refused_and_not_released_the_e_mail_goes_once_the_claim_expires() {
        let w = World::new();
        w.mailer.down.store(true, Ordering::SeqCst);
        w.inbox.swaps_down.store(true, Ordering::SeqCst);
        assert!(w.deliver(mail()).await.is_err());
        let state = w.inbox.email();
        assert_eq!(state.status, EmailStatus::Sending, "the failed release left the claim");
        assert_eq!(state.claimed_until, Some("2026-11-26T10:00:15Z".parse().unwrap()));
        w.mailer.down.store(false, Ordering::SeqCst);
        w.inbox.swaps_down.store(false, Ordering::SeqCst);
        // A delivery while the claim holds (a concurrent duplicate) sends nothing and retries.
        w.clock.advance(SignedDuration::from_secs(5));
        let busy = w.deliver(mail()).await.unwrap_err();
        assert!(format!("{busy:#}").contains("retry later"), "{busy:#}");
        assert_eq!(w.mailer.count(), 0);
        // The redelivery after the visibility timeout takes the abandoned claim over.
        w.clock.advance(SignedDuration::from_secs(55));
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        assert_eq!(w.mailer.count(), 1);
        assert_eq!(w.inbox.email().status, EmailStatus::Sent);
    }

    /// SES accepted it but the state could not be written: the message is acknowledged (failing
    /// it would send again for certain) and the item keeps its claim.
    #[tokio::test]
    async fn accepted_but_not_recorded_is_acknowledged_without_a_second_send() {
        let w = World::new();
        w.inbox.swaps_down.store(true, Ordering::SeqCst);
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        assert_eq!(w.mailer.count(), 1);
        assert_eq!(w.inbox.email().status, EmailStatus::Sending);
    }

    /// Review finding 3: a `sent` write that fails once is tried again, so the item does not
    /// stay `sending` for a redelivery (another recipient of the event failed) to send again.
    #[tokio::test]
    async fn a_failed_sent_write_is_tried_again_and_a_redelivery_sends_nothing() {
        let w = World::new();
        w.inbox.swap_failures.store(2, Ordering::SeqCst);
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        let state = w.inbox.email();
        assert_eq!((state.status, state.message_id.as_deref()), (EmailStatus::Sent, Some("ses-1")));
        w.clock.advance(SignedDuration::from_secs(60));
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::AlreadyDone);
        assert_eq!(w.mailer.count(), 1, "sent once");
    }

    /// Review finding 5: a send SES does not answer by the cutoff is given up (back to
    /// `pending` for the redelivery) instead of holding the batch until Lambda kills it.
    #[tokio::test]
    async fn a_hung_send_is_given_up_at_the_cutoff() {
        struct HungMailer;
        impl Mailer for HungMailer {
            fn send<'a>(&'a self, _: &'a Email) -> BoxFuture<'a, anyhow::Result<String>> {
                Box::pin(std::future::pending())
            }
        }
        let w = World::new();
        let claim = Claim::new(w.clock.now(), TEN_SECONDS);
        let send_by = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        let delivery = deliver(&w.inbox, &HungMailer, item(), mail(), &claim, send_by, &w.clock);
        let outcome =
            tokio::time::timeout(std::time::Duration::from_secs(5), delivery).await.expect("given up in time");
        assert!(format!("{:#}", outcome.unwrap_err()).contains("unanswered"));
        assert_eq!(w.inbox.email().status, EmailStatus::Pending);
    }

    /// Review finding 4: our own put landed but its answer was lost; the item then carries our
    /// live claim, which is ours to send under, not another delivery's.
    #[tokio::test]
    async fn our_own_claim_seen_after_a_lost_answer_is_ours() {
        let w = World::new();
        w.inbox.put_answer_lost.store(true, Ordering::SeqCst);
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::Sent);
        assert_eq!(w.mailer.count(), 1);
        let state = w.inbox.email();
        assert_eq!((state.status, state.attempts), (EmailStatus::Sent, 1));
    }

    #[tokio::test]
    async fn no_address_no_e_mail_and_the_item_says_so() {
        let w = World::new();
        assert_eq!(w.deliver(None).await.unwrap(), Delivered::NoEmailDue);
        let state = w.inbox.email();
        assert_eq!((state.status, state.attempts), (EmailStatus::Skipped, 0));
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::AlreadyDone, "skipped stays skipped");
        assert_eq!(w.mailer.count(), 0);
    }

    #[tokio::test]
    async fn a_pending_e_mail_whose_address_is_gone_is_skipped() {
        let w = World::new();
        w.mailer.down.store(true, Ordering::SeqCst);
        assert!(w.deliver(mail()).await.is_err());
        assert_eq!(w.deliver(None).await.unwrap(), Delivered::NoEmailDue);
        assert_eq!(w.inbox.email().status, EmailStatus::Skipped);
    }

    #[tokio::test]
    async fn items_from_before_e_mail_states_send_nothing() {
        let w = World::new();
        assert!(w.inbox.put_new(&item()).await.unwrap());
        assert_eq!(w.deliver(mail()).await.unwrap(), Delivered::AlreadyDone);
        assert_eq!(w.mailer.count(), 0);
    }
}
