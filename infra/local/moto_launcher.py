"""Start moto's server with DynamoDB made atomic, isolated and cheap (moto[server]==5.2.5 only).

Usage: .venv/bin/python infra/local/moto_launcher.py -H 127.0.0.1 -p 5000  (same argv as moto_server)

Plain moto_server serves requests on threads with no lock around DynamoDB, and its
TransactWriteItems deep-copies whole tables: racing transactions lose writes, cancelled ones leave
stream records, and big tables cost seconds and gigabytes (docs/local-runtime.md, "How it differs").
Each patch below says why it exists. tests/tests/e2e/launcher.rs proves the result end to end.
The patches reach into moto internals: re-read them before bumping the moto pin.
"""

import copy
import ctypes
import functools
import inspect
import os
import signal
import sys
import threading
import types

# (0) Die with the parent (Linux): a killed local runtime must leave no moto behind. Note that
# PDEATHSIG fires when the *thread* that spawned us exits, so spawn from a long-lived thread.
_parent = os.getppid()
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != _parent:  # the parent died before prctl took effect
        sys.exit(0)
except (OSError, AttributeError):
    pass  # not Linux: no parent-death signal

from moto.core.common_models import BaseModel  # noqa: E402
from moto.dynamodb import models as ddb  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.dynamodbstreams.models import DynamoDBStreamsBackend  # noqa: E402
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: E402
from moto.server import main  # noqa: E402

# (1) One re-entrant lock for DynamoDB and its streams, and nothing else (an SQS long poll must
# never wait on DynamoDB). Why both layers: the backend methods are what every caller goes
# through (the streams backend, /moto-api/reset, tagging), but several operations are built in
# responses.py from many backend calls (UpdateItem's ReturnValues reads the item before updating
# it, BatchWriteItem, BatchGetItem, TransactGetItems) and serialise live Items after the backend
# returns; so each DynamoDB / Streams request is also held under the lock from parse to JSON.
DDB_LOCK = threading.RLock()


def _locked(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with DDB_LOCK:
            return fn(*args, **kwargs)

    return wrapper


def _lock_public_methods(cls):  # plain functions only: not properties, static or class methods
    for name in [n for n in dir(cls) if not n.startswith("_")]:
        if isinstance(raw := inspect.getattr_static(cls, name), types.FunctionType):
            setattr(cls, name, _locked(raw))


# (2)+(3) TransactWriteItems. moto backs up by deep-copying every touched table (once per item of
# the transaction) and on failure swaps the copies into backend.tables: O(table size) per item,
# and the swap also replaces each table's StreamShard object, so a stream poller holding an
# iterator keeps reading the old shard (which holds the rolled-back records) and never sees a
# later write. Here: the same item-by-item loop and the same CancellationReasons, but the backup
# is the pre-image of each item written, restored in place, and each touched table's stream is
# truncated back to its length before the transaction. Safe because the whole call holds
# DDB_LOCK, so no reader can have seen the truncated records.
def transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise ddb.TooManyTransactionsException()
    undo = []  # (table, hash key, range key, item before the write or None), in write order
    marks = {}  # id(table) -> (table, stream length before the transaction)

    def rollback():
        for table, h, r, before in reversed(undo):
            part, k = (table.items[h], r) if r is not None else (table.items, h)
            if before is None:
                part.pop(k, None)
            else:
                part[k] = before
        for table, n in marks.values():
            if table.stream_shard is not None and len(table.stream_shard.items) > n:
                del table.stream_shard.items[n:]

    target_items = set()
    errors = []  # [(Code, Message, Item)] or (None, None, None) per item, as moto reports them
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            rollback()  # moto raises here without undoing the items before; undo them
            raise ddb.TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            cond = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in target_items:
                raise ddb.MultipleTransactionsException()
            target_items.add(unique)

            current = self.get_item(table_name, key)
            if cond is not None and not ddb.get_filter_expression(cond, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ddb.ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                table = self.get_table(table_name)
                marks.setdefault(id(table), (table, len(table.stream_shard.items) if table.stream_shard else 0))
                h, r = self.get_keys_value(table, key)
                # Update mutates the stored Item in place; Put replaces it and Delete pops it.
                undo.append((table, h, r, copy.deepcopy(current) if op_type == "Update" else current))
            exprs = dict(condition_expression=cond, expression_attribute_names=names, expression_attribute_values=values)
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **exprs)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **exprs)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"], **exprs)
            errors.append((None, None, None))
        except (ddb.MultipleTransactionsException, ddb.MockValidationException):
            rollback()
            raise
        except ddb.ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # moto reports any other failure as a reason named by its type
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise ddb.TransactionCanceledException(errors)


# (7) Strictness switches (issue 24 section 3; docs/local-runtime.md, "DynamoDB conflicts and
# stale indexes"). Serialising every request is what makes moto correct, but it also means a
# transaction never meets another one (AWS cancels it with TransactionConflict) and a GSI is never
# behind its table (AWS propagates GSI writes asynchronously). So, when switched on:
# - every item write (put, update, delete, from any operation) is journaled with its pre-image;
# - a TransactWriteItems touching an item written in the last `window_ms` is, with probability
#   `rate`, cancelled before any of it applies, with AWS's reasons: TransactionConflict for the
#   recently written items, None for the others;
# - a Query or Scan on a GSI runs against the table as it was `gsi_lag_ms` ago: an item written
#   since then is seen as its pre-image (absent if it did not exist). The table is swapped to that
#   view in place for the one call (all under DDB_LOCK, so nobody else sees it).
# POST /moto-api/roost/strictness {"transaction_conflict": {"rate", "window_ms"}, "gsi_lag_ms"}
# (omitted fields keep their value, zeros switch off); GET shows the settings and counters.
import collections  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

STRICT = {"conflict_rate": 0.0, "conflict_window_ms": 0, "gsi_lag_ms": 0}
STRICT_COUNTERS = collections.Counter(transactions=0, conflicts=0, gsi_reads=0, gsi_reads_from_lagged_view=0)
JOURNAL = collections.deque()  # (monotonic seconds, table name, hash key, range key, pre-image or None)


def _horizon_s():
    return max(STRICT["conflict_window_ms"], STRICT["gsi_lag_ms"]) / 1000.0


def _prune_journal(now):
    while JOURNAL and JOURNAL[0][0] < now - _horizon_s():
        JOURNAL.popleft()


def _journal_write(self, table_name, key):
    """Records the item's pre-image before a write; `key` holds at least the key attributes."""
    if _horizon_s() <= 0:
        return
    table = self.get_table(table_name)
    h, r = self.get_keys_value(table, key)
    now = time.monotonic()
    _prune_journal(now)
    JOURNAL.append((now, table.name, h, r, copy.deepcopy(table.get_item(h, r))))


def _journaled(method, key_of):
    @functools.wraps(method)
    def wrapper(self, table_name, *args, **kwargs):
        try:
            _journal_write(self, table_name, key_of(args, kwargs))
        except Exception:  # noqa: BLE001 - a malformed request fails in the real method below
            pass
        return method(self, table_name, *args, **kwargs)

    return wrapper


def _item_of(args, kwargs):
    return args[0] if args else kwargs["item_attrs"]


def _key_of(args, kwargs):
    return args[0] if args else kwargs["key"]


ddb.DynamoDBBackend.put_item = _journaled(ddb.DynamoDBBackend.put_item, _item_of)
ddb.DynamoDBBackend.update_item = _journaled(ddb.DynamoDBBackend.update_item, _key_of)
ddb.DynamoDBBackend.delete_item = _journaled(ddb.DynamoDBBackend.delete_item, _key_of)


def _recently_written(table_name, seconds):
    """{(hash, range): the earliest pre-image within the last `seconds`} for one table."""
    now = time.monotonic()
    _prune_journal(now)
    found = {}
    for t, name, h, r, before in JOURNAL:
        if name == table_name and t >= now - seconds and (h, r) not in found:
            found[(h, r)] = before
    return found


def _conflicting_reasons(self, transact_items):
    """AWS's cancellation reasons if this transaction is to meet a conflict, else None."""
    window = STRICT["conflict_window_ms"] / 1000.0
    if STRICT["conflict_rate"] <= 0 or window <= 0:
        return None
    STRICT_COUNTERS["transactions"] += 1
    reasons, conflict = [], False
    for item in transact_items:
        try:
            op = next(iter(item.values()))
            table = self.get_table(op["TableName"])
            h, r = self.get_keys_value(table, op.get("Key") or op["Item"])
            recent = (h, r) in _recently_written(table.name, window)
        except Exception:  # noqa: BLE001 - the transaction itself reports malformed items
            recent = False
        conflict |= recent
        reasons.append(("TransactionConflict", "Transaction is ongoing for the item", None) if recent else (None, None, None))
    if conflict and random.random() < STRICT["conflict_rate"]:
        STRICT_COUNTERS["conflicts"] += 1
        return reasons
    return None


def _with_conflicts(transact):
    @functools.wraps(transact)
    def wrapper(self, transact_items):
        reasons = _conflicting_reasons(self, transact_items) if len(transact_items) <= 100 else None
        if reasons is not None:
            raise ddb.TransactionCanceledException(reasons)
        return transact(self, transact_items)

    return wrapper


def _lagging_gsi(read):
    signature = inspect.signature(read)

    @functools.wraps(read)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs).arguments
        lag = STRICT["gsi_lag_ms"] / 1000.0
        table = self.get_table(bound["table_name"])
        if lag <= 0 or bound.get("index_name") not in {i.name for i in table.global_indexes or []}:
            return read(self, *args, **kwargs)
        STRICT_COUNTERS["gsi_reads"] += 1
        stale = _recently_written(table.name, lag)
        if not stale:
            return read(self, *args, **kwargs)
        STRICT_COUNTERS["gsi_reads_from_lagged_view"] += 1
        current = {k: table.get_item(*k) for k in stale}
        try:
            _place(table, stale)
            return read(self, *args, **kwargs)
        finally:
            _place(table, current)

    return wrapper


def _place(table, items):
    """Puts each {(hash, range): Item or None} into the table's storage (None: absent)."""
    for (h, r), item in items.items():
        part, k = (table.items[h], r) if r is not None else (table.items, h)
        if item is None:
            part.pop(k, None)
        else:
            part[k] = item


def _strictness(request, full_url, headers):
    if request.method == "POST":
        body = json.loads(request.data or b"{}")
        conflict = body.get("transaction_conflict") or {}
        STRICT["conflict_rate"] = float(conflict.get("rate", STRICT["conflict_rate"]))
        STRICT["conflict_window_ms"] = int(conflict.get("window_ms", STRICT["conflict_window_ms"]))
        STRICT["gsi_lag_ms"] = int(body.get("gsi_lag_ms", STRICT["gsi_lag_ms"]))
    answer = {
        "transaction_conflict": {"rate": STRICT["conflict_rate"], "window_ms": STRICT["conflict_window_ms"]},
        "gsi_lag_ms": STRICT["gsi_lag_ms"],
        "counters": dict(STRICT_COUNTERS),
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


ddb.DynamoDBBackend.query = _lagging_gsi(ddb.DynamoDBBackend.query)
ddb.DynamoDBBackend.scan = _lagging_gsi(ddb.DynamoDBBackend.scan)
transact_write_items = _with_conflicts(transact_write_items)

ddb.DynamoDBBackend.transact_write_items = transact_write_items
for _cls in (ddb.DynamoDBBackend, DynamoDBStreamsBackend):
    _lock_public_methods(_cls)
for _handler in (DynamoHandler, DynamoDBStreamsHandler):
    _handler.call_action = _locked(_handler.call_action)

# (4) Every BaseModel instance is appended to its class's `instances_tracked` list forever, for
# /moto-api/data.json. For DynamoDB that is every Item ever written, every Item of every table
# deep copy, every StreamRecord and one ShardIterator per GetRecords call: memory only grows and
# data.json slows to many seconds. Skip tracking for DynamoDB and Streams models only; other
# services (Cognito codes, SES messages read from data.json by tests) keep it. Done in __new__,
# not by replacing the lists, because /moto-api/reset puts fresh lists back.
_UNTRACKED = ("moto.dynamodb.", "moto.dynamodbstreams.", "moto.dynamodb_v20111205.")


def _new(cls, *args, **kwargs):
    instance = super(BaseModel, cls).__new__(cls)
    if not cls.__module__.startswith(_UNTRACKED):
        cls.instances_tracked.append(instance)
    return instance


BaseModel.__new__ = staticmethod(_new)


# (5) Time for one Cognito user, for tests only. users' sign-up may replace an UNCONFIRMED account
# only once it is older than a grace period counted from its UserCreateDate (docs/decisions.md),
# and AWS has no call that changes that date; tests move it back here, as they move timestamps
# in the table instead of waiting. POST /moto-api/roost/cognito-user-age
# {"UserPoolId", "Username" (or the e-mail), "Seconds"} as application/json: UserCreateDate -=
# Seconds.
def _age_cognito_user(request, full_url, headers):
    import datetime
    import json

    from moto.cognitoidp.models import cognitoidp_backends

    body = json.loads(request.data or b"{}")
    pools = [b.user_pools for regions in cognitoidp_backends.values() for b in regions.values()]
    pool = next((p[body.get("UserPoolId")] for p in pools if body.get("UserPoolId") in p), None)
    user = pool._get_user(body.get("Username", "")) if pool else None
    if user is None:
        return 404, {}, json.dumps({"Error": "no such user pool or user"})
    user.create_date -= datetime.timedelta(seconds=int(body.get("Seconds", 0)))
    return 200, {}, json.dumps({"UserCreateDate": user.create_date.isoformat()})


from moto.moto_api._internal import urls as _moto_api_urls  # noqa: E402

_moto_api_urls.url_paths["{0}/moto-api/roost/cognito-user-age"] = _age_cognito_user
_moto_api_urls.url_paths["{0}/moto-api/roost/strictness"] = _strictness

# (6) ConfirmForgotPassword for an e-mail with no account: AWS answers UserNotFoundException
# (users maps it to 400 invalid_code, as for a wrong code); moto 5.2.5 raises
# ResourceNotFoundException naming the app client, which users rightly treats as a broken
# deployment (500). The API fuzzer (tests/tests/e2e/fuzz.rs) sends exactly such resets.
from moto.cognitoidp import models as _cognito  # noqa: E402

_confirm_forgot_password = _cognito.CognitoIdpBackend.confirm_forgot_password


def _confirm_forgot_password_like_aws(self, client_id, username, password, confirmation_code):
    for pool in self.user_pools.values():
        if client_id in pool.clients and not pool._get_user(username):
            raise _cognito.UserNotFoundError("User does not exist.")
    return _confirm_forgot_password(self, client_id, username, password, confirmation_code)


_cognito.CognitoIdpBackend.confirm_forgot_password = _confirm_forgot_password_like_aws

# (8) TransactWriteItems' ClientRequestToken. AWS makes a successful transaction idempotent for
# 10 minutes by its token: the same token with the same items succeeds again without applying
# anything, with other items it is IdempotentParameterMismatchException. The Rust SDK fills the
# token itself and keeps it across its retries, so on AWS a retry after a lost answer (the fault
# proxy's `late`, a timeout) succeeds; moto ignores the token and would cancel that retry on the
# conditions its own first attempt made false. Runs under DDB_LOCK (call_action is wrapped).
from moto.dynamodb.exceptions import DynamodbException, ERROR_TYPE_PREFIX  # noqa: E402

_TOKEN_TTL_SECONDS = 600
_transaction_tokens = {}  # token -> (expires at, items as JSON, the first answer)
_transact_write_items_handler = DynamoHandler.transact_write_items


def _transact_write_items_once_per_token(self):
    import json
    import time

    token = self.body.get("ClientRequestToken")
    if not token:
        return _transact_write_items_handler(self)
    now = time.monotonic()
    for expired in [t for t, (until, _, _) in _transaction_tokens.items() if until < now]:
        del _transaction_tokens[expired]
    items = json.dumps(self.body.get("TransactItems"), sort_keys=True)
    if token in _transaction_tokens:
        _, first_items, answer = _transaction_tokens[token]
        if first_items != items:
            raise DynamodbException(
                ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                "The request uses the same client token as a previous, but non-identical request.",
            )
        return answer
    answer = _transact_write_items_handler(self)  # raises when cancelled: nothing is remembered
    _transaction_tokens[token] = (now + _TOKEN_TTL_SECONDS, items, answer)
    return answer


DynamoHandler.transact_write_items = _transact_write_items_once_per_token

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
