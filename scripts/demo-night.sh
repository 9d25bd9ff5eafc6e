#!/usr/bin/env bash
# One night of the demo that `make run` shows (the Makefile sets the variables below; the CLI test runs this same
# script on a small scale). The first night writes an example workspace with file and webhook destinations, generates
# PEOPLE people with FUTURE_DAYS more days simulated and held back, and runs every stage with delivery, as of AS_OF.
# Each later night appends the next day of events for the same people (`engine generate --next-day`: new files beside
# the old ones) and runs as of that day: identity adds only the new files, segments are compared with the previous
# run, and only the changes are delivered. A local webhook receiver (connectors/Engine.WebhookReceiver) stands in
# for the webhook's service for the length of the night. Start again with `make clean` or `rm -rf $DEMO`.
set -euo pipefail

DEMO="${DEMO:-demo}"
PEOPLE="${PEOPLE:-200000}"
AS_OF="${AS_OF:-2026-11-01}"
FUTURE_DAYS="${FUTURE_DAYS:-30}"
ENGINE="${ENGINE:-bin/engine}"
RECEIVER="${RECEIVER:-artifacts/webhook-receiver/Engine.WebhookReceiver}"
WEBHOOK_PORT="${WEBHOOK_PORT:-8787}"
# The webhook's shared secret, read by the destination and the receiver from this variable (never from a file).
export MESSAGING_WEBHOOK_SECRET="${MESSAGING_WEBHOOK_SECRET:-make-run-demo-secret}"

started=$SECONDS
state="$DEMO/data/_generator.json"
hook="$DEMO/destinations/messaging_webhook.yaml"

if [ ! -f "$DEMO/workspace.yaml" ]; then
    "$ENGINE" init "$DEMO" --webhook "http://127.0.0.1:$WEBHOOK_PORT/hooks/engine"
fi

if [ -f "$state" ]; then
    night="next night"
    "$ENGINE" generate --out "$DEMO/data" --next-day
else
    night="first night"
    "$ENGINE" generate --people "$PEOPLE" --seed 1 --out "$DEMO/data" --as-of "$AS_OF" --future-days "$FUTURE_DAYS"
fi
as_of=$(sed -n 's/.*"as_of": *"\([0-9-]*\)T.*/\1/p' "$state")
"$ENGINE" validate --workspace "$DEMO"

receiver_pid=""
receiver_log="$DEMO/webhook-receiver/receiver.log"
stop_receiver() {
    if [ -n "$receiver_pid" ]; then
        kill -TERM "$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
        receiver_pid=""
        grep '^webhook receiver: [0-9]' "$receiver_log" | tail -n 1 || true
    fi
}
trap stop_receiver EXIT

if [ -f "$hook" ]; then
    # The receiver listens where the workspace's webhook destination posts.
    url=$(sed -n 's/^settings: { url: "\(.*\)" }$/\1/p' "$hook")
    mkdir -p "$DEMO/webhook-receiver"
    "$RECEIVER" --url "$url" --store "$DEMO/webhook-receiver" --secret-env MESSAGING_WEBHOOK_SECRET >"$receiver_log" 2>&1 &
    receiver_pid=$!
    for _ in $(seq 1 150); do
        grep -q 'listening on' "$receiver_log" 2>/dev/null && break
        if ! kill -0 "$receiver_pid" 2>/dev/null; then
            receiver_pid=""
            echo "the demo's webhook receiver did not start:" >&2
            cat "$receiver_log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "$(head -n 1 "$receiver_log")"
fi

run_log=$(mktemp)
status=0
"$ENGINE" run --workspace "$DEMO" --as-of "$as_of" --deliver | tee "$run_log" || status=$?
stop_receiver
report=$(sed -n 's/^Report of run .*: \(.*report\.html\)$/\1/p' "$run_log" | tail -n 1)
rm -f "$run_log"
echo
echo "make run: the $night (as of $as_of) took $((SECONDS - started)) s."
if [ -n "$report" ]; then
    echo "Report: $report"
fi
echo "Next night (a day of new events, only the changes delivered): make run. Start again: make clean (or rm -rf $DEMO)."
exit $status
