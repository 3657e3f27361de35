//! The state of the e-mail that goes with an inbox item, and its rules. The inbox item is the
//! dedupe record of the notification; its `email` map says whether the e-mail is still to send:
//!
//! ```text
//!   (new item) --claim--> sending --SES accepted--> sent
//!                            |  ^
//!              SES refused   |  | a later delivery claims it (pending, or a claim that expired)
//!                            v  |
//!                          pending
//!   (new item, no address) --> skipped
//! ```
//!
//! A delivery sends only under its own claim: it moved the state to `sending` with its claim
//! id, and every move is a compare-and-swap on `rev` (storage compares, these functions decide).
//! A claim lasts until the claimer's invocation deadline plus [`CLAIM_MARGIN`]: after that the
//! claimer cannot be sending any more (Lambda ends the invocation), so a later delivery may
//! take the e-mail over. The one way an e-mail goes twice: SES accepted it and the claimer died
//! (or lost SES's answer) before marking it `sent`; the redelivery then sends again. Roost
//! chooses at-least-once for e-mail (docs/events.md, "Notifications").

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How long a claim outlives its invocation's deadline: a request already on the wire when the
/// invocation ends may still reach SES. Must stay well under the queue's visibility timeout
/// (60 s) minus the function timeout (10 s), so a redelivery finds an abandoned claim expired.
pub const CLAIM_MARGIN: SignedDuration = SignedDuration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// To send; no delivery holds it.
    Pending,
    /// A delivery claimed it (until `claimed_until`) and may be sending it.
    Sending,
    /// SES accepted it (`message_id`, `sent_at`).
    Sent,
    /// No e-mail is due (the recipient has no address).
    Skipped,
}

/// The `email` map of an inbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailState {
    pub status: EmailStatus,
    /// Bumped by every change; storage swaps a state only if `rev` is still the one read.
    pub rev: u32,
    /// Claims taken so far (1 after the first delivery): more than one means a retry.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<Timestamp>,
    /// SES's message id, once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

/// One delivery's right to send: its id and until when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub id: String,
    pub until: Timestamp,
}

impl Claim {
    /// A new claim for an invocation with `remaining` time left at `now`.
    pub fn new(now: Timestamp, remaining: std::time::Duration) -> Self {
        let remaining = SignedDuration::try_from(remaining).unwrap_or(SignedDuration::ZERO);
        let until = now.checked_add(remaining).and_then(|t| t.checked_add(CLAIM_MARGIN)).unwrap_or(now);
        Self { id: shared::ids::new_id("clm"), until }
    }

    /// A claim with a new id, lasting as long: one per message, so two messages of a batch
    /// (duplicates of one event) never pass for each other.
    pub fn for_message(&self) -> Self {
        Self { id: shared::ids::new_id("clm"), until: self.until }
    }
}

/// What a delivery does about an item's e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Claim it and send it.
    Send,
    /// Nothing: sent, skipped, or handled before e-mail states existed.
    Done,
    /// Another delivery holds a live claim: retry after it expires.
    Busy { until: Timestamp },
    /// The live claim is this delivery's own: a write of ours that landed though its answer was
    /// lost (the SDK retried it and the retry's condition failed). Send under it.
    Ours,
}

/// The step for an item whose e-mail state is `state` (`None`: an item written before e-mail
/// states were recorded; the code of that time sent the e-mail or removed the item, so there
/// is nothing to do); `claim` is the deciding delivery's own.
pub fn step(state: Option<&EmailState>, now: Timestamp, claim: &Claim) -> Step {
    let Some(state) = state else { return Step::Done };
    match state.status {
        EmailStatus::Pending => Step::Send,
        EmailStatus::Sending => match state.claimed_until {
            Some(until) if until > now && state.claim_id.as_deref() == Some(claim.id.as_str()) => Step::Ours,
            Some(until) if until > now => Step::Busy { until },
            _ => Step::Send,
        },
        EmailStatus::Sent | EmailStatus::Skipped => Step::Done,
    }
}

impl EmailState {
    /// A new item's e-mail, claimed by the delivery writing the item.
    pub fn first_claim(claim: &Claim) -> Self {
        Self {
            status: EmailStatus::Sending,
            rev: 0,
            attempts: 1,
            claim_id: Some(claim.id.clone()),
            claimed_until: Some(claim.until),
            message_id: None,
            sent_at: None,
        }
    }

    /// A new item for a recipient with no address.
    pub fn nothing_due() -> Self {
        Self {
            status: EmailStatus::Skipped,
            rev: 0,
            attempts: 0,
            claim_id: None,
            claimed_until: None,
            message_id: None,
            sent_at: None,
        }
    }

    fn next(&self, status: EmailStatus) -> Self {
        Self { status, rev: self.rev + 1, claim_id: None, claimed_until: None, ..self.clone() }
    }

    /// Taken over by a later delivery (only when [`step`] says `Send`).
    pub fn claimed(&self, claim: &Claim) -> Self {
        Self {
            attempts: self.attempts + 1,
            claim_id: Some(claim.id.clone()),
            claimed_until: Some(claim.until),
            ..self.next(EmailStatus::Sending)
        }
    }

    /// SES refused: back to `pending` for the next delivery.
    pub fn released(&self) -> Self {
        self.next(EmailStatus::Pending)
    }

    /// SES accepted it.
    pub fn sent(&self, message_id: &str, at: Timestamp) -> Self {
        Self { message_id: Some(message_id.to_owned()), sent_at: Some(at), ..self.next(EmailStatus::Sent) }
    }

    /// The recipient has no address any more: nothing will be sent.
    pub fn skipped(&self) -> Self {
        self.next(EmailStatus::Skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn claim(until: &str) -> Claim {
        Claim { id: "clm_1".into(), until: at(until) }
    }

    #[test]
    fn a_claim_lasts_the_invocation_and_the_margin() {
        let c = Claim::new(at("2026-11-26T10:00:00Z"), std::time::Duration::from_secs(10));
        assert_eq!(c.until, at("2026-11-26T10:00:15Z"));
        assert!(c.id.starts_with("clm_"));
    }

    #[test]
    fn only_pending_and_abandoned_claims_are_sent() {
        let now = at("2026-11-26T10:00:00Z");
        let other = Claim { id: "clm_other".into(), until: at("2026-11-26T10:00:15Z") };
        let live = EmailState::first_claim(&claim("2026-11-26T10:00:05Z"));
        assert_eq!(step(Some(&live), now, &other), Step::Busy { until: at("2026-11-26T10:00:05Z") });
        let expired = EmailState::first_claim(&claim("2026-11-26T09:59:59Z"));
        assert_eq!(step(Some(&expired), now, &other), Step::Send);
        assert_eq!(step(Some(&live.released()), now, &other), Step::Send);
        assert_eq!(step(Some(&live.sent("m-1", now)), now, &other), Step::Done);
        assert_eq!(step(Some(&EmailState::nothing_due()), now, &other), Step::Done);
        assert_eq!(step(None, now, &other), Step::Done, "an item from before e-mail states");
    }

    /// Review finding 4: a live claim with our own id is our write whose answer was lost.
    #[test]
    fn a_live_claim_of_our_own_is_ours_not_busy() {
        let now = at("2026-11-26T10:00:00Z");
        let ours = claim("2026-11-26T10:00:05Z");
        assert_eq!(step(Some(&EmailState::first_claim(&ours)), now, &ours), Step::Ours);
        let next = ours.for_message();
        assert_ne!(next.id, ours.id, "one claim id per message");
        assert_eq!(next.until, ours.until);
        assert_eq!(step(Some(&EmailState::first_claim(&ours)), now, &next), Step::Busy { until: ours.until });
    }

    #[test]
    fn every_change_bumps_the_revision_and_drops_the_claim_when_it_ends() {
        let now = at("2026-11-26T10:00:00Z");
        let first = EmailState::first_claim(&claim("2026-11-26T10:00:05Z"));
        let released = first.released();
        assert_eq!((released.status, released.rev, released.claim_id.as_deref()), (EmailStatus::Pending, 1, None));
        let again = released.claimed(&Claim { id: "clm_2".into(), until: at("2026-11-26T10:01:15Z") });
        assert_eq!((again.status, again.rev, again.attempts), (EmailStatus::Sending, 2, 2));
        assert_eq!(again.claim_id.as_deref(), Some("clm_2"));
        let sent = again.sent("m-1", now);
        assert_eq!((sent.status, sent.rev, sent.attempts), (EmailStatus::Sent, 3, 2));
        assert_eq!((sent.message_id.as_deref(), sent.sent_at, sent.claimed_until), (Some("m-1"), Some(now), None));
    }

    #[test]
    fn stored_as_a_small_map() {
        let s = EmailState::first_claim(&claim("2026-11-26T10:00:05Z"));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"status": "sending", "rev": 0, "attempts": 1, "claim_id": "clm_1",
                               "claimed_until": "2026-11-26T10:00:05Z"})
        );
    }
}
