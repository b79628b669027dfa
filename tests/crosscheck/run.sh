#!/usr/bin/env bash
# Cross-checks putevents-endpoint's SigV4 verifier against the AWS SDK for
# JavaScript v3: starts the endpoint on a free port, runs crosscheck.mjs
# against it, stops it. Exits nonzero on any failure.
#   usage: run.sh PATH/TO/putevents-endpoint
set -uo pipefail

bin=${1:-}
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "usage: run.sh PATH/TO/putevents-endpoint (got '${bin}')" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "crosscheck: node and npm are required (apt-get install nodejs npm)" >&2
    exit 1
fi
if [[ ! -d "$here/node_modules/@aws-sdk/client-eventbridge" ]]; then
    echo "crosscheck: installing the pinned AWS SDK (npm ci)"
    if ! (cd "$here" && npm ci --no-audit --no-fund); then
        echo "crosscheck: npm ci failed" >&2
        exit 1
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crosscheck.XXXXXX")
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

akid="AKIDCROSSCHECK000001"
secret="crosscheck/Secret+Key/0000000000000000000"
region="us-east-1"

"$bin" --port 0 --port-file "$tmp/port" --credentials "$akid:$secret" \
    --credentials "AKIDCROSSCHECK000002:other-secret" --region "$region" \
    2>"$tmp/endpoint.log" &
pid=$!

port=""
for _ in $(seq 1 100); do
    if [[ -s "$tmp/port" ]]; then
        port=$(cat "$tmp/port")
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$port" ]]; then
    echo "crosscheck: the endpoint did not start; its log:" >&2
    cat "$tmp/endpoint.log" >&2
    echo "crosscheck: 0 passed, 1 failed"
    exit 1
fi

CROSSCHECK_URL="http://127.0.0.1:$port" CROSSCHECK_REGION="$region" \
    CROSSCHECK_AKID="$akid" CROSSCHECK_SECRET="$secret" \
    node --no-warnings "$here/crosscheck.mjs"
rc=$?

kill -TERM "$pid"
wait "$pid"
ep_rc=$?
pid=""
if [[ $ep_rc -ne 0 ]]; then
    echo "crosscheck: the endpoint exited with status $ep_rc after SIGTERM (expected 0)" >&2
    rc=1
fi
if [[ $rc -ne 0 ]]; then
    echo "crosscheck: failed; endpoint log:" >&2
    tail -n 50 "$tmp/endpoint.log" >&2
fi
exit $rc
