//! The agency directory: who owns which network, who is above whom, and which SLA applies.
//!
//! Input: a directory file (TOML, see [`mod@file`] and `rules/agencies/README.md`), or the
//! `agencies` / `agency_webhooks` tables it was loaded into. Output: a validated
//! [`Directory`] that answers, without I/O:
//! - ownership: the agency owning an address by longest-prefix match ([`Directory::owner_of`]);
//! - hierarchy: parent, ancestors, path, level-1 agency, subtree membership;
//! - policy: ticket threshold, reopen/link policy and SLAs per severity ([`Directory::policy_for`]).
//!
//! Invariants (checked by [`file::parse_directory`]): exactly one root (level 0, the
//! national coordination centre); levels 1–4 below it; codes are hierarchical, so a child's
//! code is its parent's code plus `.SEGMENT` (level-1 codes are one segment); prefixes of
//! different agencies overlap only when the longer one belongs to a descendant of the
//! shorter one's owner (delegation). Because codes are hierarchical, "X and everything
//! below" is `code = X OR startsWith(code, 'X.')` in SQL, and the whole tree for the root.

pub mod file;
pub mod lpm;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use file::{DirectoryError, parse_directory};
pub use lpm::PrefixTable;

/// Deepest level below the root.
pub const MAX_LEVEL: u8 = 4;
/// Longest code.
pub const MAX_CODE_LEN: usize = 64;

/// A contact of an agency (duty desk, CISO, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name or function ("Duty officer").
    pub name: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Role in incident response ("duty", "ciso", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What happens when a new alert arrives on the key of a resolved ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AfterResolve {
    /// The resolved ticket moves to `reopened` (its SLA clocks restart).
    #[default]
    Reopen,
    /// A new ticket is opened and linked to the resolved one.
    Link,
}

impl AfterResolve {
    /// Stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reopen => "reopen",
            Self::Link => "link",
        }
    }
}

/// Time to acknowledge and to resolve a ticket of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    /// Suricata severity (1 = most severe).
    pub severity: u8,
    /// Time from opening to acknowledgement.
    pub ack: Duration,
    /// Time from opening to resolution.
    pub resolve: Duration,
}

/// An agency's ticket policy (named in the file, inherited down the tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Name.
    pub name: String,
    /// Tickets open for incidents of this severity or more severe (1 = most severe).
    pub ticket_severity: u8,
    /// Reopen or link on new alerts after resolution.
    pub after_resolve: AfterResolve,
    /// SLAs by severity (a severity without one has no deadline).
    pub sla: Vec<Sla>,
}

impl Policy {
    /// Tocsin's built-in policy, used for agencies without one and when no directory is
    /// loaded: tickets for severity 1 only, 1 h to acknowledge, 8 h to resolve.
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            name: "default".into(),
            ticket_severity: 1,
            after_resolve: AfterResolve::Reopen,
            sla: vec![
                Sla {
                    severity: 1,
                    ack: Duration::from_secs(3600),
                    resolve: Duration::from_secs(8 * 3600),
                },
                Sla {
                    severity: 2,
                    ack: Duration::from_secs(4 * 3600),
                    resolve: Duration::from_secs(24 * 3600),
                },
                Sla {
                    severity: 3,
                    ack: Duration::from_secs(24 * 3600),
                    resolve: Duration::from_secs(72 * 3600),
                },
            ],
        }
    }

    /// The SLA for `severity`: the entry for it, else the nearest less severe one.
    #[must_use]
    pub fn sla_for(&self, severity: u8) -> Option<Sla> {
        self.sla
            .iter()
            .filter(|s| s.severity >= severity)
            .min_by_key(|s| s.severity)
            .copied()
    }
}

/// Ticket events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    /// A ticket was opened.
    #[serde(rename = "ticket.opened")]
    TicketOpened,
    /// A ticket moved to the parent agency.
    #[serde(rename = "ticket.escalated")]
    TicketEscalated,
    /// A ticket missed its acknowledge or resolve deadline.
    #[serde(rename = "sla.breached")]
    SlaBreached,
    /// A ticket was resolved.
    #[serde(rename = "ticket.resolved")]
    TicketResolved,
}

impl WebhookEvent {
    /// All events.
    pub const ALL: [Self; 4] = [
        Self::TicketOpened,
        Self::TicketEscalated,
        Self::SlaBreached,
        Self::TicketResolved,
    ];

    /// Wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketOpened => "ticket.opened",
            Self::TicketEscalated => "ticket.escalated",
            Self::SlaBreached => "sla.breached",
            Self::TicketResolved => "ticket.resolved",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A webhook of an agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Stable ID: `CODE#N` (N = position in the agency's list).
    pub id: String,
    /// Owning agency.
    pub agency: String,
    /// `http(s)://` URL receiving POSTs.
    pub url: String,
    /// HMAC-SHA256 key.
    pub secret: String,
    /// Subscribed events.
    pub events: Vec<WebhookEvent>,
    /// Also receive the events of every agency below.
    pub subtree: bool,
}

/// One agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Hierarchical code (`MIC`, `MIC.DEPT-3`).
    pub code: String,
    /// Name.
    pub name: String,
    /// 0 for the root, 1–4 below.
    pub level: u8,
    /// Parent code (`None` for the root).
    pub parent: Option<String>,
    /// Owned prefixes.
    pub prefixes: Vec<IpNet>,
    /// Contacts.
    pub contacts: Vec<Contact>,
    /// Effective policy (own or inherited).
    pub policy: Policy,
    /// Webhooks.
    pub webhooks: Vec<Webhook>,
}

/// A validated agency tree with its prefix table.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    agencies: BTreeMap<String, Agency>,
    children: HashMap<String, Vec<String>>,
    root: Option<String>,
    prefixes: PrefixTable<String>,
    /// Version of the load this came from (0: empty).
    pub version: u64,
}

/// Checks a code's shape: segments of `A-Z 0-9 -` (1–16 characters, starting with a letter
/// or digit) joined by `.`, at most 64 characters.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_code(code: &str) -> Result<(), String> {
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(format!(
            "code '{}' must be 1-{MAX_CODE_LEN} characters",
            cut(code)
        ));
    }
    for seg in code.split('.') {
        let ok = !seg.is_empty()
            && seg.len() <= 16
            && seg
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && seg
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !ok {
            return Err(format!(
                "code '{}': segment '{}' must be 1-16 of A-Z, 0-9 and '-', starting with a letter or digit",
                cut(code),
                cut(seg)
            ));
        }
    }
    Ok(())
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Directory {
    /// Builds the directory from validated agencies (see [`file::parse_directory`]).
    #[must_use]
    pub fn from_validated(agencies: Vec<Agency>, version: u64) -> Self {
        let mut d = Self {
            version,
            ..Self::default()
        };
        for a in agencies {
            if a.parent.is_none() {
                d.root = Some(a.code.clone());
            }
            if let Some(p) = &a.parent {
                d.children
                    .entry(p.clone())
                    .or_default()
                    .push(a.code.clone());
            }
            for p in &a.prefixes {
                d.prefixes.insert(*p, a.code.clone());
            }
            d.agencies.insert(a.code.clone(), a);
        }
        for c in d.children.values_mut() {
            c.sort();
        }
        d
    }

    /// Whether no agency is loaded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }

    /// Number of agencies.
    #[must_use]
    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    /// The root's code.
    #[must_use]
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// An agency by code.
    #[must_use]
    pub fn get(&self, code: &str) -> Option<&Agency> {
        self.agencies.get(code)
    }

    /// The parent's code.
    #[must_use]
    pub fn parent(&self, code: &str) -> Option<&str> {
        self.agencies.get(code).and_then(|a| a.parent.as_deref())
    }

    /// Agencies in tree order: the root first, then each subtree depth-first, children by code.
    #[must_use]
    pub fn preorder(&self) -> Vec<&Agency> {
        let mut out = Vec::with_capacity(self.agencies.len());
        let mut stack: Vec<&str> = self.root.iter().map(String::as_str).collect();
        while let Some(code) = stack.pop() {
            if let Some(a) = self.agencies.get(code) {
                out.push(a);
            }
            if let Some(ch) = self.children.get(code) {
                stack.extend(ch.iter().rev().map(String::as_str));
            }
        }
        out
    }

    /// The owner of `addr` by longest-prefix match.
    #[must_use]
    pub fn owner_of(&self, addr: IpAddr) -> Option<&str> {
        // `::ffff:a.b.c.d` is the IPv4 address a.b.c.d.
        self.prefixes
            .lookup(addr.to_canonical())
            .map(|(_, c)| c.as_str())
    }

    /// The owner of an alert: the destination's owner, else the source's (the source first
    /// when `source_first`), else `None` (the caller falls back to the sensor's agency).
    #[must_use]
    pub fn owner_for(&self, src_ip: &str, dest_ip: &str, source_first: bool) -> Option<&str> {
        let (first, second) = if source_first {
            (src_ip, dest_ip)
        } else {
            (dest_ip, src_ip)
        };
        [first, second]
            .into_iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .find_map(|ip| self.owner_of(ip))
    }

    /// Codes from the root down to `code` (inclusive). For a code not in the directory:
    /// the known ancestors by code prefix, then the code.
    #[must_use]
    pub fn ancestors(&self, code: &str) -> Vec<String> {
        let mut chain = Vec::new();
        if self.agencies.contains_key(code) {
            let mut cur = Some(code);
            while let Some(c) = cur {
                chain.push(c.to_owned());
                if chain.len() > usize::from(MAX_LEVEL) + 1 {
                    break; // validated trees are at most 5 deep
                }
                cur = self.parent(c);
            }
            chain.reverse();
            return chain;
        }
        // Unknown code: the longest known prefix code's chain, then the code itself.
        let mut prefix = code;
        while let Some((head, _)) = prefix.rsplit_once('.') {
            if self.agencies.contains_key(head) {
                let mut c = self.ancestors(head);
                c.push(code.to_owned());
                return c;
            }
            prefix = head;
        }
        if let Some(r) = &self.root
            && r != code
        {
            chain.push(r.clone());
        }
        chain.push(code.to_owned());
        chain
    }

    /// `/ROOT/L1/.../CODE/`: "X and everything below" is `startsWith(path, path_of_X)`.
    #[must_use]
    pub fn path(&self, code: &str) -> String {
        let mut s = String::from("/");
        for c in self.ancestors(code) {
            s.push_str(&c);
            s.push('/');
        }
        s
    }

    /// The level-1 agency above (or at) `code`; empty for the root.
    #[must_use]
    pub fn level1(&self, code: &str) -> String {
        let anc = self.ancestors(code);
        let skip = usize::from(
            self.root
                .as_deref()
                .is_some_and(|r| anc.first().is_some_and(|a| a == r)),
        );
        anc.get(skip).cloned().unwrap_or_default()
    }

    /// Level of `code` (from the directory; for unknown codes, the number of segments).
    #[must_use]
    pub fn level_of(&self, code: &str) -> u8 {
        self.agencies.get(code).map_or_else(
            || u8::try_from(code.split('.').count()).unwrap_or(MAX_LEVEL),
            |a| a.level,
        )
    }

    /// Whether `code` is `scope` or below it. The root's scope holds every code.
    #[must_use]
    pub fn in_subtree(&self, code: &str, scope: &str) -> bool {
        if self.root.as_deref() == Some(scope) {
            return true;
        }
        code == scope
            || code
                .strip_prefix(scope)
                .is_some_and(|rest| rest.starts_with('.'))
    }

    /// The effective policy of `code` (for unknown codes: the nearest known ancestor's, else
    /// the root's, else the built-in one).
    #[must_use]
    pub fn policy_for(&self, code: &str) -> Policy {
        for c in self.ancestors(code).iter().rev() {
            if let Some(a) = self.agencies.get(c) {
                return a.policy.clone();
            }
        }
        Policy::builtin()
    }

    /// Webhooks that receive events of `code`: its own and those of ancestors with `subtree`.
    #[must_use]
    pub fn webhooks_for(&self, code: &str) -> Vec<&Webhook> {
        let mut out = Vec::new();
        for c in self.ancestors(code) {
            if let Some(a) = self.agencies.get(&c) {
                out.extend(a.webhooks.iter().filter(|w| c == code || w.subtree));
            }
        }
        out
    }

    /// All webhooks.
    #[must_use]
    pub fn all_webhooks(&self) -> Vec<&Webhook> {
        self.agencies
            .values()
            .flat_map(|a| a.webhooks.iter())
            .collect()
    }
}

/// SQL condition "`column` is `scope` or below it" (`1` for the root), with `scope` quoted.
#[must_use]
pub fn subtree_sql(dir: &Directory, column: &str, scope: &str) -> String {
    if dir.root() == Some(scope) {
        return "1".to_owned();
    }
    format!(
        "({column} = {} OR startsWith({column}, {}))",
        crate::store::quote(scope),
        crate::store::quote(&format!("{scope}."))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for ok in ["NCC", "MIC", "MIC.DEPT-3", "P01.D2.U1.C4", "HN"] {
            assert!(check_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "mic",
            "MIC..X",
            "MIC.",
            ".MIC",
            "MIC.-X",
            "MIC X",
            "MIC'",
            &"A".repeat(17),
        ] {
            assert!(check_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sla_falls_back_to_less_severe() {
        let p = Policy::builtin();
        assert_eq!(p.sla_for(1).unwrap().ack, Duration::from_secs(3600));
        assert_eq!(p.sla_for(3).unwrap().severity, 3);
        assert_eq!(p.sla_for(4), None);
        let only3 = Policy {
            sla: vec![p.sla[2]],
            ..p
        };
        assert_eq!(only3.sla_for(1).unwrap().severity, 3);
    }
}

/// The current directory, shared by the writer, the API and the ticket worker; replaced
/// whole when a new load is seen.
#[derive(Debug, Clone, Default)]
pub struct DirHandle(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Directory>>>);

impl DirHandle {
    /// The current directory (cheap: an `Arc` clone).
    #[must_use]
    pub fn get(&self) -> std::sync::Arc<Directory> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the directory.
    pub fn set(&self, dir: Directory) {
        let new = std::sync::Arc::new(dir);
        match self.0.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}
