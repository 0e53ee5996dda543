//! The agency directory in ClickHouse: `agencies` (one row per agency and load, read with
//! `FINAL`) and `agency_webhooks` (secrets live only there, so dashboard users need no access
//! to it). A load writes every agency of the file with a new version and a tombstone
//! (`deleted = 1`) for every stored agency the file no longer has.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ClickHouse, StoreError};
use crate::agency::{AfterResolve, Agency, Contact, Directory, Policy, Sla, Webhook, WebhookEvent};

#[derive(Debug, Serialize, Deserialize)]
struct AgencyRow {
    code: String,
    name: String,
    level: u8,
    parent: String,
    path: String,
    ancestors: Vec<String>,
    level1: String,
    prefixes: Vec<String>,
    contacts: String,
    policy: String,
    ticket_severity: u8,
    after_resolve: String,
    sla_severities: Vec<u8>,
    sla_ack_s: Vec<u32>,
    sla_resolve_s: Vec<u32>,
    deleted: u8,
    version: u64,
    loaded_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WebhookRow {
    id: String,
    agency: String,
    url: String,
    secret: String,
    events: Vec<String>,
    subtree: u8,
    deleted: u8,
    version: u64,
}

/// What a load changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadSummary {
    /// Agencies in the file.
    pub total: usize,
    /// Not stored before.
    pub added: usize,
    /// Stored before with different content.
    pub changed: usize,
    /// Stored before, absent from the file (now marked deleted).
    pub removed: usize,
    /// Version written.
    pub version: u64,
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Stores a validated directory as a new version.
///
/// # Errors
/// [`StoreError`].
pub async fn save(
    ch: &ClickHouse,
    agencies: Vec<Agency>,
    now_us: i64,
) -> Result<LoadSummary, StoreError> {
    let version = u64::try_from(now_us).unwrap_or(0);
    let dir = Directory::from_validated(agencies, version);
    let old: Vec<AgencyRow> = ch
        .query_rows(&format!(
            "SELECT code, name, level, parent, path, ancestors, level1, prefixes, contacts, policy, \
             ticket_severity, after_resolve, sla_severities, sla_ack_s, sla_resolve_s, deleted, version, \
             toInt64(toUnixTimestamp(loaded_at)) AS loaded_at FROM {}.agencies FINAL WHERE deleted = 0",
            ch.database()
        ))
        .await?;
    let old_by: HashMap<&str, &AgencyRow> = old.iter().map(|r| (r.code.as_str(), r)).collect();
    let now_s = now_us.div_euclid(1_000_000);
    let mut rows = Vec::with_capacity(dir.len());
    let mut hooks = Vec::new();
    let mut summary = LoadSummary {
        total: dir.len(),
        version,
        ..LoadSummary::default()
    };
    for a in dir.preorder() {
        let p = &a.policy;
        let row = AgencyRow {
            code: a.code.clone(),
            name: a.name.clone(),
            level: a.level,
            parent: a.parent.clone().unwrap_or_default(),
            path: dir.path(&a.code),
            ancestors: dir.ancestors(&a.code),
            level1: dir.level1(&a.code),
            prefixes: a.prefixes.iter().map(ToString::to_string).collect(),
            contacts: serde_json::to_string(&a.contacts).unwrap_or_else(|_| "[]".into()),
            policy: p.name.clone(),
            ticket_severity: p.ticket_severity,
            after_resolve: p.after_resolve.as_str().to_owned(),
            sla_severities: p.sla.iter().map(|s| s.severity).collect(),
            sla_ack_s: p.sla.iter().map(|s| secs(s.ack)).collect(),
            sla_resolve_s: p.sla.iter().map(|s| secs(s.resolve)).collect(),
            deleted: 0,
            version,
            loaded_at: now_s,
        };
        match old_by.get(a.code.as_str()) {
            None => summary.added += 1,
            Some(o) => {
                let same = o.name == row.name
                    && o.parent == row.parent
                    && o.prefixes == row.prefixes
                    && o.contacts == row.contacts
                    && o.policy == row.policy
                    && o.ticket_severity == row.ticket_severity
                    && o.after_resolve == row.after_resolve
                    && o.sla_severities == row.sla_severities
                    && o.sla_ack_s == row.sla_ack_s
                    && o.sla_resolve_s == row.sla_resolve_s;
                if !same {
                    summary.changed += 1;
                }
            }
        }
        rows.push(row);
        for w in &a.webhooks {
            hooks.push(WebhookRow {
                id: w.id.clone(),
                agency: w.agency.clone(),
                url: w.url.clone(),
                secret: w.secret.clone(),
                events: w.events.iter().map(|e| e.as_str().to_owned()).collect(),
                subtree: u8::from(w.subtree),
                deleted: 0,
                version,
            });
        }
    }
    let keep: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let mut tombstones = Vec::new();
    for o in &old {
        if !keep.contains(o.code.as_str()) {
            summary.removed += 1;
            tombstones.push(AgencyRow {
                code: o.code.clone(),
                name: o.name.clone(),
                level: o.level,
                parent: o.parent.clone(),
                path: o.path.clone(),
                ancestors: o.ancestors.clone(),
                level1: o.level1.clone(),
                prefixes: Vec::new(),
                contacts: o.contacts.clone(),
                policy: o.policy.clone(),
                ticket_severity: o.ticket_severity,
                after_resolve: o.after_resolve.clone(),
                sla_severities: Vec::new(),
                sla_ack_s: Vec::new(),
                sla_resolve_s: Vec::new(),
                deleted: 1,
                version,
                loaded_at: now_s,
            });
        }
    }
    // Webhooks no longer present: tombstones too.
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let old_hooks: Vec<Id> = ch
        .query_rows(&format!(
            "SELECT id FROM {}.agency_webhooks FINAL WHERE deleted = 0",
            ch.database()
        ))
        .await?;
    let new_ids: HashSet<&str> = hooks.iter().map(|h| h.id.as_str()).collect();
    let gone: Vec<WebhookRow> = old_hooks
        .iter()
        .filter(|h| !new_ids.contains(h.id.as_str()))
        .map(|h| WebhookRow {
            id: h.id.clone(),
            agency: String::new(),
            url: String::new(),
            secret: String::new(),
            events: Vec::new(),
            subtree: 0,
            deleted: 1,
            version,
        })
        .collect();
    // Webhooks first, agencies last: correlators reload when the agencies' version changes.
    hooks.extend(gone);
    ch.insert("agency_webhooks", &hooks).await?;
    rows.extend(tombstones);
    ch.insert("agencies", &rows).await?;
    Ok(summary)
}

/// The stored directory's version (0: none).
///
/// # Errors
/// [`StoreError`].
pub async fn version(ch: &ClickHouse) -> Result<u64, StoreError> {
    #[derive(Deserialize)]
    struct V {
        v: u64,
    }
    let rows: Vec<V> = ch
        .query_rows(&format!(
            "SELECT max(version) AS v FROM {}.agencies",
            ch.database()
        ))
        .await?;
    Ok(rows.first().map_or(0, |r| r.v))
}

/// Loads the stored directory.
///
/// # Errors
/// [`StoreError`] (also for rows that do not parse back).
pub async fn load(ch: &ClickHouse) -> Result<Directory, StoreError> {
    let rows: Vec<AgencyRow> = ch
        .query_rows(&format!(
            "SELECT code, name, level, parent, path, ancestors, level1, prefixes, contacts, policy, \
             ticket_severity, after_resolve, sla_severities, sla_ack_s, sla_resolve_s, deleted, version, \
             toInt64(toUnixTimestamp(loaded_at)) AS loaded_at FROM {}.agencies FINAL WHERE deleted = 0",
            ch.database()
        ))
        .await?;
    let hooks: Vec<WebhookRow> = ch
        .query_rows(&format!(
            "SELECT id, agency, url, secret, events, subtree, deleted, version \
             FROM {}.agency_webhooks FINAL WHERE deleted = 0",
            ch.database()
        ))
        .await?;
    let version = rows.iter().map(|r| r.version).max().unwrap_or(0);
    let mut by_agency: HashMap<String, Vec<Webhook>> = HashMap::new();
    for h in hooks {
        by_agency
            .entry(h.agency.clone())
            .or_default()
            .push(Webhook {
                id: h.id,
                agency: h.agency,
                url: h.url,
                secret: h.secret,
                events: h
                    .events
                    .iter()
                    .filter_map(|e| WebhookEvent::parse(e))
                    .collect(),
                subtree: h.subtree != 0,
            });
    }
    let mut agencies = Vec::with_capacity(rows.len());
    for r in rows {
        let bad = |what: &str| StoreError::Decode(format!("agency {}: {what}", r.code));
        let prefixes = r
            .prefixes
            .iter()
            .map(|p| p.parse().map_err(|_| bad("prefix")))
            .collect::<Result<Vec<_>, _>>()?;
        let contacts: Vec<Contact> =
            serde_json::from_str(&r.contacts).map_err(|_| bad("contacts"))?;
        let sla = r
            .sla_severities
            .iter()
            .zip(&r.sla_ack_s)
            .zip(&r.sla_resolve_s)
            .map(|((s, a), z)| Sla {
                severity: *s,
                ack: Duration::from_secs(u64::from(*a)),
                resolve: Duration::from_secs(u64::from(*z)),
            })
            .collect();
        agencies.push(Agency {
            webhooks: by_agency.remove(&r.code).unwrap_or_default(),
            code: r.code,
            name: r.name,
            level: r.level,
            parent: (!r.parent.is_empty()).then_some(r.parent),
            prefixes,
            contacts,
            policy: Policy {
                name: r.policy,
                ticket_severity: r.ticket_severity,
                after_resolve: if r.after_resolve == "link" {
                    AfterResolve::Link
                } else {
                    AfterResolve::Reopen
                },
                sla,
            },
        });
    }
    Ok(Directory::from_validated(agencies, version))
}
