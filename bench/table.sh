#!/usr/bin/env bash
# Re-measure the README's benchmark table in one run: every benchmark in sequence, on one machine, against one
# Postgres, each printing its own figures beside its same-run baseline. Logs go to one directory per run; the
# summary (the last lines of each log, with the load average before it started) goes to stdout.
#   bash bench/table.sh [--database-url URL] [--plyr-url URL --dataset JSONL] [--only name,name]
# Without --database-url each benchmark starts an embedded Postgres. --plyr-url: plyr.fm's backend seeded from
# --dataset (gen_dataset.py's 10k dataset, peers.md §1; needs `wrk`, Debian package); without it read_plyr.py is
# skipped. BENCH_OUT overrides the directory.
set -uo pipefail
cd "$(dirname "$0")/.."
DB="" PLYR="" ONLY="" DATASET=""
while [ $# -gt 0 ]; do
    case "$1" in
        --database-url) DB="$2"; shift 2 ;;
        --plyr-url) PLYR="$2"; shift 2 ;;
        --dataset) DATASET="$2"; shift 2 ;;
        --only) ONLY=",$2,"; shift 2 ;;
        *) echo "table.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
OUT="${BENCH_OUT:-/tmp/plyr-bench-table-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
PY=.venv/bin/python
DBARG=()
[ -n "$DB" ] && DBARG=(--database-url "$DB")

run() {
    local name=$1; shift
    if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then return; fi
    local started=$SECONDS
    echo "== $name ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)): $*"
    timeout 1800 "$PY" "$@" > "$OUT/$name.log" 2>&1
    echo "   exit $? after $((SECONDS - started)) s; $OUT/$name.log ends:"
    tail -n "${TAIL:-4}" "$OUT/$name.log" | cut -c1-400 | sed 's/^/   /'
}

echo "bench/table.sh: $(git rev-parse --short HEAD) on $(nproc) cores; logs in $OUT"
run decode bench/decode.py
run ingest bench/ingest.py "${DBARG[@]}"
run rebuild bench/rebuild.py --events 1000000 --repeat 2 "${DBARG[@]}"
run stall bench/stall.py "${DBARG[@]}"
TAIL=24 run lag bench/lag.py --writes 100 --repeat 3 --phases paced --burst 200 --settle 3 "${DBARG[@]}"
TAIL=12 run read bench/read.py --tracks 10000 --artists 1000 --likes 50000 --comments 5000 --seconds 5 ${DB:+--url "$DB"}
if [ -n "$PLYR" ] && [ -n "$DATASET" ]; then
    TAIL=8 run read_plyr bench/read_plyr.py --dataset "$DATASET" --plyr-url "$PLYR" ${DB:+--url "$DB"}
fi
TAIL=16 run search bench/search.py ${DB:+--db-url "$DB"}
run backfill bench/backfill.py "${DBARG[@]}"
run jetstream bench/jetstream.py "${DBARG[@]}"
TAIL=8 run stream bench/stream.py "${DBARG[@]}"
run mirror bench/mirror.py "${DBARG[@]}"
echo "bench/table.sh: done; logs in $OUT"
