//! Bearer tokens: generated once, shown once, stored only as SHA-256 in the `tokens` table
//! (ReplacingMergeTree by version, so revocation is a new version with `revoked = 1`).
//!
//! A token carries a role (`sensor`, `analyst`, `responder`, `admin`) and the agency code
//! it is bound to. Sensor tokens may post alerts, which are tagged with the token's agency.
//! Every role is scoped to the token's agency subtree: the agency and everything below it in
//! the directory (codes are hierarchical, so `CODE` and `CODE.*`); a token of the root (the
//! national coordination centre) sees every agency. Deny by default: a handler names its
//! [`Permission`] first.
//!
//! | permission | sensor | analyst | responder | admin |
//! |---|---|---|---|---|
//! | ingest alerts | yes | | | yes |
//! | read incidents, tickets, agencies | | yes | yes | yes |
//! | act on tickets | | | yes | yes |
//! | read the audit log and webhook deliveries | | | | yes |
//!
//! Lookups are cached for `CACHE_TTL` (unknown tokens for `NEGATIVE_TTL`), capped at
//! `CACHE_MAX` entries, so a flood of bad tokens costs ClickHouse one query per token per
//! few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::store::rows::TokenRow;
use crate::store::{ClickHouse, StoreError, quote};

/// How long a known token is trusted without asking ClickHouse again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How long an unknown token is remembered as unknown.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most cached lookups.
pub const CACHE_MAX: usize = 10_000;
/// Prefix of every token (lets secret scanners recognise them).
pub const TOKEN_PREFIX: &str = "tcn_";

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A sensor: may post alerts.
    Sensor,
    /// Reads incidents.
    Analyst,
    /// Reads incidents and (issue 7) acts on tickets.
    Responder,
    /// Everything, all agencies.
    Admin,
}

impl Role {
    /// Stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sensor => "sensor",
            Self::Analyst => "analyst",
            Self::Responder => "responder",
            Self::Admin => "admin",
        }
    }

    /// Parses the stored text.
    ///
    /// # Errors
    /// A message listing the roles.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "sensor" => Ok(Self::Sensor),
            "analyst" => Ok(Self::Analyst),
            "responder" => Ok(Self::Responder),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role '{other}' (sensor, analyst, responder, admin)"
            )),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `POST /api/v1/alerts`.
    IngestAlerts,
    /// `GET /api/v1/incidents`, `/incidents/{id}`.
    ReadIncidents,
    /// `GET /api/v1/tickets`, `/tickets/{id}`.
    ReadTickets,
    /// `GET /api/v1/agencies`.
    ReadAgencies,
    /// Acknowledge, assign, comment, change status.
    ActOnTickets,
    /// `GET /api/v1/audit`.
    ReadAudit,
    /// `GET /api/v1/webhooks/deliveries`.
    ReadWebhookLog,
}

impl Permission {
    /// Name used in messages and the audit log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IngestAlerts => "ingest_alerts",
            Self::ReadIncidents => "read_incidents",
            Self::ReadTickets => "read_tickets",
            Self::ReadAgencies => "read_agencies",
            Self::ActOnTickets => "act_on_tickets",
            Self::ReadAudit => "read_audit",
            Self::ReadWebhookLog => "read_webhook_log",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agency code.
    pub agency: String,
}

impl Principal {
    /// Whether the role grants `perm`.
    #[must_use]
    pub fn can(&self, perm: Permission) -> bool {
        match perm {
            Permission::IngestAlerts => matches!(self.role, Role::Sensor | Role::Admin),
            Permission::ReadIncidents | Permission::ReadTickets | Permission::ReadAgencies => {
                matches!(self.role, Role::Analyst | Role::Responder | Role::Admin)
            }
            Permission::ActOnTickets => matches!(self.role, Role::Responder | Role::Admin),
            Permission::ReadAudit | Permission::ReadWebhookLog => self.role == Role::Admin,
        }
    }

    /// Whether this caller may see `agency`'s data: `agency` is the token's agency or below
    /// it; the root's tokens see everything.
    #[must_use]
    pub fn sees_agency(&self, dir: &crate::agency::Directory, agency: &str) -> bool {
        dir.in_subtree(agency, &self.agency)
    }
}

/// Checks an agency code: 1-64 characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// A message saying what is allowed.
pub fn validate_agency(code: &str) -> Result<(), String> {
    if !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "agency code '{code}' must be 1-64 characters of letters, digits, '.', '_' or '-'"
        ))
    }
}

/// A new random token: `tcn_` + 43 characters of URL-safe base64 (256 random bits).
#[must_use]
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of a token, lowercase hex: what is stored and looked up.
#[must_use]
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token and stores its hash. Returns the token (shown once, never stored).
///
/// # Errors
/// [`StoreError`]; [`StoreError::Config`] for a bad agency code or empty name.
pub async fn create_token(
    ch: &ClickHouse,
    role: Role,
    agency: &str,
    name: &str,
    expires_at_s: Option<i64>,
) -> Result<String, StoreError> {
    validate_agency(agency).map_err(StoreError::Config)?;
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::Config(
            "token name must be 1-128 characters without control characters".into(),
        ));
    }
    let token = generate_token();
    let now = time::OffsetDateTime::now_utc();
    let row = TokenRow {
        token_hash: hash_token(&token),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        agency: agency.to_owned(),
        created_at: now.unix_timestamp(),
        expires_at: expires_at_s.unwrap_or(0),
        revoked: 0,
        version: u64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(1),
    };
    ch.insert("tokens", &[row]).await?;
    Ok(token)
}

/// A cached lookup: the principal (`None`: unknown token), its expiry in Unix seconds (0:
/// never), and when it was looked up.
type CacheEntry = (Option<Principal>, i64, Instant);

/// Looks tokens up in ClickHouse, with a small cache.
#[derive(Debug)]
pub struct Authenticator {
    ch: ClickHouse,
    /// Token hash → lookup.
    cache: Mutex<HashMap<String, CacheEntry>>,
}

impl Authenticator {
    /// A new authenticator over `ch`.
    #[must_use]
    pub fn new(ch: ClickHouse) -> Self {
        Self {
            ch,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The principal for a bearer token, `None` when unknown, revoked or expired.
    ///
    /// # Errors
    /// [`StoreError`] when ClickHouse cannot be asked (the caller answers 503).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let hash = hash_token(token);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Ok(cache) = self.cache.lock()
            && let Some((p, expires_at, at)) = cache.get(&hash)
        {
            let ttl = if p.is_some() { CACHE_TTL } else { NEGATIVE_TTL };
            if at.elapsed() < ttl {
                // A cached token still expires on time.
                let live = *expires_at == 0 || *expires_at > now;
                return Ok(p.clone().filter(|_| live));
            }
        }
        #[derive(serde::Deserialize)]
        struct Found {
            name: String,
            role: String,
            agency: String,
            expires_at: i64,
            revoked: u8,
        }
        let db = self.ch.database();
        let rows: Vec<Found> = self
            .ch
            .query_rows(&format!(
                "SELECT name, role, agency, toInt64(toUnixTimestamp(expires_at)) AS expires_at, revoked \
                 FROM {db}.tokens FINAL WHERE token_hash = {}",
                quote(&hash)
            ))
            .await?;
        let expires_at = rows.first().map_or(0, |f| f.expires_at);
        let principal = rows.into_iter().next().and_then(|f| {
            let live = f.revoked == 0 && (f.expires_at == 0 || f.expires_at > now);
            let role = Role::parse(&f.role).ok()?;
            live.then_some(Principal {
                name: f.name,
                role,
                agency: f.agency,
            })
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (principal.clone(), expires_at, Instant::now()));
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with("tcn_"));
        assert_eq!(a.len(), 4 + 43);
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn roles_and_scope() {
        let p = Principal {
            name: "n".into(),
            role: Role::Analyst,
            agency: "MOH".into(),
        };
        let dir = crate::agency::Directory::default();
        assert!(p.can(Permission::ReadIncidents));
        assert!(p.can(Permission::ReadTickets));
        assert!(!p.can(Permission::ActOnTickets));
        assert!(!p.can(Permission::ReadAudit));
        assert!(!p.can(Permission::IngestAlerts));
        assert!(p.sees_agency(&dir, "MOH"));
        assert!(p.sees_agency(&dir, "MOH.D1"));
        assert!(!p.sees_agency(&dir, "MOHX"));
        assert!(!p.sees_agency(&dir, "MOF"));
        let s = Principal {
            role: Role::Sensor,
            ..p.clone()
        };
        assert!(s.can(Permission::IngestAlerts));
        assert!(!s.can(Permission::ReadIncidents));
        let r = Principal {
            role: Role::Responder,
            ..p.clone()
        };
        assert!(r.can(Permission::ActOnTickets));
        assert!(!r.can(Permission::ReadAudit));
        let admin = Principal {
            role: Role::Admin,
            ..p
        };
        assert!(admin.can(Permission::ReadAudit));
        // Admins are scoped like everyone else (no directory: by code prefix).
        assert!(!admin.sees_agency(&dir, "MOF"));
        assert!(Role::parse("root").is_err());
        assert!(validate_agency("MOH.D-1_2").is_ok());
        assert!(validate_agency("MOH'; DROP").is_err());
        assert!(validate_agency("").is_err());
    }
}
