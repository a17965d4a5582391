#!/usr/bin/env bash
# Before/after on one host: the listing screen of git revision BEFORE and of this working tree,
# each on 2 uvicorn workers in the production configuration, measured in alternating wrk rounds
# (so drift on a shared machine hits both alike). Prints each round and the ratio after/before
# of the sums and the median of the per-round ratios.
# BEFORE "." compares this tree with itself under two configurations: BEFORE_ENV and
# AFTER_ENV (space-separated NAME=value settings) are added to each side's environment, e.g.
#   AFTER_ENV="METRICS_TOKEN=0123456789abcdef OTEL_TRACES_EXPORTER=otlp" bench/ab/run.sh . 8
# A side that exports traces over OTLP sends them to a do-nothing local collector
# (otlp_sink.py on 127.0.0.1:8793, started here), so it pays a real export.
# Needs the bench database (make bench seeds commerce_bench once) and wrk.
# Usage (from the project root): bench/ab/run.sh BEFORE [ROUNDS=8] [SECONDS=8] [CONNS=16]
set -eu
BEFORE=${1:?usage: bench/ab/run.sh BEFORE-REV|. [ROUNDS] [SECONDS] [CONNS]}
ROUNDS=${2:-8}; DUR=${3:-8}; CONNS=${4:-16}
P=$(pwd); PY=$P/.venv/bin; HERE=$P/bench/ab
OLD=$(mktemp -d /tmp/ab-before.XXXX)
if [ "$BEFORE" = . ]; then SAME=1; OLD_TREE=$P; else SAME=0; OLD_TREE=$OLD
  git -C "$P" worktree add -q --detach "$OLD" "$BEFORE"; fi
KEY=$("$PY/python" -c 'import base64;print(base64.urlsafe_b64encode(b"k"*32).decode())')
serve() { # dir port redis-db extra-settings
  # shellcheck disable=SC2086
  env DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_bench \
    REDIS_URL=redis://127.0.0.1:6379/$3 ENVIRONMENT=production PAYMENT_GATEWAY=test \
    PII_ENCRYPTION_KEYS=$KEY PII_INDEX_KEY=bench-blind-index-key-not-for-real-data \
    ORDER_STATUS_TOKEN_KEY=bench-order-status-token-key-not-for-real-data \
    GIFT_CARD_CODE_KEY=bench-gift-card-code-key-not-for-real-data RATE_LIMIT_CAPACITY=1000000000 RATE_LIMIT_RESTORE_RATE=1000000000 \
    LOG_LEVEL=WARNING $4 setsid "$PY/uvicorn" app:app --app-dir "$1" --port "$2" --workers 2 \
    --loop uvloop --http httptools --no-access-log >"$OLD.$2.log" 2>&1 &
  echo $!
}
S=0
case "${BEFORE_ENV:-} ${AFTER_ENV:-}" in *OTEL_TRACES_EXPORTER=otlp*)
  setsid "$PY/python" "$HERE/otlp_sink.py" 8793 >"$OLD.sink.log" 2>&1 & S=$!;; esac
SINK=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8793
A=$(serve "$OLD_TREE" 8731 7 "$SINK ${BEFORE_ENV:-}"); B=$(serve "$P" 8732 8 "$SINK ${AFTER_ENV:-}")
trap 'kill -- -$A -$B 2>/dev/null; [ $S = 0 ] || kill -- -$S 2>/dev/null; [ $SAME = 1 ] || git -C "$P" worktree remove --force "$OLD"' EXIT
for port in 8731 8732; do
  for _ in $(seq 60); do curl -s -o /dev/null "127.0.0.1:$port/healthz" && break; sleep 0.5; done
done
export QUERY_FILE=$P/bench/queries/listing_screen.graphql
for port in 8731 8732; do wrk -t2 -c8 -d3s -s "$HERE/listing.lua" "http://127.0.0.1:$port/graphql" >/dev/null; done
ratios=(); sa=0; sb=0
for r in $(seq "$ROUNDS"); do
  for side in before after; do
    port=8731; [ $side = after ] && port=8732
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$HERE/listing.lua" "http://127.0.0.1:$port/graphql")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/^BAD/ {s+=$2} END {print s+0}')
    echo "round $r  $side  $rps req/s  p99 $p99  bad $bad"
    if [ $side = before ]; then a=$rps; sa=$(awk -v s=$sa -v x=$rps 'BEGIN{print s+x}')
    else sb=$(awk -v s=$sb -v x=$rps 'BEGIN{print s+x}'); ratios+=("$(awk -v a=$a -v b=$rps 'BEGIN{print b/a}')"); fi
  done
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')
awk -v a=$sa -v b=$sb -v m=$median -v n=$ROUNDS \
  'BEGIN{printf "before %.1f req/s, after %.1f req/s (means of %d rounds); after/before: %.3f of sums, %.3f median of rounds\n", a/n, b/n, n, b/a, m}'
