"""localstripe, with the PaymentIntent events of manual capture that Stripe sends and localstripe
does not (docs/local-runtime.md, "Stripe").

Roost's request to book authorises a card without charging it (`capture_method=manual`) and
learns of the authorisation from Stripe's `payment_intent.amount_capturable_updated` webhook;
a cancelled authorisation is `payment_intent.canceled`. localstripe (pinned in
requirements.txt) implements manual capture itself (confirm -> `requires_capture`, capture ->
`succeeded` and its webhook, cancel -> `canceled`) but sends neither of those two events. This
launcher adds them, as Stripe sends them.

It also adds Stripe Connect, which localstripe lacks: Express accounts, account links and their
hosted onboarding, transfers and transfer reversals, with Idempotency-Key and a few test switches
under `/_config/connect/` (`stripe_connect.py` says what is emulated and what is not). Then it
runs localstripe's own server.
"""

import sys

from localstripe import resources
from localstripe.webhooks import schedule_webhook

PaymentIntent = resources.PaymentIntent
Event = resources.Event

_create_charge = PaymentIntent._create_charge


def _create_charge_and_tell(self, on_failure_now):
    _create_charge(self, on_failure_now)
    # A manual-capture charge that succeeded leaves the intent waiting for its capture: Stripe
    # says so with this event (the amount is now capturable).
    if self.status == "requires_capture":
        self.amount_capturable = self.amount
        schedule_webhook(Event("payment_intent.amount_capturable_updated", self))


_api_cancel = PaymentIntent._api_cancel.__func__


def _api_cancel_and_tell(cls, id, **kwargs):
    intent = _api_cancel(cls, id, **kwargs)
    schedule_webhook(Event("payment_intent.canceled", intent))
    return intent


PaymentIntent._create_charge = _create_charge_and_tell
PaymentIntent._api_cancel = classmethod(_api_cancel_and_tell)
# The routes were listed when `resources` was imported, with the original method: point the
# cancel route at the new one before the server module builds its routes from the list.
resources.extra_apis[:] = [
    (method, url, PaymentIntent._api_cancel if url == "/v1/payment_intents/{id}/cancel" else func)
    for method, url, func in resources.extra_apis
]

from localstripe.server import app, start  # noqa: E402 (after the patches: it registers the routes)

import stripe_connect  # noqa: E402 (next to this file: the script's directory is on sys.path)

stripe_connect.install(app)  # routes can be added until the app runs

if __name__ == "__main__":
    sys.argv[0] = "localstripe"
    sys.exit(start())
