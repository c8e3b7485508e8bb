#!/usr/bin/env bash
# One fuzz campaign to issue 14's bar: at least MIN_EXECS executions AND at least MIN_SECS seconds.
#
#   fuzz/campaign.sh TARGET [MIN_EXECS] [MIN_SECS]      (defaults: 10000000 and 1800)
#
# Needs the instrumented binaries (see fuzz/README.md, "Campaigns"). The campaign runs libFuzzer for
# MIN_SECS seconds on a scratch corpus seeded from fuzz/corpus/TARGET; if it has not reached MIN_EXECS by
# then, it goes on with the same grown corpus for the executions still missing (libFuzzer's -runs). The log
# is /tmp/fz/TARGET.log, the summary line goes to /tmp/fz/summary.txt.
set -euo pipefail
t=$1
min_execs=${2:-10000000}
min_secs=${3:-1800}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$t
work=${STSD_FUZZ_WORK:-/tmp/fz}
seeds=$here/corpus/$t
# The SigV4 parser's seeds are replayed by stsd-sigv4's own tests.
[ "$t" = parse ] && seeds=$here/../crates/stsd-sigv4/tests/corpus
[ -d "$seeds" ] || { echo "no seed corpus $seeds" >&2; exit 2; }
mkdir -p "$work/$t" "$work/artifacts-$t"
log=$work/$t.log
: >"$log"
stat_of() { awk -v k="$1" '$0 ~ "stat::"k":" {v=$2} END {print v+0}' "$2"; }
start=$(date +%s)
nice -n 19 "$bin" "$work/$t" "$seeds" -max_total_time="$min_secs" -print_final_stats=1 \
  -artifact_prefix="$work/artifacts-$t/" >>"$log" 2>&1 || echo "exit $? (see $log)" >>"$log"
n=$(stat_of number_of_executed_units "$log")
[ "$n" -gt 0 ] || { echo "$t: the first part ran nothing (see $log)" >&2; exit 1; }
if [ "$n" -lt "$min_execs" ]; then
  echo "=== continuing: $n executions after ${min_secs}s, $((min_execs - n)) more ===" >>"$log"
  cp "$log" "$log.part1"
  nice -n 19 "$bin" "$work/$t" -runs=$((min_execs - n)) -print_final_stats=1 \
    -artifact_prefix="$work/artifacts-$t/" >"$log.part2" 2>&1 || echo "exit $? (see $log.part2)" >>"$log.part2"
  cat "$log.part2" >>"$log"
  n=$((n + $(stat_of number_of_executed_units "$log.part2")))
fi
end=$(date +%s)
cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
corp=$(find "$work/$t" -type f | wc -l)
crashes=$(find "$work/artifacts-$t" -type f | wc -l)
line="$t executions=$n seconds=$((end - start)) $cov corpus=$corp crashes=$crashes commit=$(git -C "$here" rev-parse --short HEAD)"
echo "$line" | tee -a "$work/summary.txt"
