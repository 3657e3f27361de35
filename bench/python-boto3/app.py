"""The Python reference of `cargo roost bench` (bench/README.md): what `GET /v1/listings/{id}`
does in functions/listings, written as a typical Python Lambda would write it.

Like the Rust function it builds its DynamoDB client once, at init, reads the listing with one
strongly consistent GetItem of `PK = LISTING#<id>, SK = LISTING` (docs/data-model.md, access
pattern 4) from the table the template names in TABLE_NAME, and answers the public view, or
404 as application/problem+json for an id that is malformed, absent or archived.

The view is the Rust one's minus `photos`: their URLs are pre-signed S3 GETs, which would need an
S3 client as well. Leaving it out makes this reference cheaper than the real operation, so a
comparison with it never flatters Rust.

botocore reads AWS_ENDPOINT_URL_DYNAMODB itself (botocore >= 1.31, boto3 >= 1.28), which is how
the local runtime points it at its fault proxy in front of moto; on AWS the variable is unset.
"""

import json
import os
import re
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer

TABLE_NAME = os.environ["TABLE_NAME"]
DYNAMODB = boto3.client("dynamodb")
DESERIALIZER = TypeDeserializer()

# `lst_` and a lower-case ULID (shared::ids::parse_id): anything else is 404 without a read.
LISTING_ID = re.compile(r"lst_[0-7][0-9a-hjkmnp-tv-z]{25}")


def handler(event, context):
    listing_id = (event.get("pathParameters") or {}).get("id", "")
    if not LISTING_ID.fullmatch(listing_id):
        return not_found(context)
    answer = DYNAMODB.get_item(
        TableName=TABLE_NAME,
        Key={"PK": {"S": f"LISTING#{listing_id}"}, "SK": {"S": "LISTING"}},
        ConsistentRead=True,
    )
    item = answer.get("Item")
    if item is None:
        return not_found(context)
    listing = {name: plain(DESERIALIZER.deserialize(value)) for name, value in item.items()}
    if listing.get("status") != "active":
        return not_found(context)
    return respond(200, "application/json", public_view(listing), context)


def public_view(listing):
    """The fields of functions/listings/src/views.rs `ListingView` for `Audience::Public`."""
    address = listing["address"]
    count, total = listing.get("rating_count", 0), listing.get("rating_total", 0)
    return {
        "listing_id": listing["listing_id"],
        "host_id": listing["host_id"],
        "host_name": listing["host_name"],
        "status": listing["status"],
        "title": listing["title"],
        "description": listing.get("description", ""),
        "property_type": listing["property_type"],
        "address": {
            "city": address["city"],
            "region": address.get("region"),
            "country": address["country"],
        },
        "timezone": listing["timezone"],
        "max_guests": listing["max_guests"],
        "bedrooms": listing["bedrooms"],
        "beds": listing["beds"],
        "bathrooms": listing["bathrooms"],
        "amenities": listing.get("amenities", []),
        "nightly_price": listing["nightly_price"],
        "cleaning_fee": listing.get("cleaning_fee"),
        "min_nights": listing["min_nights"],
        "max_nights": listing["max_nights"],
        "cancellation_policy": listing["cancellation_policy"],
        "check_in_time": listing["check_in_time"],
        "check_out_time": listing["check_out_time"],
        # Mean stars to two decimals, None before the first review (shared::listing::Rating).
        "rating": {"average": round(total / count, 2) if count else None, "count": count},
        "created_at": listing["created_at"],
        "updated_at": listing["updated_at"],
    }


def plain(value):
    """DynamoDB numbers arrive as Decimal and sets as set: JSON has integers and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def not_found(context):
    problem = {
        "type": "https://roost.dev/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "The resource does not exist.",
        "code": "not_found",
        "errors": [],
    }
    return respond(404, "application/problem+json", problem, context)


def respond(status, content_type, body, context):
    """An HTTP API payload format 2.0 answer, with X-Request-Id as Roost's functions send it."""
    return {
        "statusCode": status,
        "headers": {"content-type": content_type, "x-request-id": context.aws_request_id},
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    }
