#!/usr/bin/env python3
"""Builds Tocsin's Grafana dashboards (dashboards/*.json) from the definitions below.

Edit this file, run `python3 dashboards/build.py`, commit both. `--check` exits 1 when a
committed JSON file differs from what this script builds (the test suite runs it).

Every panel query is ClickHouse SQL for the official datasource plugin
(grafana-clickhouse-datasource, v4), in the target's `rawSql`. Macros used: `$__timeFilter(col)`,
`$__fromTime`, `$__toTime`, `$__interval_s`, `$__conditionalAll(cond, $var)`; variables use
Grafana's `${var}`, `${var:csv}`, `${var:singlequote}` formats. Time buckets are written as
`toDateTime(intDiv(toUInt32(col), $__interval_s) * $__interval_s)` instead of the plugin's
`$__timeInterval(col)`, which expands to `toStartOfInterval`: ClickHouse 18.16 (Debian's server)
lacks that function, and the intDiv form gives the same buckets on every server.
"""
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
SCHEMA_VERSION = 39

# The agency subtree picked by the `agency` and `include_children` variables.
SUBTREE = (
    "(SELECT code FROM agencies FINAL WHERE deleted = 0 AND (code = '${agency}' "
    "OR ('${include_children}' = 'yes' AND has(ancestors, '${agency}'))))"
)
ACTIVE = "status NOT IN ('resolved', 'closed', 'false_positive')"


def bucket(col):
    return f"toDateTime(intDiv(toUInt32({col}), $__interval_s) * $__interval_s)"


def target(sql, fmt):
    # format: 0 = table, 1 = time series (the plugin's Format enum); queryType mirrors it.
    return {
        "refId": "A",
        "datasource": DS,
        "editorType": "sql",
        "format": fmt,
        "queryType": "timeseries" if fmt == 1 else "table",
        "rawSql": " ".join(sql.split()),
    }


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self):
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


def panel(lay, kind, title, sql, w, h, description, fmt=None, unit=None, links=None, options=None):
    fmt = (1 if kind == "timeseries" else 0) if fmt is None else fmt
    p = {
        "id": lay.next_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": lay.place(w, h),
        "targets": [target(sql, fmt)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": options or {},
    }
    lay.next_id += 1
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if links:
        p["fieldConfig"]["defaults"]["links"] = links
    return p


def link(title, uid, params):
    return {"title": title, "url": f"/d/{uid}?{params}&${{__url_time_range}}"}


def datasource_var():
    return {
        "name": "datasource",
        "label": "ClickHouse",
        "type": "datasource",
        "query": "grafana-clickhouse-datasource",
        "hide": 0,
    }


def query_var(name, label, sql, multi=False, include_all=False, all_value=None):
    v = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": " ".join(sql.split()),
        "refresh": 2,
        "multi": multi,
        "includeAll": include_all,
        "hide": 0,
        "sort": 0,
    }
    if all_value is not None:
        v["allValue"] = all_value
    return v


def custom_var(name, label, values, default, multi=False, include_all=False):
    opts = [{"text": t, "value": val, "selected": val == default} for t, val in values]
    cur = next((o for o in opts if o["value"] == default), {"text": "All", "value": "$__all"})
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(f"{t} : {val}" for t, val in values),
        "options": opts,
        "current": {"text": cur["text"], "value": cur["value"], "selected": True},
        "multi": multi,
        "includeAll": include_all,
        "hide": 0,
    }


def agency_vars():
    return [
        query_var(
            "agency",
            "Agency",
            "SELECT code FROM agencies FINAL WHERE deleted = 0 ORDER BY level, code",
        ),
        custom_var("include_children", "Include children", [("yes", "yes"), ("no", "no")], "yes"),
    ]


def severity_var():
    return custom_var(
        "severity",
        "Severity",
        [("1 high", "1"), ("2 medium", "2"), ("3 low", "3"), ("4 info", "4")],
        "$__all",
        multi=True,
        include_all=True,
    ) | {"allValue": "1,2,3,4", "current": {"text": "All", "value": "$__all"}}


def dashboard(uid, title, description, panels, variables, tags, links=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["tocsin"] + tags,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-24h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": [datasource_var()] + variables},
        "annotations": {"list": []},
        "links": [
            {
                "title": t,
                "type": "link",
                "url": f"/d/{u}",
                "icon": "dashboard",
                "tooltip": "",
                "tags": [],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
            }
            for t, u in links
        ],
        "panels": panels,
    }


def national():
    lay = Layout()
    to_agency = [link("Agency ${__data.fields.agency}", "tocsin-agency", "var-agency=${__data.fields.agency}")]
    sev = "severity IN (${severity:csv})"
    panels = [
        panel(lay, "stat", "Alerts", f"SELECT sum(alerts) AS alerts FROM alerts_per_minute WHERE $__timeFilter(minute) AND {sev}", 6, 4,
              "Alerts received in the time range (rollup alerts_per_minute)."),
        panel(lay, "stat", "Incidents", f"SELECT count() AS incidents FROM incidents FINAL WHERE $__timeFilter(last_seen) AND {sev}", 6, 4,
              "Incidents with activity in the time range."),
        panel(lay, "stat", "Open tickets", f"SELECT count() AS open_tickets FROM tickets FINAL WHERE {ACTIVE} AND {sev}", 6, 4,
              "Tickets not yet resolved, closed or marked false positive, all time."),
        panel(lay, "stat", "SLA breaches", f"SELECT count() AS breaches FROM ticket_events WHERE action = 'sla_breached' AND $__timeFilter(at) AND {sev}", 6, 4,
              "Acknowledge and resolve deadlines missed in the time range (each level a ticket passes counts).",
              options={"colorMode": "background"}),
        panel(lay, "timeseries", "Alerts per minute by severity",
              f"SELECT {bucket('minute')} AS time, concat('severity ', toString(severity)) AS sev, "
              f"sum(alerts) * 60 / $__interval_s AS alerts_per_min FROM alerts_per_minute "
              f"WHERE $__timeFilter(minute) AND {sev} GROUP BY time, sev ORDER BY time", 12, 8,
              "Alert rate from the alerts_per_minute rollup, one series per severity.", unit="short"),
        panel(lay, "timeseries", "Incidents by severity",
              f"SELECT {bucket('first_seen')} AS time, concat('severity ', toString(severity)) AS sev, count() AS incidents "
              f"FROM incidents FINAL WHERE $__timeFilter(first_seen) AND {sev} GROUP BY time, sev ORDER BY time", 12, 8,
              "New incidents per interval, by the time their first alert was seen."),
        panel(lay, "table", "Top signatures",
              f"SELECT signature_id, any(signature) AS signature, sum(alerts) AS alerts, uniqExact(agency) AS agencies "
              f"FROM alerts_per_minute WHERE $__timeFilter(minute) AND {sev} "
              f"GROUP BY signature_id ORDER BY alerts DESC LIMIT 20", 12, 9,
              "Signatures by alert count in the time range."),
        panel(lay, "table", "Top source addresses",
              "SELECT src_ip, if(position(src_ip, ':') = 0, IPv4NumToStringClassC(IPv4StringToNum(src_ip)), '') AS src_net_24, "
              "sum(alerts) AS alerts, uniqExact(agency) AS agencies FROM alerts_by_src_hour "
              "WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime "
              "GROUP BY src_ip ORDER BY alerts DESC LIMIT 20", 12, 9,
              "Attacking addresses by alert count (hourly rollup), with their IPv4 /24. ASN needs an "
              "ASN dictionary on the server (not shipped)."),
        panel(lay, "table", "Tickets per level-1 agency",
              f"SELECT agency, open, escalated, tickets, breaches FROM "
              f"(SELECT level1_agency AS agency, countIf({ACTIVE}) AS open, countIf(escalation_level > 0) AS escalated, "
              f"count() AS tickets FROM tickets FINAL WHERE $__timeFilter(opened_at) GROUP BY agency) "
              f"ANY LEFT JOIN (SELECT level1_agency AS agency, count() AS breaches FROM ticket_events "
              f"WHERE action = 'sla_breached' AND $__timeFilter(at) GROUP BY agency) USING agency "
              f"ORDER BY open DESC, agency",
              12, 9, "Tickets opened in the range, rolled up to the ministry or province they belong to. "
              "Click an agency to open its dashboard.", links=to_agency),
        panel(lay, "table", "Sensor health",
              "SELECT sensor, any(agency) AS agency, max(received_at) AS last_seen, "
              "dateDiff('second', max(received_at), now()) AS silent_s, argMax(packets, ts) AS packets_seen, "
              "round(100 * argMax(kernel_drops + queue_drops, ts) / greatest(argMax(packets, ts), 1), 3) AS drop_pct, "
              "argMax(rules_failed, ts) AS rule_errors, argMax(spool_bytes, ts) AS spooled_bytes "
              "FROM sensor_stats WHERE $__timeFilter(ts) GROUP BY sensor ORDER BY silent_s DESC",
              12, 9, "Latest stats record of every sensor: when it last reported, packets seen, share "
              "dropped (kernel + queue), rule load errors and bytes waiting in its spool.",
              links=[link("Sensor ${__data.fields.sensor}", "tocsin-sensors", "var-sensor=${__data.fields.sensor}")]),
    ]
    return dashboard(
        "tocsin-national", "Tocsin / National overview",
        "Alerts, incidents, tickets and sensors across the whole network.",
        panels, [severity_var()], ["soc"],
        links=[("Agency", "tocsin-agency"), ("Sensor operations", "tocsin-sensors")],
    )


def agency():
    lay = Layout()
    sev = "severity IN (${severity:csv})"
    to_incident = [link("Incident ${__data.fields.id}", "tocsin-incident", "var-incident=${__data.fields.id}")]
    panels = [
        panel(lay, "stat", "Incidents", f"SELECT count() AS incidents FROM incidents FINAL WHERE agency IN {SUBTREE} AND $__timeFilter(last_seen) AND {sev}", 6, 4,
              "Incidents of the agency (and its children) with activity in the range."),
        panel(lay, "stat", "Open tickets", f"SELECT count() AS open_tickets FROM tickets FINAL WHERE agency IN {SUBTREE} AND {ACTIVE} AND {sev}", 6, 4,
              "Active tickets currently held by the agency subtree (escalated tickets count at their new holder)."),
        panel(lay, "stat", "MTTA", f"SELECT avgIf((acknowledged_us - opened_us) / 1e6, acknowledged_us > 0) AS mtta FROM tickets FINAL "
              f"WHERE owner_agency IN {SUBTREE} AND $__timeFilter(opened_at) AND {sev}", 6, 4,
              "Mean time from ticket opening to acknowledgement.", unit="s"),
        panel(lay, "stat", "MTTR", f"SELECT avgIf((resolved_us - opened_us) / 1e6, resolved_us > 0) AS mttr FROM tickets FINAL "
              f"WHERE owner_agency IN {SUBTREE} AND $__timeFilter(opened_at) AND {sev}", 6, 4,
              "Mean time from ticket opening to resolution.", unit="s"),
        panel(lay, "table", "Incidents",
              f"SELECT toString(id) AS id, agency, kind, rule, severity, status, alert_count, first_seen, last_seen, "
              f"arrayStringConcat(signatures, ' | ') AS signatures FROM incidents FINAL "
              f"WHERE agency IN {SUBTREE} AND $__timeFilter(last_seen) AND {sev} ORDER BY last_seen DESC LIMIT 200",
              24, 9, "Newest first. Click an incident to open its timeline.", links=to_incident),
        panel(lay, "barchart", "Tickets by status",
              f"SELECT status, count() AS tickets FROM tickets FINAL WHERE agency IN {SUBTREE} AND $__timeFilter(opened_at) "
              f"AND {sev} GROUP BY status ORDER BY tickets DESC", 8, 8, "Tickets held by the subtree, by lifecycle state."),
        panel(lay, "barchart", "Open tickets by age",
              f"SELECT multiIf(age < 3600, '1: < 1 h', age < 14400, '2: 1-4 h', age < 86400, '3: 4-24 h', '4: > 1 day') AS age_band, "
              f"count() AS tickets FROM (SELECT dateDiff('second', opened_at, now()) AS age FROM tickets FINAL "
              f"WHERE agency IN {SUBTREE} AND {ACTIVE} AND {sev}) GROUP BY age_band ORDER BY age_band",
              8, 8, "How long active tickets have been waiting."),
        panel(lay, "table", "Time to act against SLA, by severity",
              f"SELECT severity, tickets, mtta_s, sla_ack_s, mttr_s, sla_resolve_s, breaches FROM "
              f"(SELECT severity, count() AS tickets, round(avgIf((acknowledged_us - opened_us) / 1e6, acknowledged_us > 0)) AS mtta_s, "
              f"round(avg((ack_due_us - opened_us) / 1e6)) AS sla_ack_s, round(avgIf((resolved_us - opened_us) / 1e6, resolved_us > 0)) AS mttr_s, "
              f"round(avg((resolve_due_us - opened_us) / 1e6)) AS sla_resolve_s FROM tickets FINAL "
              f"WHERE owner_agency IN {SUBTREE} AND $__timeFilter(opened_at) GROUP BY severity) "
              f"ANY LEFT JOIN (SELECT severity, count() AS breaches FROM ticket_events WHERE action = 'sla_breached' "
              f"AND owner_agency IN {SUBTREE} AND $__timeFilter(at) GROUP BY severity) USING severity ORDER BY severity",
              8, 8, "Mean time to acknowledge/resolve next to the agency's SLA targets (seconds)."),
        panel(lay, "table", "Escalations",
              f"SELECT at, toString(incident_id) AS id, owner_agency, agency AS escalated_to, escalation_level, severity, comment "
              f"FROM ticket_events WHERE action = 'escalated' AND (owner_agency IN {SUBTREE} OR agency IN {SUBTREE}) "
              f"AND $__timeFilter(at) ORDER BY at DESC LIMIT 200",
              24, 8, "Tickets moved up the hierarchy because a deadline was missed.", links=to_incident),
    ]
    return dashboard(
        "tocsin-agency", "Tocsin / Agency",
        "One agency and (optionally) everything below it: incidents, tickets, time to act, escalations.",
        panels, agency_vars() + [severity_var()], ["soc", "response"],
        links=[("National overview", "tocsin-national"), ("Incident", "tocsin-incident")],
    )


def incident():
    lay = Layout()
    inc = "toUUID('${incident}')"
    members = f"alert_id IN (SELECT alert_id FROM incident_alerts WHERE incident_id = {inc})"
    panels = [
        panel(lay, "table", "Incident",
              f"SELECT toString(id) AS incident_id, agency, kind, rule, dedup_key, severity, status, alert_count, first_seen, last_seen, "
              f"arrayStringConcat(sensors, ', ') AS sensors, arrayStringConcat(signatures, ' | ') AS signatures "
              f"FROM incidents FINAL WHERE id = {inc}", 24, 5, "The incident as stored (latest version).",
              links=[link("Agency ${__data.fields.agency}", "tocsin-agency", "var-agency=${__data.fields.agency}")]),
        panel(lay, "timeseries", "Member alerts over time",
              f"SELECT {bucket('ts')} AS time, signature, count() AS alerts FROM alerts WHERE {members} "
              f"AND $__timeFilter(ts) GROUP BY time, signature ORDER BY time", 16, 8,
              "The incident's alerts per interval, one series per signature."),
        panel(lay, "table", "Involved hosts",
              f"SELECT ip, role, count() AS alerts FROM (SELECT src_ip AS ip, 'source' AS role FROM alerts WHERE {members} "
              f"UNION ALL SELECT dest_ip AS ip, 'destination' AS role FROM alerts WHERE {members}) "
              f"GROUP BY ip, role ORDER BY alerts DESC LIMIT 50", 8, 8, "Addresses seen in the incident's alerts."),
        panel(lay, "table", "Alerts",
              f"SELECT ts, signature_id, signature, severity, src_ip, src_port, dest_ip, dest_port, proto, app_proto, sensor, alert_id "
              f"FROM alerts WHERE {members} ORDER BY ts, alert_id LIMIT 1000", 24, 9,
              "Member alerts in time order (first 1000)."),
        panel(lay, "table", "Ticket history",
              f"SELECT at, action, actor, actor_role, actor_agency, status, agency, escalation_level, assignee, comment "
              f"FROM ticket_events WHERE incident_id = {inc} ORDER BY at_us, seq", 12, 8,
              "Every state change of the incident's ticket."),
        panel(lay, "table", "Audit entries",
              f"SELECT at, actor, actor_role, actor_agency, action, outcome, http_status, request_id, detail "
              f"FROM audit WHERE incident_id = {inc} ORDER BY at_us", 12, 8,
              "Audit log rows about this incident, including denied attempts."),
    ]
    return dashboard(
        "tocsin-incident", "Tocsin / Incident",
        "One incident: its alerts, hosts, ticket history and audit trail.",
        panels,
        [query_var("incident", "Incident",
                   "SELECT toString(id) FROM incidents FINAL WHERE $__timeFilter(last_seen) ORDER BY severity, last_seen DESC LIMIT 200")],
        ["soc", "response"],
        links=[("National overview", "tocsin-national"), ("Agency", "tocsin-agency")],
    )


def sensors():
    lay = Layout()
    sel = "$__conditionalAll(sensor IN (${sensor:singlequote}), $sensor)"

    def rate(expr, per):
        return (f"SELECT {bucket('ts')} AS time, sensor, ({expr}) {per} AS value FROM sensor_stats "
                f"WHERE $__timeFilter(ts) AND {sel} GROUP BY time, sensor ORDER BY time")

    panels = [
        panel(lay, "timeseries", "Throughput", rate("max(bytes) - min(bytes)", "* 8 / $__interval_s"), 12, 8,
              "Bits per second per sensor, from the growth of its byte counter within each interval.", unit="bps"),
        panel(lay, "timeseries", "Packets per second", rate("max(packets) - min(packets)", "/ $__interval_s"), 12, 8,
              "Packets per second per sensor.", unit="pps"),
        panel(lay, "timeseries", "Drops",
              f"SELECT {bucket('ts')} AS time, sensor, max(kernel_drops) - min(kernel_drops) AS kernel, "
              f"max(queue_drops) - min(queue_drops) AS queue, max(decode_invalid) - min(decode_invalid) AS undecodable "
              f"FROM sensor_stats WHERE $__timeFilter(ts) AND {sel} GROUP BY time, sensor ORDER BY time", 12, 8,
              "Packets lost per interval: by the kernel (capture buffer full), on the worker queues, and undecodable."),
        panel(lay, "timeseries", "Spool backlog",
              f"SELECT {bucket('ts')} AS time, sensor, max(spool_bytes) AS spool_bytes FROM sensor_stats "
              f"WHERE $__timeFilter(ts) AND {sel} GROUP BY time, sensor ORDER BY time", 12, 8,
              "Alert bytes waiting in each sensor's spool for the correlator; growth means the correlator is unreachable.",
              unit="bytes"),
        panel(lay, "timeseries", "Alerts per minute",
              f"SELECT {bucket('minute')} AS time, sensor, sum(alerts) * 60 / $__interval_s AS alerts_per_min "
              f"FROM sensor_alerts_per_minute WHERE $__timeFilter(minute) AND {sel} GROUP BY time, sensor ORDER BY time",
              12, 8, "Alerts received from each sensor (rollup sensor_alerts_per_minute)."),
        panel(lay, "table", "Rule load and memory",
              f"SELECT sensor, any(agency) AS agency, argMax(rules_loaded, ts) AS rules, argMax(rules_failed, ts) AS rule_errors, "
              f"argMax(flows, ts) AS flow_count, argMax(memory_bytes, ts) AS rss_bytes, argMax(uptime_s, ts) AS uptime, max(ts) AS last_record "
              f"FROM sensor_stats WHERE $__timeFilter(ts) AND {sel} GROUP BY sensor ORDER BY sensor", 12, 8,
              "Per sensor, from its latest stats record: rules loaded and rejected, flows, memory, uptime."),
    ]
    return dashboard(
        "tocsin-sensors", "Tocsin / Sensor operations",
        "Sensor throughput, drops, spool backlog and rule loading, from the sensors' stats records.",
        panels,
        [query_var("sensor", "Sensor", "SELECT DISTINCT sensor FROM sensor_stats WHERE $__timeFilter(ts) ORDER BY sensor",
                   multi=True, include_all=True)],
        ["ops"],
        links=[("National overview", "tocsin-national")],
    )


BOARDS = {"national": national, "agency": agency, "incident": incident, "sensors": sensors}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in BOARDS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        path = HERE / f"{name}.json"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"dashboards out of date: {', '.join(stale)}; run python3 dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
