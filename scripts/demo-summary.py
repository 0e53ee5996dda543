#!/usr/bin/env python3
"""Prints the demo's summary: alerts, incidents and tickets per agency, the SLA escalation,
and the curl commands a responder uses. Called by scripts/demo.

Usage: demo-summary.py API ADMIN_TOKEN CLICKHOUSE_URL DATABASE RESPONDER_TOKEN RESPONDER_AGENCY
"""
import json
import sys
import time
import urllib.request

API, ADMIN, CH, DB, RESPONDER, RESP_AGENCY = sys.argv[1:7]


def call(path, token=ADMIN, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ch(sql):
    req = urllib.request.Request(f"{CH}/?database={DB}", data=sql.encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return [line.split("\t") for line in r.read().decode().splitlines() if line]


def all_pages(path):
    items, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        _, page = call(path + (f"{sep}cursor={cursor}" if cursor else ""))
        items += page.get("items", [])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def heading(text):
    print(f"\n\033[1m{text}\033[0m")


heading("Alerts stored, by agency and signature")
for agency, sid, sig, n in ch(
    "SELECT agency, signature_id, any(signature), count() FROM alerts "
    "GROUP BY agency, signature_id ORDER BY agency, count() DESC"
):
    print(f"  {agency:<14} {n:>5}  sid {sid:<8} {sig}")

incidents = all_pages("/api/v1/incidents?limit=200")
heading(f"Incidents ({len(incidents)})")
for i in sorted(incidents, key=lambda i: (i["agency"], i["severity"], i["first_seen"])):
    sigs = "; ".join(i.get("signatures", [])[:2])
    print(f"  {i['agency']:<14} sev {i['severity']}  {i['alert_count']:>4} alerts  "
          f"{i['kind']:<9} {sigs}  (from {', '.join(i.get('src_ips', [])[:2])})")

tickets = all_pages("/api/v1/tickets?limit=200")
heading(f"Tickets ({len(tickets)}), routed to the agency owning the attacked network")
by_owner = {}
for t in tickets:
    by_owner.setdefault(t["owner_agency"], []).append(t)
for owner, ts in sorted(by_owner.items()):
    states = ", ".join(f"{s} {sum(1 for t in ts if t['status'] == s)}"
                       for s in sorted({t["status"] for t in ts}))
    up = sum(1 for t in ts if t["agency"] != owner)
    moved = f"; {up} already escalated" if up else ""
    sev = ", ".join(f"sev {v}: {sum(1 for t in ts if t['severity'] == v)}"
                    for v in sorted({t["severity"] for t in ts}))
    print(f"  {owner:<14} {len(ts):>3} tickets ({sev}): {states}{moved}")

# A responder acknowledges one ticket of their province; the others wait past the demo SLA.
mine = [t for t in tickets if t["agency"] == RESP_AGENCY and t["status"] == "new"]
acked = None
if mine:
    acked = mine[0]
    st, body = call(f"/api/v1/tickets/{acked['id']}/acknowledge", RESPONDER, "POST", {})
    heading(f"Responder of {RESP_AGENCY} acknowledges ticket {acked['id']}: HTTP {st}, status {body.get('status')}")

heading("Waiting for the demo SLA (30 s) to run out on an unacknowledged ticket (up to 90 s)")
deadline = time.time() + 90
escalated = []
while time.time() < deadline:
    escalated = [t for t in all_pages("/api/v1/tickets?limit=200") if t.get("escalation_level", 0) > 0]
    if escalated:
        break
    time.sleep(2)
if escalated:
    t = escalated[0]
    print(f"  ticket {t['id']} (severity {t['severity']}) was not acknowledged in time and moved "
          f"up to {t['agency']} (escalation level {t['escalation_level']})")
    for a in ch(
        f"SELECT formatDateTime(at, '%T'), action, actor, comment FROM ticket_events "
        f"WHERE ticket_id = toUUID('{t['id']}') ORDER BY at_us, seq"
    ):
        print(f"    {a[0]}  {a[1]:<13} by {a[2]:<22} {a[3]}")
else:
    print("  no escalation within 90 s (see .demo/correlator.log)")

tid = acked["id"] if acked else (tickets[0]["id"] if tickets else "TICKET_ID")
heading("Try the responder API yourself (with ./run demo --keep; tokens in .demo/env)")
print(f"""  export TOCSIN_API={API} TOKEN=$(sed -n 's/^TOCSIN_RESPONDER_TOKEN=//p' .demo/env)
  curl -s -H "Authorization: Bearer $TOKEN" "$TOCSIN_API/api/v1/tickets?status=new"
  curl -s -X POST -H "Authorization: Bearer $TOKEN" "$TOCSIN_API/api/v1/tickets/{tid}/assign" -d '{{"assignee":"alice"}}'
  curl -s -X POST -H "Authorization: Bearer $TOKEN" "$TOCSIN_API/api/v1/tickets/{tid}/status" -d '{{"status":"in_progress","comment":"on it"}}'
  API docs: $TOCSIN_API/api/v1/docs (OpenAPI: /api/v1/openapi.json); metrics: /metrics
  Dashboards: dashboards/README.md (import into Grafana with the ClickHouse datasource)""")
