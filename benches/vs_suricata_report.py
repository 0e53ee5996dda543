#!/usr/bin/env python3
"""Summarise a benches/vs-suricata.sh run directory: one table plus alert-set diffs.

usage: vs_suricata_report.py RUNDIR [--baseline suricata-single]

RUNDIR/<set>/input.json          {"pcap", "rules", "packets", "bytes"}
RUNDIR/<set>/<engine>/run<i>/    time.txt (/usr/bin/time -v), stdout.txt, stderr.txt,
                                 eve.json, suricata.log (Suricata only, JSON lines)

Per engine and set, every figure is the median over runs:
  wall      wall-clock seconds of the whole process (rule load + inspection + exit)
  load      rule load + engine build: Tocsin's `rules loaded ... elapsed_ms=`; Suricata's
            time from its first log line to "Engine started"
  inspect   packet-processing seconds as the engine reports them (Tocsin's summary line,
            Suricata's "time elapsed"); wall - load when an engine does not say
  Mbit/s, kpps   pcap data bytes and packets / inspect
  CPU       user + system seconds
  RSS       peak resident set size (MB)
  alerts    alert records in eve.json

Alert sets are compared as multisets of (sid, src_ip, src_port, dest_ip, dest_port, proto)
against the baseline engine's first run.
"""
import argparse
import collections
import datetime
import json
import os
import re
import statistics
import sys


def parse_time_v(path):
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("Elapsed (wall clock) time"):
                v = line.rsplit(": ", 1)[1]
                secs = 0.0
                for part in v.split(":"):
                    secs = secs * 60 + float(part)
                out["wall"] = secs
            elif line.startswith("User time (seconds)"):
                out["user"] = float(line.rsplit(": ", 1)[1])
            elif line.startswith("System time (seconds)"):
                out["sys"] = float(line.rsplit(": ", 1)[1])
            elif line.startswith("Maximum resident set size (kbytes)"):
                out["rss_mb"] = int(line.rsplit(": ", 1)[1]) / 1024.0
            elif line.startswith("Exit status"):
                out["exit"] = int(line.rsplit(": ", 1)[1])
    return out


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def suricata_times(run):
    """(load seconds, inspect seconds) from suricata.log in JSON form."""
    first = started = None
    inspect = None
    path = os.path.join(run, "suricata.log")
    for line in read_text(path).splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        ts = datetime.datetime.strptime(rec.get("timestamp", ""), "%Y-%m-%dT%H:%M:%S.%f%z")
        msg = rec.get("engine", {}).get("message", "")
        if first is None:
            first = ts
        if started is None and "Engine started" in msg:
            started = ts
        m = re.match(r"time elapsed ([0-9.]+)s", msg)
        if m:
            inspect = float(m.group(1))
    load = (started - first).total_seconds() if first and started else None
    return load, inspect


def tocsin_times(run):
    err = read_text(os.path.join(run, "stderr.txt"))
    out = read_text(os.path.join(run, "stdout.txt"))
    load = None
    for line in err.splitlines():
        if "rules loaded" in line:
            m = re.search(r"elapsed_ms=([0-9]+)", line)
            if m:
                load = int(m.group(1)) / 1000.0
    inspect = None
    m = re.search(r"([0-9]+(?:\.[0-9]+)?) s, [0-9.]+ Mbit/s", out + err)
    if m:
        inspect = float(m.group(1))
    return load, inspect


AlertKey = collections.namedtuple("AlertKey", "sid src_ip src_port dest_ip dest_port proto")


def alerts(run):
    keys = collections.Counter()
    for line in read_text(os.path.join(run, "eve.json")).splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event_type") != "alert":
            continue
        keys[AlertKey(
            rec.get("alert", {}).get("signature_id", 0),
            rec.get("src_ip", ""), rec.get("src_port", 0),
            rec.get("dest_ip", ""), rec.get("dest_port", 0),
            rec.get("proto", ""),
        )] += 1
    return keys


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def engine_order(name):
    order = ["suricata-single", "suricata-autofp", "tocsin-w1"]
    for i, prefix in enumerate(order):
        if name.startswith(prefix):
            return (i, name)
    return (len(order), name)


def summarise(set_dir):
    meta = json.load(open(os.path.join(set_dir, "input.json")))
    engines = {}
    for eng in sorted(os.listdir(set_dir), key=engine_order):
        edir = os.path.join(set_dir, eng)
        if not os.path.isdir(edir):
            continue
        runs = sorted(
            (os.path.join(edir, r) for r in os.listdir(edir) if r.startswith("run")),
            key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0),
        )
        rows = []
        for run in runs:
            tv = parse_time_v(os.path.join(run, "time.txt"))
            if not tv or tv.get("exit", 1) != 0:
                print(f"warning: {run} failed (exit {tv.get('exit')}); see its stderr.txt",
                      file=sys.stderr)
                continue
            load, inspect = (suricata_times(run) if eng.startswith("suricata")
                             else tocsin_times(run))
            if inspect is None and load is not None:
                inspect = max(tv["wall"] - load, 1e-6)
            try:
                load_avg = float(read_text(os.path.join(run, "load.txt")).strip())
            except ValueError:
                load_avg = None
            rows.append({
                "loadavg": load_avg,
                "wall": tv["wall"], "cpu": tv["user"] + tv["sys"], "rss": tv["rss_mb"],
                "load": load, "inspect": inspect, "alerts": alerts(run), "run": run,
            })
        if rows:
            engines[eng] = rows
    return meta, engines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rundir")
    ap.add_argument("--baseline", default="suricata-single")
    args = ap.parse_args()
    sets = sorted(d for d in os.listdir(args.rundir)
                  if os.path.isfile(os.path.join(args.rundir, d, "input.json")))
    header = ("| set | engine | runs | wall s | load s | inspect s | Mbit/s | kpps | CPU s "
              "| RSS MB | alerts | inspect × vs base | load × vs base | RSS × vs base |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    diffs = []
    targets = []
    for s in sets:
        meta, engines = summarise(os.path.join(args.rundir, s))
        base = engines.get(args.baseline)
        med = {}
        for eng, rows in engines.items():
            m = {k: median([r[k] for r in rows]) for k in ("wall", "cpu", "rss", "load", "inspect")}
            m["alerts"] = sum(rows[0]["alerts"].values())
            m["n"] = len(rows)
            m["mbps"] = meta["bytes"] * 8 / 1e6 / m["inspect"] if m["inspect"] else None
            m["kpps"] = meta["packets"] / 1e3 / m["inspect"] if m["inspect"] else None
            med[eng] = m
        b = med.get(args.baseline)
        for eng, m in med.items():
            def ratio(key, inverse=False):
                if not b or not b.get(key) or not m.get(key):
                    return None
                return b[key] / m[key] if inverse else m[key] / b[key]
            lines.append(
                f"| {s} | {eng} | {m['n']} | {fmt(m['wall'], '.2f')} | {fmt(m['load'], '.2f')} "
                f"| {fmt(m['inspect'], '.2f')} | {fmt(m['mbps'], ',.0f')} | {fmt(m['kpps'], ',.0f')} "
                f"| {fmt(m['cpu'], '.2f')} | {fmt(m['rss'], ',.0f')} | {m['alerts']} "
                f"| {fmt(ratio('mbps'), '.2f')} | {fmt(ratio('load'), '.2f')} | {fmt(ratio('rss'), '.2f')} |")
        # Alert-set diffs against the baseline's first run; run-to-run stability per engine.
        if base:
            ref = base[0]["alerts"]
            for eng, rows in engines.items():
                unstable = [r["run"] for r in rows[1:] if r["alerts"] != rows[0]["alerts"]]
                if eng == args.baseline:
                    if unstable:
                        diffs.append(f"- {s}: {eng} alerts differ between runs: {unstable}")
                    continue
                got = rows[0]["alerts"]
                only_ref = ref - got
                only_got = got - ref
                same = sum((ref & got).values())
                line = (f"- {s}: {eng} vs {args.baseline}: {same} identical, "
                        f"{sum(only_ref.values())} only in {args.baseline}, "
                        f"{sum(only_got.values())} only in {eng}")
                if unstable:
                    line += f" (alerts differ between runs: {len(unstable)} runs)"
                diffs.append(line)
                by_sid = collections.Counter()
                for k, n in only_ref.items():
                    by_sid[(k.sid, "missing")] += n
                for k, n in only_got.items():
                    by_sid[(k.sid, "extra")] += n
                for (sid, kind), n in sorted(by_sid.items(), key=lambda kv: -kv[1])[:12]:
                    diffs.append(f"    sid {sid}: {n} {kind}")
                if len(by_sid) > 12:
                    diffs.append(f"    ... {len(by_sid) - 12} more (sid, kind) pairs")
        # The issue's targets, where this set has the engines they name.
        t1 = med.get("tocsin-w1")
        if b and t1 and t1.get("mbps") and b.get("mbps"):
            r = t1["mbps"] / b["mbps"]
            targets.append(f"- {s}: Tocsin 1 worker inspects {r:.2f}× Suricata single "
                           f"(target ≥ 1.5×): {'met' if r >= 1.5 else 'NOT met'}")
        multi = [e for e in med if e.startswith("tocsin-w") and e != "tocsin-w1"]
        for e in multi:
            if t1 and med[e].get("mbps") and t1.get("mbps"):
                r = med[e]["mbps"] / t1["mbps"]
                targets.append(f"- {s}: Tocsin {e[len('tocsin-w'):]} workers inspect {r:.2f}× "
                               f"Tocsin 1 worker (target ≥ 1.8×): {'met' if r >= 1.8 else 'NOT met'}")
        if b and t1 and "et-open" in s and b.get("load") and t1.get("load"):
            r = t1["load"] / b["load"]
            targets.append(f"- {s}: Tocsin rule load {r:.2f}× Suricata's (target ≤ 0.5×): "
                           f"{'met' if r <= 0.5 else 'NOT met'}")
        if b and t1:
            peak = max(m["rss"] for e, m in med.items() if e.startswith("tocsin"))
            r = peak / b["rss"]
            targets.append(f"- {s}: Tocsin peak RSS {r:.2f}× Suricata single's (target ≤ 1×): "
                           f"{'met' if r <= 1.0 else 'NOT met'}")
        loads = [r["loadavg"] for rows in engines.values() for r in rows
                 if r.get("loadavg") is not None]
        load_note = (f"; load average {min(loads):.1f}–{max(loads):.1f} at run starts"
                     if loads else "")
        lines.append(f"|  | *{meta['pcap']}: {meta['packets']:,} packets, "
                     f"{meta['bytes'] / 1e6:,.1f} MB; rules {meta['rules']}{load_note}* |"
                     + " |" * 12)
    print("\n".join(lines))
    print("\nAlert sets (sid + 5-tuple multiset):")
    print("\n".join(diffs) if diffs else "- no baseline runs to compare")
    if targets:
        print("\nTargets (issue 5):")
        print("\n".join(targets))


if __name__ == "__main__":
    main()
