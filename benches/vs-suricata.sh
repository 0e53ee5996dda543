#!/usr/bin/env bash
# Tocsin vs Suricata 7 on the same machine, files, rules and cores; prints one table
# (throughput, CPU, rule load time, peak RSS, alerts, ratios) and the alert-set diffs.
#
# Usage: benches/vs-suricata.sh [--runs N] [--sets LIST] [--threads N] [--size-mb N]
#                               [--out DIR] [--no-build] [--shared DIR]
#   --runs N      runs per engine and set; figures are medians (default 3, at least 3)
#   --sets LIST   comma-separated subset of: gen-1k,gen-10k,gen-et-open,real-et-open (default all)
#   --threads N   threads for Suricata autofp and Tocsin's multi-worker run (default: nproc)
#   --size-mb N   size of the generated pcap (default 200)
#   --out DIR     inputs cache and results (default bench-out/, gitignored)
#   --no-build    use target/release/tocsin as it is
#   --shared DIR  generators and test data (default: ../shared next to the repo)
#
# Sets: the generated pcap (../shared/tools/gen-traffic.py) with 1k and 10k generated rules
# (gen-rules.py, default HOME_NET) and with all of ET Open (commented-out rules enabled, as in
# shared/testdata/pcaps/suricata-7-et-open/README.md; HOME_NET = EXTERNAL_NET = any), and the
# real captures of shared/testdata/pcaps merged into one file, with ET Open.
# Engines per set, run interleaved (one round = each engine once) so load drifts hit all alike:
#   suricata-single     suricata --runmode single
#   suricata-autofp-N   suricata --runmode autofp, N detect threads
#   tocsin-w1           tocsin sensor --workers 1   (plain `tocsin sensor` if the flag is absent)
#   tocsin-wN           tocsin sensor --workers N   (skipped if the flag is absent)
# Every run is wrapped in /usr/bin/time -v; python3 summarises (benches/vs_suricata_report.py).
set -euo pipefail

runs=3
sets="gen-1k,gen-10k,gen-et-open,real-et-open"
threads=$(nproc)
size_mb=200
build=1
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench-out"
shared="$root/../shared"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --sets) sets=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --shared) shared=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "vs-suricata: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$runs" -lt 3 ]; then echo "vs-suricata: --runs must be at least 3 (medians)" >&2; exit 2; fi
if [ "$threads" -lt 2 ]; then echo "vs-suricata: --threads must be at least 2" >&2; exit 2; fi

cd "$root"
log() { echo "vs-suricata: $*" >&2; }
if [ ! -f "$shared/tools/gen-traffic.py" ] || [ ! -d "$shared/testdata/pcaps" ]; then
  log "$shared/tools and $shared/testdata not found (give --shared DIR)"
  exit 1
fi
shared=$(cd "$shared" && pwd)

# ------------------------------------------------------------------ dependencies
command -v suricata >/dev/null 2>&1 || scripts/install-deps --bench
for tool in suricata python3 /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is required"; exit 1; }
done
if [ "$build" -eq 1 ]; then
  log "building target/release/tocsin"
  cargo build --release --quiet --bin tocsin
fi
tocsin="$root/target/release/tocsin"
[ -x "$tocsin" ] || { log "$tocsin is missing (drop --no-build)"; exit 1; }
if "$tocsin" sensor --help 2>/dev/null | grep -q -- '--workers'; then
  has_workers=1
else
  has_workers=0
  log "this tocsin has no --workers flag: running it single-threaded only"
fi

# ------------------------------------------------------------------ inputs (cached)
mkdir -p "$out"
traffic="$out/traffic-${size_mb}mb.pcap"
if [ ! -s "$traffic" ]; then
  log "generating $traffic"
  python3 "$shared/tools/gen-traffic.py" "$traffic" --size-mb "$size_mb" --manifest "${traffic%.pcap}.json"
fi
for n in 1000 10000; do
  f="$out/gen-$((n / 1000))k.rules"
  [ -s "$f" ] || python3 "$shared/tools/gen-rules.py" "$n" "$f"
done
et="$out/et-enabled.rules"
if [ ! -s "$et" ]; then
  cat "$shared"/testdata/rules/et-open/rules/*.rules | sed -E 's/^# ?(alert|drop|reject|pass) /\1 /' > "$et"
fi
real="$out/real-pcaps.pcap"
if [ ! -s "$real" ]; then
  # One classic pcap, packets in time order (mergecap ships with tshark).
  mergecap -F pcap -w "$real" "$shared"/testdata/pcaps/*.pcap
fi
yaml="$out/suricata-bench.yaml"
cat > "$yaml" <<'YAML'
%YAML 1.1
---
# Suricata's shipped config, with alerts as the only EVE output.
include: /etc/suricata/suricata.yaml
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
YAML

# Packets and captured bytes of a classic pcap (what Mbit/s and packets/s divide).
pcap_counts() {
  python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    magic = f.read(24)[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    packets = data = 0
    while True:
        h = f.read(16)
        if len(h) < 16:
            break
        caplen = struct.unpack(end + "IIII", h)[2]
        f.seek(caplen, 1)
        packets += 1
        data += caplen
print(packets, data)
PY
}

# ------------------------------------------------------------------ runs
stamp=$(date -u +%Y%m%dT%H%M%SZ)
rundir="$out/vs-$stamp"
mkdir -p "$rundir"
ratio=$(python3 -c "import os; print(f'{$threads / os.cpu_count():.4f}')")
any_vars=(--set vars.address-groups.HOME_NET=any --set vars.address-groups.EXTERNAL_NET=any)
tocsin_any=(--set vars.address.HOME_NET=any --set vars.address.EXTERNAL_NET=any)

# run_one SET ENGINE I PCAP RULES VARS(any|default)
run_one() {
  local set=$1 engine=$2 i=$3 pcap=$4 rules=$5 vars=$6
  local dir="$rundir/$set/$engine/run$i"
  mkdir -p "$dir"
  local cmd
  case "$engine" in
    suricata-single|suricata-autofp-*)
      cmd=(suricata -c "$yaml" -r "$pcap" -S "$rules" -l "$dir" -k none
           --set unix-command.enabled=no --set stream.reassembly.randomize-chunk-size=no
           --set logging.outputs.1.file.type=json)
      if [ "$engine" = suricata-single ]; then
        cmd+=(--runmode single)
      else
        cmd+=(--runmode autofp --set "threading.detect-thread-ratio=$ratio")
      fi
      [ "$vars" = any ] && cmd+=("${any_vars[@]}")
      ;;
    tocsin-w*)
      local w=${engine#tocsin-w}
      cmd=("$tocsin" sensor -r "$pcap" -S "$rules" -l "$dir" --no-progress)
      [ "$has_workers" -eq 1 ] && cmd+=(--workers "$w")
      [ "$vars" = any ] && cmd+=("${tocsin_any[@]}")
      ;;
  esac
  printf '%q ' "${cmd[@]}" > "$dir/command.txt"
  cut -d' ' -f1 /proc/loadavg > "$dir/load.txt"
  if ! /usr/bin/time -v -o "$dir/time.txt" "${cmd[@]}" > "$dir/stdout.txt" 2> "$dir/stderr.txt"; then
    log "$set/$engine run $i failed; see $dir/stderr.txt"
  fi
}

IFS=, read -r -a wanted <<< "$sets"
for set in "${wanted[@]}"; do
  case "$set" in
    gen-1k) pcap=$traffic; rules="$out/gen-1k.rules"; vars=default ;;
    gen-10k) pcap=$traffic; rules="$out/gen-10k.rules"; vars=default ;;
    gen-et-open) pcap=$traffic; rules=$et; vars=any ;;
    real-et-open) pcap=$real; rules=$et; vars=any ;;
    *) log "unknown set '$set'"; exit 2 ;;
  esac
  mkdir -p "$rundir/$set"
  read -r packets bytes < <(pcap_counts "$pcap")
  python3 -c 'import json,sys; print(json.dumps({"pcap": sys.argv[1], "rules": sys.argv[2], "packets": int(sys.argv[3]), "bytes": int(sys.argv[4])}))' \
    "$(basename "$pcap")" "$(basename "$rules") ($(grep -cE '^(alert|drop|reject|pass) ' "$rules") rules)" "$packets" "$bytes" \
    > "$rundir/$set/input.json"
  engines=(suricata-single "suricata-autofp-$threads" tocsin-w1)
  [ "$has_workers" -eq 1 ] && engines+=("tocsin-w$threads")
  cat "$pcap" > /dev/null # page cache: every run reads from memory
  for i in $(seq 1 "$runs"); do
    for engine in "${engines[@]}"; do
      log "$set: $engine run $i/$runs (load average $(cut -d' ' -f1 /proc/loadavg))"
      run_one "$set" "$engine" "$i" "$pcap" "$rules" "$vars"
    done
  done
done

# ------------------------------------------------------------------ report
report="$rundir/report.md"
{
  echo "# Tocsin vs Suricata, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(suricata -V 2>&1 | head -1),"
  echo "tocsin $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $runs runs per cell (medians), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  python3 "$root/benches/vs_suricata_report.py" "$rundir"
} > "$report"
cat "$report"
log "results in $rundir (report.md, per-run logs)"
