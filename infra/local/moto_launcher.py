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

# (7) TransactWriteItems' ClientRequestToken. AWS makes a successful transaction idempotent for
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
