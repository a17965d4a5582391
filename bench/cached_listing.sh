#!/usr/bin/env bash
# The cached listing against the hand-written ceiling, in alternating wrk rounds: the
# listing screen as an anonymous persisted GET (APQ hash, variables {"first": 20}),
# answered from the response cache, on 2 production workers; the ceiling app of
# ../shared/peers on the same database. Run from the project root after `make bench`
# has seeded commerce_bench, with PII_INDEX_KEY, ORDER_STATUS_TOKEN_KEY and
# GIFT_CARD_CODE_KEY exported (any 32-character values).
# Usage: bench/cached_listing.sh [ROUNDS=3] [SECONDS=12] [CONNS=16]
set -u
ROUNDS=${1:-3}; DUR=${2:-12}; CONNS=${3:-16}
P=$(pwd); PY=$P/.venv/bin; PEERS=${PEERS_DIR:-$P/../shared/peers}
KEY=$("$PY/python" -c 'import base64;print(base64.urlsafe_b64encode(b"k"*32).decode())')
env DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_bench REDIS_URL=redis://127.0.0.1:6379/14 \
  ENVIRONMENT=production PAYMENT_GATEWAY=test PII_ENCRYPTION_KEYS=$KEY \
  RATE_LIMIT_CAPACITY=1000000000 RATE_LIMIT_RESTORE_RATE=1000000000 LOG_LEVEL=WARNING \
  setsid "$PY/uvicorn" app:app --app-dir "$P" --port 8721 --workers 2 --loop uvloop --http httptools --no-access-log >/tmp/cached-project.log 2>&1 &
A=$!
DSN=postgresql://postgres@127.0.0.1:5432/commerce_bench setsid "$PY/uvicorn" app:app --app-dir "$PEERS/ceiling" \
  --port 8722 --workers 2 --loop uvloop --http httptools --no-access-log >/tmp/cached-ceiling.log 2>&1 &
B=$!
trap 'kill -- -$A -$B 2>/dev/null' EXIT
for port in 8721 8722; do for i in $(seq 60); do curl -s -o /dev/null 127.0.0.1:$port/ -d '{}' && break; sleep 0.5; done; done
PATH_QS=$("$PY/python" - "$P/bench/queries/listing_screen.graphql" <<'PY'
import hashlib, json, sys, urllib.parse
query = open(sys.argv[1]).read()
ext = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}
print("/graphql?" + urllib.parse.urlencode({"extensions": json.dumps(ext, separators=(",", ":")),
      "variables": '{"first":20}'}))
PY
)
BODY=$("$PY/python" -c 'import json,sys,hashlib; q=open(sys.argv[1]).read(); print(json.dumps({"query": q, "variables": {"first": 20}, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(q.encode()).hexdigest()}}}))' "$P/bench/queries/listing_screen.graphql")
curl -s -o /dev/null -H 'content-type: application/json' -d "$BODY" http://127.0.0.1:8721/graphql  # registers the hash
for i in 1 2 3 4; do curl -s -o /dev/null "http://127.0.0.1:8721$PATH_QS"; done  # both workers' layers
curl -s -D /tmp/cached-headers.txt -o /tmp/cached-body.json "http://127.0.0.1:8721$PATH_QS"
echo "one GET: $(head -1 /tmp/cached-headers.txt | tr -d '\r'); $(grep -i '^x-response-cache' /tmp/cached-headers.txt | tr -d '\r'); $(wc -c < /tmp/cached-body.json) bytes"
cat >/tmp/cached-get.lua <<LUA
wrk.method = "GET"
wrk.path = "$PATH_QS"
LUA
export QUERY_FILE=$P/bench/queries/listing_screen.graphql

declare -A sum
for r in $(seq "$ROUNDS"); do
  for t in project ceiling; do
    if [ $t = project ]; then out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s /tmp/cached-get.lua http://127.0.0.1:8721 2>&1)
    else out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$PEERS/listing.lua" http://127.0.0.1:8722/graphql 2>&1); fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    echo "round $r  $t  ${rps} req/s  p99 ${p99}  non-2xx ${bad:-0}"
    sum[$t]=$(awk -v a="${sum[$t]:-0}" -v b="$rps" 'BEGIN{print a+b}')
  done
done
awk -v p="${sum[project]}" -v c="${sum[ceiling]}" 'BEGIN{printf "cached project/ceiling %.2f\n", p/c}'
