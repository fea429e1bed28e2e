#!/usr/bin/env bash
# Issue 22: the deposit table beside the floors under it, measured in the same run. This VM's
# speed moves 2-5x between hours, so a figure in µs means little alone; what a deposit costs
# above the floors (a lone durable commit of a deposit's shape, a bare actix request) does.
#
#     bash load-tests/table_floors.sh [extra `run table` flags, e.g. --mysql URL]
#
# Prints, per rate: the hub's CPU per deposit, the two floors paced at that rate, and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin nashub --bin load-realtime --example disk_floor --example http_floor
rates=(250 500)
declare -A disk http hub
# A lone deposit's commit (16 frames of 4 KB in one write + fdatasync): its CPU, µs. Flags are
# disk_floor's; the measured line goes to stderr.
disk_floor() {
  local line
  line=$(target/release/examples/disk_floor --one-write --page 4096 --frames 16 "$@" | tail -1)
  echo "$line" >&2
  sed -E 's/.* ([0-9]+) µs CPU per commit.*/\1/' <<<"$line"
}
# A bare actix deposit request: the server's CPU, µs.
http_floor() {
  local line
  line=$(target/release/examples/http_floor --seconds 4 "$@" | tail -1)
  echo "$line" >&2
  sed -E 's/.* ([0-9.]+) us server CPU each.*/\1/' <<<"$line"
}
# The hub's CPU per deposit in the table row whose second column starts with $1.
table_cpu() {
  grep -E "^\| SQLite \| $1" <<<"$table" | sed -E 's/^([^|]*\|){3} ([0-9]+) µs.*/\2/'
}
for rate in "${rates[@]}"; do
  disk[$rate]=$(disk_floor --rounds $((rate * 4)) --every-us $((1000000 / rate)))
  http[$rate]=$(http_floor --rate "$rate")
done
out=$(target/release/load-realtime run table --users 500 --secs 8 \
  --rates "$(IFS=,; echo "${rates[*]}")" --idle-secs 1 "$@" 2>&1)
echo "$out"
table=$(grep '^| SQLite' <<<"$out")
# The same floors back to back: what the work costs when the threads never sleep between.
disk_b2b=$(disk_floor --rounds 2000)
http_b2b=$(http_floor)
hub_sat=$(table_cpu saturation)
for rate in "${rates[@]}"; do
  hub[$rate]=$(table_cpu "$rate \\(")
done
echo
echo "| deposits/s | hub CPU per deposit | durable commit floor | HTTP request floor | above the floors | hub / floors |"
echo "|---|---|---|---|---|---|"
for rate in "${rates[@]}"; do
  awk -v r="$rate" -v h="${hub[$rate]}" -v d="${disk[$rate]}" -v q="${http[$rate]}" 'BEGIN {
    f = d + q; printf "| %d | %d µs | %d µs | %.0f µs | %.0f µs | %.2f |\n", r, h, d, q, h - f, h / f }'
done
echo
echo "Paced at 500/s against back to back (saturation for the hub): every part costs more when its"
echo "threads sleep between deposits, not only the hub's."
echo
echo "| | 500/s | back to back | ratio |"
echo "|---|---|---|---|"
awk -v d="${disk[500]}" -v db="$disk_b2b" -v q="${http[500]}" -v qb="$http_b2b" \
  -v h="${hub[500]}" -v hb="$hub_sat" 'BEGIN {
    printf "| durable commit floor | %d µs | %d µs | %.2f |\n", d, db, d / db
    printf "| HTTP request floor | %.0f µs | %.1f µs | %.2f |\n", q, qb, q / qb
    printf "| hub, per deposit | %d µs | %d µs | %.2f |\n", h, hb, h / hb }'
