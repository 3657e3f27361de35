"""Stripe Connect for localstripe: Express accounts, account links, hosted onboarding, transfers
and transfer reversals (docs/local-runtime.md, "Stripe"). localstripe has no Connect at all.

`install(app)` adds the routes below to localstripe's aiohttp app (`stripe_launcher.py` calls it
before the server starts). The objects are localstripe `StripeObject`s, kept in its `store`, and
their events go through `schedule_webhook(Event(...))`: signed, and delivered to every registered
webhook, like localstripe's own.

Emulated, with Stripe's shapes (only the fields Roost reads, plus id/object/created/livemode/
metadata) and Stripe's error bodies:
- `POST /v1/accounts` (`type=express` only), `GET /v1/accounts/{id}`. No event on creation.
- `POST /v1/account_links` (`account_onboarding` / `account_update`): the link's URL is this
  server's own `/_config/connect/onboarding/{token}` (under `/_config/`, so a browser needs no
  API key), valid 300 s and single-use, as Stripe's.
- `GET /_config/connect/onboarding/{token}`: what Stripe's hosted onboarding does when the host
  finishes it: the account becomes complete (details submitted, charges and payouts enabled,
  requested capabilities active, nothing due), `account.updated` is sent, 302 to `return_url`.
  An expired or already used link: 302 to `refresh_url`; an unknown token: 404.
- `POST /v1/transfers`, `GET /v1/transfers/{id}`, `GET /v1/transfers` (`destination`,
  `transfer_group` filters); `transfer.created`. A destination whose `transfers` capability is
  not active: 400 `insufficient_capabilities_for_transfer`.
- `POST /v1/transfers/{id}/reversals` (partial or whole), `GET /v1/transfers/{id}/reversals`,
  `GET /v1/transfers/{id}/reversals/{reversal}`; `transfer.reversed` (the updated transfer).
- `Idempotency-Key` on every POST above: the same key on the same path with the same parameters
  answers the first answer again, header `Idempotent-Replayed: true`, creating and sending
  nothing; other parameters: 400 `idempotency_error`. As at Stripe, what is remembered is the
  answer of a request that started executing: a success, or a failure while executing (the
  switch's `balance_insufficient`); a request refused by validation is not remembered.

Emulator-only switches (Stripe has none of them):
- `POST /_config/connect/accounts/{id}`: `payouts_enabled`, `charges_enabled` (`true`/`false`),
  `disabled_reason` (empty = null); `transfers` follows `payouts_enabled` and `card_payments`
  follows `charges_enabled` (when requested); sends `account.updated`. Restricts an account.
- `POST /_config/connect/transfer_failures`: `destination=<acct>`, `count=<n>`: the next n
  transfer creations to that account fail with 400 `balance_insufficient`, creating nothing
  (`count=0` clears).
- `POST /_config/connect/onboarding/{token}/expire`: the link is past its `expires_at`.

Not emulated: charges on connected accounts (direct or destination charges, `Stripe-Account`),
payouts to the connected account's bank, `account.application.deauthorized`, login links,
account updates through the API, a Connect-specific webhook endpoint (Stripe sends Connect events
to a Connect endpoint with `account` set; here they go to every registered webhook), and any
balance accounting (a transfer never fails for lack of funds unless the switch says so).
Link tokens, failure switches and idempotency records live in this module, not in the pickled
store: they do not survive a restart.
"""

import json
import re
import secrets
import time
from urllib.parse import urlparse

from aiohttp import web

from localstripe.errors import UserError
from localstripe.resources import Event, List, StripeObject, random_id, store
from localstripe.server import get_post_data, json_response, unflatten_data
from localstripe.webhooks import schedule_webhook

_type = type

LINK_TTL_SECONDS = 300
KNOWN_CAPABILITIES = ("card_payments", "transfers")
INITIAL_CURRENTLY_DUE = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"]

# token -> {"account", "refresh_url", "return_url", "expires_at", "used"}
_links = {}
# account id -> remaining transfer creations that fail with balance_insufficient
_transfer_failures = {}
# (method, path, key) -> {"params", "status", "body", "content_type"}
_idempotency = {}


def _missing(kind, id, param=None):
    contents = {"code": "resource_missing"}
    if param:
        contents["param"] = param
    return UserError(400 if param else 404, "No such %s: '%s'" % (kind, id), contents=contents)


def _bad(message, param=None, code="parameter_invalid"):
    contents = {"code": code} if code else {}
    if param:
        contents["param"] = param
    return UserError(400, message, contents=contents)


def _unexpected(kwargs):
    name = sorted(kwargs)[0]
    return _bad("Received unknown parameter: %s" % name, name, "parameter_unknown")


def _metadata(metadata):
    if metadata is None or metadata == "":
        return {}
    if _type(metadata) is not dict or not all(_type(v) is str for v in metadata.values()):
        raise _bad("Invalid metadata: must be a hash of strings", "metadata")
    return dict(metadata)


def _positive_int(value, param):
    if _type(value) is int:
        number = value
    elif _type(value) is str and re.fullmatch(r"[0-9]+", value):
        number = int(value)
    else:
        raise _bad("Invalid integer: %s" % (value,), param, "parameter_invalid_integer")
    if number <= 0:
        raise _bad("Invalid positive integer", param, "parameter_invalid_integer")
    return number


def _optional_str(value, param):
    if value is None or value == "":
        return None
    if _type(value) is not str:
        raise _bad("Invalid string: %s" % (value,), param)
    return value


def _bool(value, param):
    if _type(value) is bool:
        return value
    if _type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad("Invalid boolean: %s" % (value,), param)


class Account(StripeObject):
    object = "account"
    _id_prefix = "acct_"

    def __init__(self, type=None, country=None, email=None, capabilities=None, business_type=None,
                 metadata=None, **kwargs):
        if kwargs:
            raise _unexpected(kwargs)
        if type != "express":
            raise _bad("Only Express accounts can be created here (type=express): got %r" % (type,), "type")
        country = "US" if country in (None, "") else country
        if _type(country) is not str or not re.fullmatch(r"[A-Za-z]{2}", country):
            raise _bad("Invalid country: %s" % (country,), "country")
        email = _optional_str(email, "email")
        business_type = _optional_str(business_type, "business_type")
        if business_type not in (None, "individual", "company", "non_profit", "government_entity"):
            raise _bad("Invalid business_type: %s" % business_type, "business_type")
        requested = []
        if capabilities not in (None, ""):
            if _type(capabilities) is not dict:
                raise _bad("Invalid capabilities: must be a hash", "capabilities")
            for name, value in capabilities.items():
                if name not in KNOWN_CAPABILITIES:
                    raise _bad("Invalid capability: %s" % name, "capabilities[%s]" % name)
                if _type(value) is not dict or set(value) - {"requested"}:
                    raise _bad("Invalid capabilities[%s]" % name, "capabilities[%s]" % name)
                if _bool(value.get("requested", "false"), "capabilities[%s][requested]" % name):
                    requested.append(name)
        metadata = _metadata(metadata)

        # All exceptions must be raised before this point.
        super().__init__(id=self._id_prefix + random_id(16))

        self.type = type
        self.country = country.upper()
        self.email = email
        self.business_type = business_type
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        self.capabilities = {name: "inactive" for name in requested}
        self.requirements = {
            "currently_due": [r for r in INITIAL_CURRENTLY_DUE if not (r == "business_type" and business_type)],
            "disabled_reason": "requirements.past_due",
        }
        self.metadata = metadata

    @classmethod
    def _api_retrieve(cls, id):
        obj = store.get(cls.object + ":" + id)
        if obj is None:
            raise _missing("account", id)
        return obj

    def _complete_onboarding(self):
        self.details_submitted = True
        self.charges_enabled = True
        self.payouts_enabled = True
        for name in self.capabilities:
            self.capabilities[name] = "active"
        self.requirements = {"currently_due": [], "disabled_reason": None}

    def _switch(self, payouts_enabled=None, charges_enabled=None, disabled_reason=None):
        if payouts_enabled is not None:
            self.payouts_enabled = payouts_enabled
            if "transfers" in self.capabilities:
                self.capabilities["transfers"] = "active" if payouts_enabled else "inactive"
        if charges_enabled is not None:
            self.charges_enabled = charges_enabled
            if "card_payments" in self.capabilities:
                self.capabilities["card_payments"] = "active" if charges_enabled else "inactive"
        if disabled_reason is not None:
            self.requirements = dict(self.requirements, disabled_reason=disabled_reason or None)


class Transfer(StripeObject):
    object = "transfer"
    _id_prefix = "tr_"

    def __init__(self, amount=None, currency=None, destination=None, transfer_group=None,
                 description=None, metadata=None, **kwargs):
        if kwargs:
            raise _unexpected(kwargs)
        amount = _positive_int(amount, "amount")
        if _type(currency) is not str or not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise _bad("Invalid currency: %s" % (currency,), "currency", "parameter_invalid")
        if _type(destination) is not str or not destination:
            raise _bad("Missing required param: destination.", "destination", "parameter_missing")
        transfer_group = _optional_str(transfer_group, "transfer_group")
        description = _optional_str(description, "description")
        metadata = _metadata(metadata)
        account = store.get("account:" + destination)
        if account is None:
            raise _missing("destination", destination, "destination")
        if account.capabilities.get("transfers") != "active":
            raise _bad(
                "Your destination account needs to have at least one of the following capabilities "
                "enabled: transfers, crypto_transfers, legacy_payments",
                "destination", "insufficient_capabilities_for_transfer")
        if _transfer_failures.get(destination, 0) > 0:
            _transfer_failures[destination] -= 1
            raise _bad("You have insufficient available funds in your Stripe account.", None,
                       "balance_insufficient")

        # All exceptions must be raised before this point.
        super().__init__(id=self._id_prefix + random_id(16))

        self.amount = amount
        self.currency = currency.lower()
        self.destination = destination
        self.transfer_group = transfer_group
        self.description = description
        self.amount_reversed = 0
        self.reversed = False
        self.metadata = metadata
        self._reversal_ids = []

    @classmethod
    def _api_create(cls, **data):
        transfer = cls(**data)
        schedule_webhook(Event("transfer.created", transfer))
        return transfer

    @classmethod
    def _api_retrieve(cls, id):
        obj = store.get(cls.object + ":" + id)
        if obj is None:
            raise _missing("transfer", id)
        return obj

    @classmethod
    def _api_list_all(cls, url, destination=None, transfer_group=None, limit=None,
                      starting_after=None, **kwargs):
        if kwargs:
            raise _unexpected(kwargs)
        li = List(url, limit=limit, starting_after=starting_after)
        li._list = [t for key, t in reversed(list(store.items()))
                    if key.startswith("transfer:")
                    and (destination is None or t.destination == destination)
                    and (transfer_group is None or t.transfer_group == transfer_group)]
        return li

    def _reversal_objects(self):
        return [store["transfer_reversal:" + id] for id in reversed(self._reversal_ids)]

    @property
    def reversals(self):
        data = [r._export() for r in self._reversal_objects()]
        return {"object": "list", "data": data, "has_more": False, "total_count": len(data),
                "url": "/v1/transfers/%s/reversals" % self.id}


class TransferReversal(StripeObject):
    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, transfer=None, amount=None, description=None, metadata=None, **kwargs):
        if kwargs:
            raise _unexpected(kwargs)
        transfer_obj = Transfer._api_retrieve(transfer)
        remaining = transfer_obj.amount - transfer_obj.amount_reversed
        description = _optional_str(description, "description")
        metadata = _metadata(metadata)
        if remaining <= 0:
            raise _bad("Transfer %s has already been fully reversed." % transfer_obj.id, None, None)
        amount = remaining if amount in (None, "") else _positive_int(amount, "amount")
        if amount > remaining:
            raise _bad("Amount requested (%d) is greater than the amount that can be reversed (%d)."
                       % (amount, remaining), "amount", "amount_too_large")

        # All exceptions must be raised before this point.
        super().__init__(id=self._id_prefix + random_id(16))

        self.amount = amount
        self.currency = transfer_obj.currency
        self.transfer = transfer_obj.id
        self.metadata = metadata
        self._description = description

        transfer_obj._reversal_ids.append(self.id)
        transfer_obj.amount_reversed += amount
        transfer_obj.reversed = transfer_obj.amount_reversed >= transfer_obj.amount

    @classmethod
    def _api_create(cls, id=None, **data):
        reversal = cls(transfer=id, **data)
        schedule_webhook(Event("transfer.reversed", Transfer._api_retrieve(id)))
        return reversal

    @classmethod
    def _api_list(cls, id=None, limit=None, starting_after=None, **kwargs):
        if kwargs:
            raise _unexpected(kwargs)
        transfer = Transfer._api_retrieve(id)
        li = List("/v1/transfers/%s/reversals" % id, limit=limit, starting_after=starting_after)
        li._list = transfer._reversal_objects()
        return li

    @classmethod
    def _api_retrieve_one(cls, id=None, reversal_id=None, **kwargs):
        transfer = Transfer._api_retrieve(id)
        if reversal_id not in transfer._reversal_ids:
            raise _missing("transfer reversal", reversal_id)
        return store["transfer_reversal:" + reversal_id]


def _create_account_link(base_url, account=None, refresh_url=None, return_url=None, type=None,
                         collect=None, collection_options=None, **kwargs):
    if kwargs:
        raise _unexpected(kwargs)
    if _type(account) is not str or not account:
        raise _bad("Missing required param: account.", "account", "parameter_missing")
    for param, url in (("refresh_url", refresh_url), ("return_url", return_url)):
        if url in (None, ""):
            raise _bad("Missing required param: %s." % param, param, "parameter_missing")
        parsed = urlparse(url) if _type(url) is str else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _bad("Not a valid URL", param, "url_invalid")
    if type not in ("account_onboarding", "account_update"):
        raise _bad("Invalid type: must be one of account_onboarding or account_update", "type")
    if store.get("account:" + account) is None:
        raise _missing("account", account, "account")
    created = int(time.time())
    token = secrets.token_urlsafe(24)
    _links[token] = {"account": account, "refresh_url": refresh_url, "return_url": return_url,
                     "expires_at": created + LINK_TTL_SECONDS, "used": False}
    return {"object": "account_link", "created": created, "expires_at": created + LINK_TTL_SECONDS,
            "url": "%s/_config/connect/onboarding/%s" % (base_url, token)}


# ---- HTTP ------------------------------------------------------------------------------------


def _idempotent(handler):
    """POST handler wrapper: Stripe's Idempotency-Key, per (method, path, key)."""

    async def f(request):
        data = await get_post_data(request) or {}
        key = request.headers.get("Idempotency-Key")
        if not key:
            return await _answer(handler, request, data)
        record_key = (request.method, request.path, key)
        params = json.dumps(data, sort_keys=True)
        # No await between this check and the record below: one request with a key at a time.
        record = _idempotency.get(record_key)
        if record is not None:
            if record["params"] != params:
                body = {"error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                               "parameters they were first used with. Try using a key other than "
                               "'%s' if you meant to execute a different request." % key}}
                return json_response(body, status=400)
            return web.Response(status=record["status"], body=record["body"],
                                content_type="application/json",
                                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
        response = await _answer(handler, request, data)
        if 200 <= response.status < 300 or _failed_while_executing(response):
            _idempotency[record_key] = {"params": params, "status": response.status,
                                        "body": response.body}
        response.headers["Idempotency-Key"] = key
        return response

    return f


# Failures Stripe meets while executing a request (so it keeps them under the request's key).
_EXECUTION_FAILURES = {"balance_insufficient"}


def _failed_while_executing(response):
    try:
        return json.loads(response.body)["error"].get("code") in _EXECUTION_FAILURES
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


async def _answer(handler, request, data):
    data = dict(data)
    expand = data.pop("expand", None)
    try:
        result = handler(request, data)
        if isinstance(result, StripeObject):
            result = result._export(expand=expand)
        return json_response(result)
    except UserError as e:
        return e.to_response()


def _post_account(request, data):
    return Account._api_create(**data)


def _post_account_link(request, data):
    return _create_account_link(str(request.url.origin()), **data)


def _post_transfer(request, data):
    return Transfer._api_create(**data)


def _post_reversal(request, data):
    return TransferReversal._api_create(id=request.match_info["id"], **data)


def _get(func):
    async def f(request):
        data = unflatten_data(request.query)
        expand = data.pop("expand", None)
        data.update(request.match_info)
        return json_response(func(**data)._export(expand=expand))
    return f


def _get_account(id, **kwargs):
    if kwargs:
        raise _unexpected(kwargs)
    return Account._api_retrieve(id)


def _get_transfer(id, **kwargs):
    if kwargs:
        raise _unexpected(kwargs)
    return Transfer._api_retrieve(id)


def _list_transfers(**data):
    return Transfer._api_list_all("/v1/transfers", **data)


async def _onboarding(request):
    link = _links.get(request.match_info["token"])
    if link is None:
        raise UserError(404, "Not Found")
    if link["used"] or time.time() > link["expires_at"]:
        raise web.HTTPFound(link["refresh_url"])
    link["used"] = True
    account = Account._api_retrieve(link["account"])
    account._complete_onboarding()
    schedule_webhook(Event("account.updated", account))
    store.dump_to_disk()
    raise web.HTTPFound(link["return_url"])


async def _expire_link(request):
    link = _links.get(request.match_info["token"])
    if link is None:
        raise UserError(404, "Not Found")
    link["expires_at"] = int(time.time()) - 1
    return web.Response()


async def _config_account(request):
    account = Account._api_retrieve(request.match_info["id"])
    data = await get_post_data(request) or {}
    unknown = set(data) - {"payouts_enabled", "charges_enabled", "disabled_reason"}
    if unknown:
        raise _unexpected(dict.fromkeys(unknown))
    payouts = data.get("payouts_enabled")
    charges = data.get("charges_enabled")
    payouts = None if payouts is None else _bool(payouts, "payouts_enabled")
    charges = None if charges is None else _bool(charges, "charges_enabled")
    reason = data.get("disabled_reason")
    if reason is not None and _type(reason) is not str:
        raise _bad("Invalid disabled_reason", "disabled_reason")
    account._switch(payouts, charges, reason)
    schedule_webhook(Event("account.updated", account))
    return json_response(account._export())


async def _config_transfer_failures(request):
    data = await get_post_data(request) or {}
    destination = data.get("destination")
    count = data.get("count")
    if _type(destination) is not str or not destination:
        raise _bad("Missing destination", "destination", "parameter_missing")
    if _type(count) is not str or not re.fullmatch(r"[0-9]+", count):
        raise _bad("count must be an integer >= 0", "count")
    Account._api_retrieve(destination)
    if int(count) == 0:
        _transfer_failures.pop(destination, None)
    else:
        _transfer_failures[destination] = int(count)
    return json_response({"destination": destination, "count": int(count)})


def install(app):
    """Adds the Connect routes to localstripe's app (before it runs)."""
    app.router.add_post("/v1/accounts", _idempotent(_post_account))
    app.router.add_get("/v1/accounts/{id}", _get(_get_account))
    app.router.add_post("/v1/account_links", _idempotent(_post_account_link))
    app.router.add_post("/v1/transfers", _idempotent(_post_transfer))
    app.router.add_get("/v1/transfers", _get(_list_transfers))
    app.router.add_get("/v1/transfers/{id}", _get(_get_transfer))
    app.router.add_post("/v1/transfers/{id}/reversals", _idempotent(_post_reversal))
    app.router.add_get("/v1/transfers/{id}/reversals", _get(TransferReversal._api_list))
    app.router.add_get("/v1/transfers/{id}/reversals/{reversal_id}",
                       _get(TransferReversal._api_retrieve_one))
    app.router.add_get("/_config/connect/onboarding/{token}", _onboarding)
    app.router.add_post("/_config/connect/onboarding/{token}/expire", _expire_link)
    app.router.add_post("/_config/connect/accounts/{id}", _config_account)
    app.router.add_post("/_config/connect/transfer_failures", _config_transfer_failures)
