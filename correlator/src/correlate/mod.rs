//! Correlation: alerts in, correlated incidents out (threshold, distinct count, sequence).
//!
//! Input: the same deduplicated alert batches as [`crate::dedup`], applied in (timestamp,
//! alert_id) order. Output: rows for raised or updated correlated incidents and links from
//! member alerts to them (`incident_alerts`, with the sequence step for sequence rules).
//!
//! Semantics (T = `timeframe`, N = `count`, event time):
//! - threshold: fires when N matching alerts of one group have timestamps within T of the
//!   newest (`newest - ts < T`). The raised incident then stays active while further
//!   matching alerts arrive within T of its last member, which join it; after a gap of T
//!   it ends and N fresh alerts are needed to fire again.
//! - distinct_count: the same with N distinct values of the `distinct` field.
//! - sequence: step 0 on host H starts (or restarts) a run; step i joins when steps 0..i
//!   are done and the alert is within T of the run's first alert; the last step raises an
//!   incident with all steps' alerts. Out-of-order steps never fire.
//!
//! Caps: `MAX_GROUPS` groups per rule (idle groups are dropped first), N ≤ 100,000.
//! State is in memory only: runs and windows in progress are lost on restart.

pub mod rules;

use std::collections::{HashMap, HashSet, VecDeque};

use rules::Matcher;
pub use rules::{Rule, RuleKind, RulesError, load_rules, parse_rules};
use uuid::Uuid;

use crate::dedup::{Incident, IncidentKind, KeyField, key_text};
use crate::ingest::Alert;
use crate::store::rows::IncidentRow;

/// Most groups kept per rule.
pub const MAX_GROUPS: usize = 200_000;

/// A link from an alert to a correlated incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The incident.
    pub incident_id: Uuid,
    /// The member alert.
    pub alert_id: String,
    /// The member alert's agency.
    pub agency: String,
    /// The member alert's time, µs.
    pub ts_us: i64,
    /// Sequence step (0 for other kinds).
    pub step: u8,
}

#[derive(Debug, Clone)]
struct Active {
    inc: Incident,
    last_ts: i64,
}

#[derive(Debug, Clone)]
enum Group {
    Window {
        recent: VecDeque<Alert>,
        active: Option<Active>,
        touched_ms: i64,
    },
    Distinct {
        latest: HashMap<String, Alert>,
        active: Option<Active>,
        touched_ms: i64,
    },
    Seq {
        progress: Vec<Alert>,
        touched_ms: i64,
    },
}

impl Group {
    fn touched_ms(&self) -> i64 {
        match self {
            Self::Window { touched_ms, .. }
            | Self::Distinct { touched_ms, .. }
            | Self::Seq { touched_ms, .. } => *touched_ms,
        }
    }
}

struct Compiled {
    rule: Rule,
    matcher: Matcher,
    steps: Vec<(Matcher, KeyField)>,
    t_us: i64,
    groups: HashMap<String, Group>,
}

/// Undo information for one batch.
#[derive(Debug, Default)]
pub struct CorrelateUndo {
    before: Vec<(usize, String, Option<Group>)>,
}

/// Result of one batch.
#[derive(Debug, Default)]
pub struct CorrelateOutput {
    /// New versions of raised/updated/closed correlated incidents.
    pub rows: Vec<IncidentRow>,
    /// Member links.
    pub links: Vec<Link>,
    /// Undo information.
    pub undo: CorrelateUndo,
}

/// The correlation state.
pub struct CorrelationEngine {
    rules: Vec<Compiled>,
    max_set: usize,
    last_version: u64,
}

impl std::fmt::Debug for CorrelationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrelationEngine")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

fn kind_of(k: RuleKind) -> IncidentKind {
    match k {
        RuleKind::Threshold => IncidentKind::Threshold,
        RuleKind::DistinctCount => IncidentKind::DistinctCount,
        RuleKind::Sequence => IncidentKind::Sequence,
    }
}

struct Ctx<'a> {
    out: &'a mut CorrelateOutput,
    seen: &'a mut HashSet<(usize, String)>,
    dirty: &'a mut Vec<(usize, String)>,
    now_ms: i64,
    max_set: usize,
}

impl Ctx<'_> {
    fn touch(&mut self, ri: usize, key: &str, groups: &HashMap<String, Group>) {
        if self.seen.insert((ri, key.to_owned())) {
            self.out
                .undo
                .before
                .push((ri, key.to_owned(), groups.get(key).cloned()));
            self.dirty.push((ri, key.to_owned()));
        }
    }

    fn link(&mut self, inc: &Incident, a: &Alert, step: u8) {
        self.out.links.push(Link {
            incident_id: inc.id,
            alert_id: a.alert_id.clone(),
            agency: a.agency.clone(),
            ts_us: a.ts.0,
            step,
        });
    }
}

impl CorrelationEngine {
    /// Builds the engine from validated rules.
    #[must_use]
    pub fn new(rules: Vec<Rule>, max_set: usize) -> Self {
        let rules = rules
            .into_iter()
            .map(|rule| Compiled {
                matcher: rule.matcher(),
                steps: rule.steps.iter().map(|s| (s.matcher(), s.host)).collect(),
                t_us: i64::try_from(rule.timeframe.as_micros()).unwrap_or(i64::MAX),
                groups: HashMap::new(),
                rule,
            })
            .collect();
        Self {
            rules,
            max_set,
            last_version: 0,
        }
    }

    /// Number of rules loaded.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn next_version(&mut self, now_us: i64) -> u64 {
        let now = u64::try_from(now_us).unwrap_or(0);
        self.last_version = now.max(self.last_version + 1);
        self.last_version
    }

    /// Applies a batch of new alerts.
    #[must_use]
    pub fn apply(&mut self, alerts: &[Alert], now_us: i64) -> CorrelateOutput {
        let mut out = CorrelateOutput::default();
        if self.rules.is_empty() || alerts.is_empty() {
            return out;
        }
        let mut order: Vec<&Alert> = alerts.iter().collect();
        order.sort_by(|x, y| (x.ts, &x.alert_id).cmp(&(y.ts, &y.alert_id)));
        let mut seen = HashSet::new();
        let mut dirty = Vec::new();
        let mut closed: Vec<Incident> = Vec::new();
        {
            let mut ctx = Ctx {
                out: &mut out,
                seen: &mut seen,
                dirty: &mut dirty,
                now_ms: now_us / 1000,
                max_set: self.max_set,
            };
            for a in order {
                for (ri, c) in self.rules.iter_mut().enumerate() {
                    match c.rule.kind {
                        RuleKind::Threshold | RuleKind::DistinctCount => {
                            if c.matcher.matches(a) {
                                window_alert(ri, c, a, &mut ctx, &mut closed);
                            }
                        }
                        RuleKind::Sequence => sequence_alert(ri, c, a, &mut ctx),
                    }
                }
            }
        }
        let now_s = now_us.div_euclid(1_000_000);
        for mut inc in closed {
            inc.version = self.next_version(now_us);
            out.rows.push(inc.to_row(now_s));
        }
        // Rows for every active incident touched in this batch (sequence incidents were
        // emitted when they fired).
        let mut emitted = HashSet::new();
        for (ri, key) in dirty {
            let version = self.next_version(now_us);
            let Some(c) = self.rules.get_mut(ri) else {
                continue;
            };
            let sev = c.rule.severity;
            let active = match c.groups.get_mut(&key) {
                Some(Group::Window { active, .. } | Group::Distinct { active, .. }) => {
                    active.as_mut()
                }
                _ => None,
            };
            if let Some(act) = active
                && emitted.insert(act.inc.id)
            {
                act.inc.version = version;
                let mut row = act.inc.to_row(now_s);
                if let Some(s) = sev {
                    row.severity = s;
                }
                out.rows.push(row);
            }
        }
        // Sequence incidents are built complete in one step; give them versions here.
        for row in &mut out.rows {
            if row.version == 0 {
                row.version = {
                    let now = u64::try_from(now_us).unwrap_or(0);
                    self.last_version = now.max(self.last_version + 1);
                    self.last_version
                };
            }
        }
        for c in &mut self.rules {
            if c.groups.len() > MAX_GROUPS {
                evict_groups(&mut c.groups, MAX_GROUPS - MAX_GROUPS / 10);
            }
        }
        out
    }

    /// Restores the state from before the [`CorrelationEngine::apply`] that returned `undo`.
    pub fn rollback(&mut self, undo: CorrelateUndo) {
        for (ri, key, before) in undo.before.into_iter().rev() {
            if let Some(c) = self.rules.get_mut(ri) {
                match before {
                    Some(g) => {
                        c.groups.insert(key, g);
                    }
                    None => {
                        c.groups.remove(&key);
                    }
                }
            }
        }
    }

    /// Ends active incidents and drops groups idle (wall clock) for their timeframe.
    /// Returns the closed rows.
    #[must_use]
    pub fn sweep(&mut self, now_us: i64) -> Vec<IncidentRow> {
        let now_ms = now_us / 1000;
        let mut closed = Vec::new();
        for c in &mut self.rules {
            let t_ms = c.t_us / 1000;
            c.groups.retain(|_, g| {
                let idle = now_ms.saturating_sub(g.touched_ms()) > t_ms;
                if idle
                    && let Group::Window {
                        active: Some(act), ..
                    }
                    | Group::Distinct {
                        active: Some(act), ..
                    } = g
                {
                    let mut inc = act.inc.clone();
                    inc.open = false;
                    closed.push((inc, c.rule.severity));
                }
                !idle
            });
        }
        let now_s = now_us.div_euclid(1_000_000);
        closed
            .into_iter()
            .map(|(mut inc, sev)| {
                inc.version = self.next_version(now_us);
                let mut row = inc.to_row(now_s);
                if let Some(s) = sev {
                    row.severity = s;
                }
                row
            })
            .collect()
    }
}

fn evict_groups(groups: &mut HashMap<String, Group>, keep: usize) {
    let mut ages: Vec<i64> = groups.values().map(Group::touched_ms).collect();
    ages.sort_unstable();
    let cut = ages
        .get(groups.len().saturating_sub(keep))
        .copied()
        .unwrap_or(i64::MIN);
    groups.retain(|_, g| g.touched_ms() >= cut);
}

fn group_key(c: &Compiled, a: &Alert, fields: &[KeyField]) -> String {
    let k = key_text(fields, a);
    if c.rule.cross_agency {
        k
    } else {
        format!("agency={}|{k}", a.owner)
    }
}

fn seq_key(c: &Compiled, a: &Alert, host: KeyField) -> String {
    let v = host.value(a);
    if c.rule.cross_agency {
        format!("host={v}")
    } else {
        format!("agency={}|host={v}", a.owner)
    }
}

fn owner<'a>(c: &'a Compiled, a: &'a Alert) -> &'a str {
    c.rule.incident_agency.as_deref().unwrap_or(&a.owner)
}

fn window_alert(
    ri: usize,
    c: &mut Compiled,
    a: &Alert,
    ctx: &mut Ctx<'_>,
    closed: &mut Vec<Incident>,
) {
    let key = group_key(c, a, &c.rule.group_by);
    ctx.touch(ri, &key, &c.groups);
    let t = a.ts.0;
    let t_us = c.t_us;
    let distinct = c.rule.distinct;
    let count = c.rule.count;
    let owner_agency = owner(c, a).to_owned();
    let kind = kind_of(c.rule.kind);
    let rule_name = c.rule.name.clone();
    let group = c
        .groups
        .entry(key.clone())
        .or_insert_with(|| match distinct {
            None => Group::Window {
                recent: VecDeque::new(),
                active: None,
                touched_ms: ctx.now_ms,
            },
            Some(_) => Group::Distinct {
                latest: HashMap::new(),
                active: None,
                touched_ms: ctx.now_ms,
            },
        });
    let (active, touched) = match group {
        Group::Window {
            active, touched_ms, ..
        }
        | Group::Distinct {
            active, touched_ms, ..
        } => (active, touched_ms),
        Group::Seq { .. } => return,
    };
    *touched = ctx.now_ms;
    if let Some(act) = active.as_mut() {
        if t.saturating_sub(act.last_ts) < t_us {
            act.inc.add(a);
            act.last_ts = act.last_ts.max(t);
            let inc = act.inc.clone();
            ctx.link(&inc, a, 0);
            return;
        }
        let mut done = act.inc.clone();
        done.open = false;
        closed.push(done);
        *active = None;
    }
    let members: Option<Vec<Alert>> = match group {
        Group::Window { recent, .. } => {
            recent.push_back(a.clone());
            while recent
                .front()
                .is_some_and(|f| t.saturating_sub(f.ts.0) >= t_us)
            {
                recent.pop_front();
            }
            (recent.len() >= count).then(|| recent.drain(..).collect())
        }
        Group::Distinct { latest, .. } => {
            let field = distinct.unwrap_or(KeyField::DestIp);
            latest.insert(field.value(a), a.clone());
            if latest.len() >= count {
                latest.retain(|_, m| t.saturating_sub(m.ts.0) < t_us);
            }
            (latest.len() >= count).then(|| {
                let mut v: Vec<Alert> = latest.drain().map(|(_, m)| m).collect();
                v.sort_by(|x, y| (x.ts, &x.alert_id).cmp(&(y.ts, &y.alert_id)));
                v
            })
        }
        Group::Seq { .. } => None,
    };
    if let Some(members) = members {
        let start = members.iter().map(|m| m.ts.0).min().unwrap_or(t);
        let mut inc = Incident::new(&owner_agency, kind, &rule_name, key, start, ctx.max_set);
        for m in &members {
            inc.add(m);
            ctx.link(&inc, m, 0);
        }
        let last_ts = members.iter().map(|m| m.ts.0).max().unwrap_or(t);
        if let Group::Window { active, .. } | Group::Distinct { active, .. } = group {
            *active = Some(Active { inc, last_ts });
        }
    }
}

fn sequence_alert(ri: usize, c: &mut Compiled, a: &Alert, ctx: &mut Ctx<'_>) {
    let t = a.ts.0;
    let n_steps = c.steps.len();
    // Try to advance a run (highest step first), else start one with step 0.
    for i in (1..n_steps).rev() {
        let Some((m, host)) = c.steps.get(i) else {
            continue;
        };
        if !m.matches(a) {
            continue;
        }
        let key = seq_key(c, a, *host);
        let ready = match c.groups.get(&key) {
            Some(Group::Seq { progress, .. }) => {
                progress.len() == i
                    && progress
                        .first()
                        .is_some_and(|f| t.saturating_sub(f.ts.0) <= c.t_us)
                    && progress.last().is_some_and(|l| t >= l.ts.0)
            }
            _ => false,
        };
        if !ready {
            continue;
        }
        ctx.touch(ri, &key, &c.groups);
        let Some(Group::Seq {
            progress,
            touched_ms,
        }) = c.groups.get_mut(&key)
        else {
            continue;
        };
        *touched_ms = ctx.now_ms;
        progress.push(a.clone());
        if progress.len() == n_steps {
            let members = std::mem::take(progress);
            let start = members.first().map_or(t, |f| f.ts.0);
            let mut inc = Incident::new(
                owner(c, a),
                IncidentKind::Sequence,
                &c.rule.name,
                key,
                start,
                ctx.max_set,
            );
            for (step, m) in members.iter().enumerate() {
                inc.add(m);
                ctx.link(&inc, m, u8::try_from(step).unwrap_or(u8::MAX));
            }
            let mut row = inc.to_row(ctx.now_ms.div_euclid(1000));
            row.version = 0; // stamped by apply()
            if let Some(s) = c.rule.severity {
                row.severity = s;
            }
            ctx.out.rows.push(row);
        }
        return;
    }
    if let Some((m, host)) = c.steps.first()
        && m.matches(a)
    {
        let key = seq_key(c, a, *host);
        ctx.touch(ri, &key, &c.groups);
        c.groups.insert(
            key,
            Group::Seq {
                progress: vec![a.clone()],
                touched_ms: ctx.now_ms,
            },
        );
    }
}

#[cfg(test)]
mod tests;
