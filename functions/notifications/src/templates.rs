//! The e-mail and inbox texts, one per notification kind. Everything a user typed (listing
//! titles, names) is HTML-escaped in the HTML part; the plain-text part carries it as is. Dates
//! read `Fri 4 Dec 2026`, amounts `EUR 243.00`.

use jiff::civil::Date;
use shared::money::Money;

/// What a notification is about (the inbox item's `type`: the event type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Booking confirmed, to the guest.
    ConfirmedGuest,
    /// Booking confirmed, to the host.
    ConfirmedHost,
    CancelledGuest,
    CancelledHost,
    ExpiredGuest,
    PaymentFailedGuest,
    RefundIssuedGuest,
    ReviewPostedHost,
    /// A request's card was authorised: the host is asked to answer.
    RequestedHost,
    AcceptedGuest,
    DeclinedGuest,
    /// An imported calendar marks nights a Roost booking holds.
    CalendarConflictHost,
    /// A request its host did not answer within 24 hours.
    RequestExpiredGuest,
}

impl Kind {
    /// The kind for a booking of `mode`: a request's expiry is told as such.
    pub fn for_booking(self, mode: shared::listing::BookingMode) -> Self {
        match (self, mode) {
            (Self::ExpiredGuest, shared::listing::BookingMode::Request) => Self::RequestExpiredGuest,
            (kind, _) => kind,
        }
    }
}

/// What the templates need; `None` fields are left out of the text.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub recipient_name: String,
    pub listing_title: String,
    pub booking_id: String,
    pub check_in: Option<Date>,
    pub check_out: Option<Date>,
    pub amount: Option<Money>,
    pub rating: Option<u8>,
    /// The host's message with a declined request (plain text; escaped in HTML).
    pub host_message: Option<String>,
}

/// A rendered notification: `title` and `text` go to the inbox, all of it to the e-mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub title: String,
    /// The inbox item's body: the message without greeting or sign-off.
    pub inbox_body: String,
    pub text: String,
    pub html: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-04` -> `Fri 4 Dec 2026`.
pub fn format_date(d: Date) -> String {
    d.strftime("%a %-d %b %Y").to_string()
}

/// `{24300, EUR}` -> `EUR 243.00`.
pub fn format_money(m: Money) -> String {
    format!("{} {}", m.currency, m.to_decimal_string())
}

fn stay(ctx: &Context) -> Option<String> {
    match (ctx.check_in, ctx.check_out) {
        (Some(a), Some(b)) => Some(format!("{} to {}", format_date(a), format_date(b))),
        _ => None,
    }
}

/// What `kind` says: its title, its sentence (`{L}` where the listing title goes, `{S}` the
/// stay's dates) and an extra line.
fn wording(kind: Kind, ctx: &Context) -> (String, &'static str, Option<String>) {
    let amount = ctx.amount.map(format_money);
    match kind {
        Kind::ConfirmedGuest => (
            "Your booking is confirmed".into(),
            "Your stay at {L}{S} is confirmed.",
            amount.map(|a| format!("Amount paid: {a}.")),
        ),
        Kind::ConfirmedHost => ("New confirmed booking".into(), "A guest booked {L}{S}.", None),
        Kind::CancelledGuest => (
            "Your booking was cancelled".into(),
            "Your booking at {L} was cancelled.",
            ctx.amount.filter(|m| m.amount > 0).map(|m| format!("Refund due: {}.", format_money(m))),
        ),
        Kind::CancelledHost => ("A booking was cancelled".into(), "A booking at {L} was cancelled.", None),
        Kind::ExpiredGuest => (
            "Your booking hold expired".into(),
            "Your hold on {L} expired before payment; the nights are free again.",
            None,
        ),
        Kind::PaymentFailedGuest => (
            "Your payment failed".into(),
            "The payment for your booking at {L} did not go through. Please try another card.",
            None,
        ),
        Kind::RefundIssuedGuest => (
            "Your refund is on its way".into(),
            "We refunded your booking at {L}.",
            amount.map(|a| format!("Amount refunded: {a}.")),
        ),
        Kind::ReviewPostedHost => (
            "New review of your listing".into(),
            "A guest reviewed {L}.",
            ctx.rating.map(|r| format!("Rating: {r} out of 5.")),
        ),
        Kind::RequestedHost => (
            "New request to book".into(),
            "A guest requests to stay at {L}{S}. Accept or decline it within 24 hours; their card is authorised.",
            amount.map(|a| format!("Total: {a}.")),
        ),
        Kind::AcceptedGuest => (
            "Your request was accepted".into(),
            "The host accepted your request to stay at {L}{S}: your booking is confirmed.",
            amount.map(|a| format!("Amount charged: {a}.")),
        ),
        Kind::CalendarConflictHost => (
            "A calendar you import clashes with a booking".into(),
            "A calendar you import marks nights of a Roost booking at {L}{S} as taken. The booking keeps its nights: close them on the other platform.",
            None,
        ),
        Kind::RequestExpiredGuest => (
            "Your request expired".into(),
            "Your request to stay at {L}{S} was not answered within 24 hours. Your card was not charged.",
            None,
        ),
        Kind::DeclinedGuest => (
            "Your request was declined".into(),
            "The host declined your request to stay at {L}{S}. Your card was not charged.",
            ctx.host_message.as_ref().map(|m| format!("The host wrote: {m}")),
        ),
    }
}

/// Renders `kind` for `ctx`.
pub fn render(kind: Kind, ctx: &Context) -> Rendered {
    let title_of = ctx.listing_title.as_str();
    let stay = stay(ctx).map(|s| format!(" ({s})")).unwrap_or_default();
    let (title, sentence, extra) = wording(kind, ctx);
    let text_sentence = sentence.replace("{L}", title_of).replace("{S}", &stay);
    let html_sentence = escape(sentence)
        .replace("{L}", &format!("<strong>{}</strong>", escape(title_of)))
        .replace("{S}", &escape(&stay));
    let greeting =
        if ctx.recipient_name.is_empty() { "Hello,".to_owned() } else { format!("Hello {},", ctx.recipient_name) };
    let reference = format!("Booking reference: {}", ctx.booking_id);

    let mut text = format!("{greeting}\n\n{text_sentence}\n");
    if let Some(extra) = &extra {
        text.push_str(&format!("{extra}\n"));
    }
    text.push_str(&format!("\n{reference}\n\nRoost\n"));

    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n<p>{g}</p>\n<p>{s}</p>\n",
        t = escape(&title),
        g = escape(&greeting),
        s = html_sentence
    );
    if let Some(extra) = &extra {
        html.push_str(&format!("<p>{}</p>\n", escape(extra)));
    }
    html.push_str(&format!("<p><small>{}</small></p>\n<p>Roost</p>\n</body></html>\n", escape(&reference)));

    // The inbox body: the sentence and the extra line, no greeting.
    let body = match extra {
        Some(extra) => format!("{text_sentence} {extra}"),
        None => text_sentence,
    };
    Rendered { title, inbox_body: body, text, html }
}

/// What a new message's texts need.
#[derive(Debug, Clone, Default)]
pub struct MessageContext {
    pub recipient_name: String,
    pub sender_name: String,
    pub listing_title: String,
    /// As stored (masked when it was): plain text, escaped in the HTML part.
    pub text: String,
}

/// Characters of a message in the inbox item.
const INBOX_PREVIEW_CHARS: usize = 140;

/// A new message, to the other participant: the whole text in the e-mail (escaped in HTML, its
/// line breaks kept), a preview in the inbox.
pub fn render_message(ctx: &MessageContext) -> Rendered {
    let title = format!("New message from {}", ctx.sender_name);
    let sentence = format!("{} wrote about {}:", ctx.sender_name, ctx.listing_title);
    let greeting =
        if ctx.recipient_name.is_empty() { "Hello,".to_owned() } else { format!("Hello {},", ctx.recipient_name) };
    let footer = "Reply in Roost: contact details are shared once a booking is confirmed.";
    let text = format!("{greeting}\n\n{sentence}\n\n{}\n\n{footer}\n\nRoost\n", ctx.text);
    let html_text = escape(&ctx.text).replace('\n', "<br>\n");
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n<p>{g}</p>\n<p>{s}</p>\n<blockquote>{m}</blockquote>\n<p><small>{f}</small></p>\n<p>Roost</p>\n</body></html>\n",
        t = escape(&title),
        g = escape(&greeting),
        s = escape(&sentence),
        m = html_text,
        f = escape(footer),
    );
    let mut preview: String = ctx.text.chars().take(INBOX_PREVIEW_CHARS).collect();
    if ctx.text.chars().count() > INBOX_PREVIEW_CHARS {
        preview.push('…');
    }
    Rendered { title, inbox_body: format!("{sentence} {preview}"), text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(title: &str) -> Context {
        Context {
            recipient_name: "Ana <b>".into(),
            listing_title: title.into(),
            booking_id: "bkg_1".into(),
            check_in: Some(jiff::civil::date(2026, 12, 4)),
            check_out: Some(jiff::civil::date(2026, 12, 7)),
            amount: Some(Money::parse(24300, "EUR").unwrap()),
            rating: None,
            host_message: None,
        }
    }

    #[test]
    fn an_unanswered_request_expires_in_its_own_words() {
        use shared::listing::BookingMode;
        assert_eq!(Kind::ExpiredGuest.for_booking(BookingMode::Request), Kind::RequestExpiredGuest);
        assert_eq!(Kind::ExpiredGuest.for_booking(BookingMode::Instant), Kind::ExpiredGuest);
        assert_eq!(Kind::CancelledGuest.for_booking(BookingMode::Request), Kind::CancelledGuest);
        let r = render(Kind::RequestExpiredGuest, &ctx("Loft"));
        assert!(r.text.contains("not answered within 24 hours") && !r.text.contains("before payment"), "{}", r.text);
    }

    #[test]
    fn a_declined_request_carries_the_hosts_message_escaped() {
        let r = render(Kind::DeclinedGuest, &Context { host_message: Some("Sorry <3".into()), ..ctx("Loft") });
        assert!(r.text.contains("The host wrote: Sorry <3"), "{}", r.text);
        assert!(r.html.contains("The host wrote: Sorry &lt;3"), "{}", r.html);
    }

    #[test]
    fn escapes_user_text_in_html_only() {
        let r = render(Kind::ConfirmedGuest, &ctx("<script>alert('x')</script> & co"));
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(r.html.contains("Hello Ana &lt;b&gt;,"));
        assert!(r.text.contains("<script>alert('x')</script> & co"));
        assert!(r.inbox_body.contains("<script>"), "the inbox is JSON: clients escape");
    }

    #[test]
    fn formats_dates_and_money_for_people() {
        assert_eq!(format_date(jiff::civil::date(2026, 12, 4)), "Fri 4 Dec 2026");
        assert_eq!(format_money(Money::parse(24300, "EUR").unwrap()), "EUR 243.00");
        assert_eq!(format_money(Money::parse(500, "JPY").unwrap()), "JPY 500");
        let r = render(Kind::ConfirmedGuest, &ctx("Loft"));
        assert_eq!(r.title, "Your booking is confirmed");
        assert_eq!(
            r.inbox_body,
            "Your stay at Loft (Fri 4 Dec 2026 to Mon 7 Dec 2026) is confirmed. Amount paid: EUR 243.00."
        );
        assert!(r.text.starts_with("Hello Ana <b>,\n\n"));
        assert!(r.html.contains("<strong>Loft</strong>"));
    }

    #[test]
    fn every_kind_renders() {
        for k in [
            Kind::ConfirmedGuest,
            Kind::ConfirmedHost,
            Kind::CancelledGuest,
            Kind::CancelledHost,
            Kind::ExpiredGuest,
            Kind::PaymentFailedGuest,
            Kind::RefundIssuedGuest,
            Kind::ReviewPostedHost,
            Kind::RequestedHost,
            Kind::AcceptedGuest,
            Kind::DeclinedGuest,
            Kind::CalendarConflictHost,
            Kind::RequestExpiredGuest,
        ] {
            let r = render(k, &Context { rating: Some(4), ..ctx("Loft") });
            assert!(!r.title.is_empty() && r.text.contains("Loft") && r.html.contains("Loft"), "{k:?}");
        }
        let r = render(Kind::ReviewPostedHost, &Context { rating: Some(4), ..ctx("Loft") });
        assert!(r.text.contains("Rating: 4 out of 5."));
    }

    #[test]
    fn a_message_is_escaped_in_html_and_previewed_in_the_inbox() {
        let ctx = MessageContext {
            recipient_name: "Helena".into(),
            sender_name: "Gina <i>".into(),
            listing_title: "Loft & sea".into(),
            text: "<b>Hi</b>\nsecond line".into(),
        };
        let r = render_message(&ctx);
        assert_eq!(r.title, "New message from Gina <i>");
        assert!(r.html.contains("&lt;b&gt;Hi&lt;/b&gt;<br>\nsecond line"), "{}", r.html);
        assert!(r.html.contains("Gina &lt;i&gt; wrote about Loft &amp; sea:"));
        assert!(!r.html.contains("<b>Hi"));
        assert!(r.text.contains("<b>Hi</b>\nsecond line"));
        assert_eq!(r.inbox_body, "Gina <i> wrote about Loft & sea: <b>Hi</b>\nsecond line");
        let long = render_message(&MessageContext { text: "x".repeat(200), ..ctx });
        assert!(long.inbox_body.ends_with('…'));
    }
}
