"""Self-test of the Connect emulation (infra/local/stripe_connect.py) through the launcher.

    .venv/bin/python infra/local/tests/stripe_connect_test.py

Starts `stripe_launcher.py --from-scratch` on a free port, registers a webhook served by this
script, and checks each route and switch against Stripe's behaviour. Exits 1 on the first
failure (its log is printed), 0 when all pass.
"""

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(os.path.dirname(HERE), "stripe_launcher.py")
SECRET = "whsec_selftest0123456789abcdefghijklmn"
KEY = "sk_test_x"

events = []  # (event dict, signature ok)
events_lock = threading.Lock()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = dict(p.split("=", 1) for p in self.headers.get("Stripe-Signature", "").split(","))
        expected = hmac.new(SECRET.encode(), b"%s.%s" % (parts.get("t", "").encode(), body),
                            hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, parts.get("v1", ""))
        with events_lock:
            events.append((json.loads(body), ok))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)
BASE = None


def call(method, path, data=None, key=KEY, idem=None):
    """(status, headers, body as JSON or text)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(BASE + path, data=body, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if idem:
        req.add_header("Idempotency-Key", idem)
    try:
        with opener.open(req, timeout=10) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw.decode(errors="replace")


checks = 0


def check(cond, what, detail=None):
    global checks
    checks += 1
    if not cond:
        raise AssertionError("%s%s" % (what, "" if detail is None else ": %r" % (detail,)))


def expect_error(resp, status, code, what, etype="invalid_request_error"):
    s, _, b = resp
    check(s == status and isinstance(b, dict) and b.get("error", {}).get("type") == etype
          and b["error"].get("code") == code and b["error"].get("message"),
          what, (s, b))


def wait_events(pred, n, what, timeout=8.0):
    """Waits until n events match pred (and then a little more, so extras would show)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with events_lock:
            found = [e for e in events if pred(e[0])]
        if len(found) >= n:
            time.sleep(1.5)
            with events_lock:
                found = [e for e in events if pred(e[0])]
            check(len(found) == n, what + ": exactly %d events" % n, [e[0]["type"] for e in found])
            check(all(ok for _, ok in found), what + ": signatures verify")
            return [e for e, _ in found]
        time.sleep(0.1)
    check(False, what + ": %d events within %ss" % (n, timeout), len(found))


def create_account(**extra):
    data = {"type": "express", "email": "host@example.com",
            "capabilities[transfers][requested]": "true", "metadata[roost_host]": "h1"}
    data.update(extra)
    s, _, b = call("POST", "/v1/accounts", data)
    check(s == 200, "create account", (s, b))
    return b


def onboard(account_id):
    s, _, link = call("POST", "/v1/account_links", {
        "account": account_id, "refresh_url": "http://host.test/refresh",
        "return_url": "http://host.test/return", "type": "account_onboarding"})
    check(s == 200, "account link", (s, link))
    s, h, _ = call("GET", urllib.parse.urlparse(link["url"]).path, key=None)
    check(s == 302 and h["Location"] == "http://host.test/return", "onboarding redirects to return_url", s)
    return link


def run():
    # Accounts
    expect_error(call("POST", "/v1/accounts", {"type": "custom"}), 400, "parameter_invalid", "type=custom refused")
    expect_error(call("POST", "/v1/accounts", {"type": "express", "country": "USA"}), 400,
                 "parameter_invalid", "3-letter country refused")
    acct = create_account()
    check(acct["id"].startswith("acct_") and len(acct["id"]) == 5 + 16, "account id shape", acct["id"])
    check(acct["object"] == "account" and acct["type"] == "express" and acct["country"] == "US"
          and acct["email"] == "host@example.com" and acct["livemode"] is False
          and isinstance(acct["created"], int), "account fields", acct)
    check(acct["charges_enabled"] is False and acct["payouts_enabled"] is False
          and acct["details_submitted"] is False, "account not enabled", acct)
    check(acct["capabilities"] == {"transfers": "inactive"}, "transfers requested", acct["capabilities"])
    check(acct["requirements"] == {"currently_due": ["business_type", "external_account", "tos_acceptance.date",
                                                     "tos_acceptance.ip"],
                                   "disabled_reason": "requirements.past_due"}, "requirements", acct["requirements"])
    check(acct["metadata"] == {"roost_host": "h1"}, "metadata", acct["metadata"])
    s, _, got = call("GET", "/v1/accounts/" + acct["id"])
    check(s == 200 and got == acct, "account retrieved", (s, got))
    expect_error(call("GET", "/v1/accounts/acct_nope"), 404, "resource_missing", "unknown account 404")
    check(call("GET", "/v1/accounts/" + acct["id"], key=None)[0] == 401, "API key required")
    plain = create_account(**{"capabilities[transfers][requested]": "false", "country": "fr"})
    check(plain["capabilities"] == {} and plain["country"] == "FR", "nothing requested", plain)

    # Transfers before onboarding: no active transfers capability.
    expect_error(call("POST", "/v1/transfers", {"amount": 1000, "currency": "usd", "destination": acct["id"]}),
                 400, "insufficient_capabilities_for_transfer", "transfer before onboarding")

    # Account links
    good = {"account": acct["id"], "refresh_url": "http://host.test/refresh",
            "return_url": "https://host.test/return", "type": "account_onboarding"}
    expect_error(call("POST", "/v1/account_links", dict(good, account="acct_nope")), 400, "resource_missing",
                 "link for an unknown account")
    expect_error(call("POST", "/v1/account_links", dict(good, type="account_other")), 400, "parameter_invalid",
                 "link of an unknown type")
    expect_error(call("POST", "/v1/account_links", {k: v for k, v in good.items() if k != "return_url"}), 400,
                 "parameter_missing", "link without return_url")
    expect_error(call("POST", "/v1/account_links", dict(good, refresh_url="ftp://x")), 400, "url_invalid",
                 "link with a non-http refresh_url")
    s, _, link = call("POST", "/v1/account_links", good)
    check(s == 200 and link["object"] == "account_link" and link["expires_at"] == link["created"] + 300
          and link["url"].startswith(BASE + "/"), "account link shape", link)
    check(call("GET", "/_config/connect/onboarding/nope", key=None)[0] == 404, "unknown token 404")

    # Hosted onboarding: completes the account, account.updated, single use.
    path = urllib.parse.urlparse(link["url"]).path
    s, h, _ = call("GET", path, key=None)
    check(s == 302 and h["Location"] == "https://host.test/return", "onboarding -> return_url", (s, dict(h)))
    s, h, _ = call("GET", path, key=None)
    check(s == 302 and h["Location"] == "http://host.test/refresh", "used link -> refresh_url", (s, dict(h)))
    s, _, acct2 = call("GET", "/v1/accounts/" + acct["id"])
    check(acct2["details_submitted"] and acct2["charges_enabled"] and acct2["payouts_enabled"]
          and acct2["capabilities"] == {"transfers": "active"}
          and acct2["requirements"] == {"currently_due": [], "disabled_reason": None}, "account complete", acct2)
    (ev,) = wait_events(lambda e: e["type"] == "account.updated" and e["data"]["object"]["id"] == acct["id"], 1,
                        "account.updated on onboarding")
    check(ev["data"]["object"]["payouts_enabled"] is True, "event carries the completed account", ev)

    # Expired link -> refresh_url.
    s, _, link = call("POST", "/v1/account_links", dict(good, type="account_update"))
    check(s == 200, "second link", (s, link))
    path = urllib.parse.urlparse(link["url"]).path
    check(call("POST", path + "/expire", {})[0] == 200, "expire switch")
    s, h, _ = call("GET", path, key=None)
    check(s == 302 and h["Location"] == "http://host.test/refresh", "expired link -> refresh_url", (s, dict(h)))

    # Transfers with Idempotency-Key.
    tdata = {"amount": 1000, "currency": "USD", "destination": acct["id"], "transfer_group": "booking_1",
             "description": "payout booking 1", "metadata[booking]": "b1"}
    s1, h1, tr = call("POST", "/v1/transfers", tdata, idem="k-transfer-1")
    check(s1 == 200, "transfer created", (s1, tr))
    check(tr["id"].startswith("tr_") and len(tr["id"]) == 3 + 16 and tr["object"] == "transfer"
          and tr["amount"] == 1000 and tr["currency"] == "usd" and tr["destination"] == acct["id"]
          and tr["transfer_group"] == "booking_1" and tr["description"] == "payout booking 1"
          and tr["amount_reversed"] == 0 and tr["reversed"] is False and tr["metadata"] == {"booking": "b1"},
          "transfer fields", tr)
    check(tr["reversals"] == {"object": "list", "data": [], "has_more": False, "total_count": 0,
                              "url": "/v1/transfers/%s/reversals" % tr["id"]}, "empty reversals", tr["reversals"])
    s2, h2, again = call("POST", "/v1/transfers", tdata, idem="k-transfer-1")
    check(s2 == 200 and again == tr and h2.get("Idempotent-Replayed") == "true", "idempotent replay", (s2, again))
    expect_error(call("POST", "/v1/transfers", dict(tdata, amount=999), idem="k-transfer-1"), 400, None,
                 "same key, other parameters", etype="idempotency_error")
    wait_events(lambda e: e["type"] == "transfer.created" and e["data"]["object"]["id"] == tr["id"], 1,
                "one transfer.created for a replayed create")
    s, _, li = call("GET", "/v1/transfers?destination=" + acct["id"])
    check(s == 200 and li["object"] == "list" and [t["id"] for t in li["data"]] == [tr["id"]],
          "list by destination", li)
    s, _, li = call("GET", "/v1/transfers?transfer_group=other")
    check(s == 200 and li["data"] == [], "list by transfer_group", li)
    check(call("GET", "/v1/transfers/" + tr["id"])[2] == tr, "transfer retrieved")
    expect_error(call("GET", "/v1/transfers/tr_nope"), 404, "resource_missing", "unknown transfer 404")
    expect_error(call("POST", "/v1/transfers", dict(tdata, destination="acct_nope")), 400, "resource_missing",
                 "unknown destination")
    expect_error(call("POST", "/v1/transfers", dict(tdata, amount=0)), 400, "parameter_invalid_integer",
                 "amount 0")
    expect_error(call("POST", "/v1/transfers", dict(tdata, currency="us")), 400, "parameter_invalid",
                 "2-letter currency")
    expect_error(call("POST", "/v1/transfers", dict(tdata, destination=plain["id"])), 400,
                 "insufficient_capabilities_for_transfer", "transfers never requested")

    # Reversals.
    rpath = "/v1/transfers/%s/reversals" % tr["id"]
    s, _, rev = call("POST", rpath, {"amount": 300, "metadata[reason]": "refund"}, idem="k-rev-1")
    check(s == 200 and rev["id"].startswith("trr_") and len(rev["id"]) == 4 + 16
          and rev["object"] == "transfer_reversal" and rev["amount"] == 300 and rev["currency"] == "usd"
          and rev["transfer"] == tr["id"] and rev["metadata"] == {"reason": "refund"}, "partial reversal", (s, rev))
    check(call("POST", rpath, {"amount": 300, "metadata[reason]": "refund"}, idem="k-rev-1")[2] == rev,
          "reversal replay")
    expect_error(call("POST", rpath, {"amount": 701}), 400, "amount_too_large", "over-reversal")
    s, _, t = call("GET", "/v1/transfers/" + tr["id"])
    check(t["amount_reversed"] == 300 and t["reversed"] is False and t["reversals"]["total_count"] == 1
          and t["reversals"]["data"] == [rev], "transfer after partial reversal", t)
    s, _, rest = call("POST", rpath, {})
    check(s == 200 and rest["amount"] == 700, "default reversal is the remainder", (s, rest))
    s, _, t = call("GET", "/v1/transfers/" + tr["id"])
    check(t["amount_reversed"] == 1000 and t["reversed"] is True and t["reversals"]["total_count"] == 2,
          "transfer fully reversed", t)
    s, _, b = call("POST", rpath, {"amount": 1})
    check(s == 400 and b["error"]["type"] == "invalid_request_error", "reversal of a reversed transfer", (s, b))
    s, _, li = call("GET", rpath)
    check(s == 200 and [r["id"] for r in li["data"]] == [rest["id"], rev["id"]], "reversals listed", li)
    evs = wait_events(lambda e: e["type"] == "transfer.reversed" and e["data"]["object"]["id"] == tr["id"], 2,
                      "transfer.reversed per reversal")
    check(sorted(e["data"]["object"]["amount_reversed"] for e in evs) == [300, 1000],
          "transfer.reversed carries the updated transfer", evs)

    # Failure switch: the next 2 creations fail; a failure while executing is remembered under its
    # key (as at Stripe: its retry under the same key answers it again), a new key succeeds.
    fdata = {"amount": 500, "currency": "usd", "destination": acct["id"]}
    s, _, b = call("POST", "/_config/connect/transfer_failures", {"destination": acct["id"], "count": 2})
    check(s == 200, "failure switch", (s, b))
    for i in range(2):
        expect_error(call("POST", "/v1/transfers", fdata, idem="k-fail-%d" % i), 400, "balance_insufficient",
                     "switched failure %d" % (i + 1))
    s, _, li = call("GET", "/v1/transfers?destination=" + acct["id"])
    check(len(li["data"]) == 1, "failures created nothing", li)
    expect_error(call("POST", "/v1/transfers", fdata, idem="k-fail-0"), 400, "balance_insufficient",
                 "a failure while executing is replayed under its key")
    s, _, ok = call("POST", "/v1/transfers", fdata, idem="k-fail-2")
    check(s == 200 and ok["amount"] == 500, "a new key after the switch ran out succeeds", (s, ok))
    call("POST", "/_config/connect/transfer_failures", {"destination": acct["id"], "count": 5})
    call("POST", "/_config/connect/transfer_failures", {"destination": acct["id"], "count": 0})
    check(call("POST", "/v1/transfers", fdata)[0] == 200, "count=0 clears the switch")

    # Restriction switch.
    s, _, r = call("POST", "/_config/connect/accounts/" + acct["id"],
                   {"payouts_enabled": "false", "disabled_reason": "requirements.past_due"})
    check(s == 200 and r["payouts_enabled"] is False and r["capabilities"] == {"transfers": "inactive"}
          and r["requirements"]["disabled_reason"] == "requirements.past_due", "account restricted", (s, r))
    evs = wait_events(lambda e: e["type"] == "account.updated" and e["data"]["object"]["id"] == acct["id"], 2,
                      "account.updated on restriction")
    check(any(e["data"]["object"]["payouts_enabled"] is False for e in evs), "restriction event", evs)
    expect_error(call("POST", "/v1/transfers", fdata), 400, "insufficient_capabilities_for_transfer",
                 "transfer to a restricted account")
    s, _, r = call("POST", "/_config/connect/accounts/" + acct["id"], {"payouts_enabled": "true", "disabled_reason": ""})
    check(s == 200 and r["capabilities"] == {"transfers": "active"} and r["requirements"]["disabled_reason"] is None,
          "account restored", r)
    check(call("POST", "/v1/transfers", fdata)[0] == 200, "transfer after restore")
    check(call("POST", "/_config/connect/accounts/acct_nope", {"payouts_enabled": "true"})[0] == 404,
          "switch on an unknown account")

    # Idempotency on account creation too.
    s, _, a1 = call("POST", "/v1/accounts", {"type": "express"}, idem="k-acct")
    s2, _, a2 = call("POST", "/v1/accounts", {"type": "express"}, idem="k-acct")
    check(s == s2 == 200 and a1["id"] == a2["id"], "account creation replayed", (a1, a2))
    # A second completed onboarding, for good measure.
    onboard(plain["id"])


def main():
    global BASE
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = free_port()
    BASE = "http://127.0.0.1:%d" % port
    log = tempfile.NamedTemporaryFile("w+", prefix="stripe_connect_test", suffix=".log")
    proc = subprocess.Popen([sys.executable, LAUNCHER, "--port", str(port), "--from-scratch"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if call("GET", "/v1/accounts/acct_probe")[0] == 404:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError("launcher did not start")
            time.sleep(0.2)
        s, _, b = call("POST", "/_config/webhooks/t", {
            "url": "http://127.0.0.1:%d/hook" % receiver.server_address[1], "secret": SECRET})
        check(s == 200, "webhook registered", (s, b))
        run()
    except Exception as e:
        log.seek(0)
        sys.stderr.write(log.read()[-4000:])
        sys.stderr.write("\nFAILED after %d checks: %s: %s\n" % (checks, type(e).__name__, e))
        return 1
    finally:
        proc.terminate()
        proc.wait(10)
        receiver.shutdown()
    print("stripe_connect_test: %d checks passed" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
