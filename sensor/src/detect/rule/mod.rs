//! The rule language: Suricata 7 syntax in, [`Rule`] values out.
//!
//! ```text
//! alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"..."; flow:established,to_server;
//!     http.uri; content:"/evil"; startswith; classtype:trojan-activity; sid:1; rev:1;)
//! ```
//!
//! [`parse_rule`] handles one rule; [`load`] reads rule files (comments, line
//! continuations), reporting each rejected rule as `file:line: reason` and keeping the
//! rest. A keyword Tocsin does not implement rejects the rule with the keyword named: a
//! rule is never silently evaluated with part of it ignored. The few keywords with no
//! effect on alerting (`tag`, `prefilter`, `rawbytes`, ...) are accepted and listed in
//! [`parse::IGNORED_KEYWORDS`].

pub mod address;
pub mod ast;
pub mod buffers;
pub mod classification;
mod keywords;
pub mod load;
mod parse;
pub mod port;
pub mod vars;

pub use ast::*;
pub use load::{LoadReport, Rejection, load_files, load_str};
pub use parse::{IGNORED_KEYWORDS, parse_rule};
pub use vars::Vars;

/// Why a rule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule's text is not `header (options)`.
    #[error("syntax: {0}")]
    Syntax(String),
    /// Unknown action word.
    #[error("unknown action '{0}'")]
    Action(String),
    /// Unknown protocol word.
    #[error("unknown protocol '{0}'")]
    Protocol(String),
    /// Address expression problem.
    #[error("address: {0}")]
    Address(#[from] address::AddressError),
    /// Port expression problem.
    #[error("port: {0}")]
    Port(#[from] port::PortError),
    /// A keyword Tocsin does not implement.
    #[error("unsupported keyword '{0}'")]
    Unsupported(String),
    /// A keyword Tocsin does not know at all (Suricata would reject it too).
    #[error("unknown keyword '{0}'")]
    UnknownKeyword(String),
    /// A keyword's value is invalid.
    #[error("invalid '{keyword}': {reason}")]
    Value {
        /// The keyword.
        keyword: String,
        /// What is wrong.
        reason: String,
    },
    /// A required option is missing (`sid`).
    #[error("missing '{0}'")]
    Missing(&'static str),
}

impl RuleError {
    /// A short category for summaries (`by_reason`): the error without rule-specific values,
    /// except the keyword name, which users need to see.
    #[must_use]
    pub fn reason_key(&self) -> String {
        match self {
            Self::Syntax(_) => "syntax error".to_owned(),
            Self::Action(_) => "unknown action".to_owned(),
            Self::Protocol(p) => format!("unknown protocol '{p}'"),
            Self::Address(address::AddressError::UndefinedVar(v)) => {
                format!("undefined variable ${v}")
            }
            Self::Address(_) => "invalid address".to_owned(),
            Self::Port(port::PortError::UndefinedVar(v)) => format!("undefined variable ${v}"),
            Self::Port(_) => "invalid port".to_owned(),
            Self::Unsupported(k) => format!("unsupported keyword '{k}'"),
            Self::UnknownKeyword(k) => format!("unknown keyword '{k}'"),
            Self::Value { keyword, .. } => format!("invalid '{keyword}' value"),
            Self::Missing(k) => format!("missing '{k}'"),
        }
    }
}

pub(crate) fn value_err(keyword: &str, reason: impl Into<String>) -> RuleError {
    RuleError::Value {
        keyword: keyword.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
