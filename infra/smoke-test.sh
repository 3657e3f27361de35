#!/usr/bin/env bash
# After a deploy: GET /v1/health and GET /v1/openapi.json must answer 200, the health answer must
# be {"status":"ok"} and the document an OpenAPI one. Exits non-zero (and says which) otherwise.
#
#   infra/smoke-test.sh https://abc123.execute-api.us-east-1.amazonaws.com   # the stack's ApiUrl
#   infra/smoke-test.sh --stack roost-dev [--region us-east-1]             # ApiUrl read from the stack
#
# The deploy workflow (.github/workflows/deploy-stage.yml) runs it after every `sam deploy`;
# tests/tests/e2e/deploy.rs runs it against the local stack, and against a URL that must fail.
set -euo pipefail

if [[ "${1:-}" == "--stack" ]]; then
  stack="${2:?--stack needs a stack name}"
  region_args=()
  if [[ "${3:-}" == "--region" ]]; then region_args=(--region "${4:?--region needs a region}"); fi
  api_url="$(aws cloudformation describe-stacks "${region_args[@]}" --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue" --output text)"
  if [[ -z "$api_url" || "$api_url" == "None" ]]; then
    echo "smoke test: stack $stack has no ApiUrl output" >&2
    exit 1
  fi
else
  api_url="${1:?usage: smoke-test.sh API_URL | --stack NAME [--region REGION]}"
fi
api_url="${api_url%/}"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# get PATH PATTERN: 200 and the extended regular expression PATTERN in the body, or exit 1. A fresh stack's
# first request can meet a cold start: a few retries on connection errors and 5xx.
get() {
  local code
  code="$(curl --silent --show-error --max-time 20 --retry 3 --retry-delay 2 \
    --output "$body" --write-out '%{http_code}' "$api_url$1")" || code="curl failed"
  if [[ "$code" != "200" ]]; then
    echo "smoke test: GET $api_url$1 answered $code, not 200" >&2
    head -c 500 "$body" >&2 || true
    exit 1
  fi
  if ! grep -Eq "$2" "$body"; then
    echo "smoke test: GET $api_url$1 answered 200 without $2" >&2
    head -c 500 "$body" >&2
    exit 1
  fi
  echo "smoke test: GET $api_url$1 200"
}

get /v1/health '"status" *: *"ok"'
get /v1/openapi.json '"openapi" *: *"3\.'
