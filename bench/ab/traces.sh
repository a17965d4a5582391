#!/usr/bin/env bash
# Tracing off vs on, this working tree on both sides: the listing screen on 2 uvicorn
# workers each in the production configuration, one with OTEL_TRACES_EXPORTER unset, the
# other exporting over OTLP/HTTP to a do-nothing local collector (otlp_sink.py), measured
# in alternating wrk rounds. Extra arguments are env assignments for the traced side,
# e.g. OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1.
# Usage (from the project root): ROUNDS=6 DUR=8 bench/ab/traces.sh [VAR=value ...]
set -eu
ROUNDS=${ROUNDS:-6}; DUR=${DUR:-8}; CONNS=${CONNS:-16}; REDIS_DB=${REDIS_DB:-10}
P=$(pwd); PY=$P/.venv/bin; HERE=$P/bench/ab; LOGS=$(mktemp -d /tmp/ab-traces.XXXX)
KEY=$("$PY/python" -c 'import base64;print(base64.urlsafe_b64encode(b"k"*32).decode())')
serve() { # port env...
  local port=$1; shift
  env DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_bench \
    REDIS_URL=redis://127.0.0.1:6379/$REDIS_DB ENVIRONMENT=production PAYMENT_GATEWAY=test \
    PII_ENCRYPTION_KEYS=$KEY PII_INDEX_KEY=bench-blind-index-key-not-for-real-data \
    ORDER_STATUS_TOKEN_KEY=bench-order-status-token-key-not-for-real-data \
    GIFT_CARD_CODE_KEY=bench-gift-card-code-key-not-for-real-data RATE_LIMIT_CAPACITY=1000000000 RATE_LIMIT_RESTORE_RATE=1000000000 \
    LOG_LEVEL=WARNING "$@" setsid "$PY/uvicorn" app:app --app-dir "$P" --port "$port" --workers 2 \
    --loop uvloop --http httptools --no-access-log >"$LOGS/$port.log" 2>&1 &
  echo $!
}
setsid "$PY/python" "$HERE/otlp_sink.py" 8793 >"$LOGS/sink.log" 2>&1 & S=$!
A=$(serve 8791 OTEL_TRACES_EXPORTER=none)
B=$(serve 8792 OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8793 "$@")
trap 'kill -- -$A -$B -$S 2>/dev/null' EXIT
for port in 8791 8792; do
  for _ in $(seq 60); do curl -s -o /dev/null "127.0.0.1:$port/healthz" && break; sleep 0.5; done
done
export QUERY_FILE=$P/bench/queries/listing_screen.graphql
for port in 8791 8792; do wrk -t2 -c8 -d3s -s "$HERE/listing.lua" "http://127.0.0.1:$port/graphql" >/dev/null; done
ratios=(); sa=0; sb=0
for r in $(seq "$ROUNDS"); do
  for side in off on; do
    port=8791; [ $side = on ] && port=8792
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$HERE/listing.lua" "http://127.0.0.1:$port/graphql")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/^BAD/ {s+=$2} END {print s+0}')
    echo "round $r  $side  $rps req/s  p99 $p99  bad $bad"
    if [ $side = off ]; then a=$rps; sa=$(awk -v s=$sa -v x=$rps 'BEGIN{print s+x}')
    else sb=$(awk -v s=$sb -v x=$rps 'BEGIN{print s+x}'); ratios+=("$(awk -v a=$a -v b=$rps 'BEGIN{print b/a}')"); fi
  done
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')
awk -v a=$sa -v b=$sb -v m=$median -v n=$ROUNDS \
  'BEGIN{printf "off %.1f req/s, on %.1f req/s (means of %d rounds); on/off: %.3f of sums, %.3f median of rounds\n", a/n, b/n, n, b/a, m}'
