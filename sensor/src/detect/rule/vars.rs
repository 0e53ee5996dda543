//! Rule variables (`$HOME_NET`, `$HTTP_PORTS`, ...).
//!
//! Defaults are the values of Suricata 7's shipped suricata.yaml (`vars.address-groups`
//! and `vars.port-groups`), so rulesets written for Suricata load unchanged. The TOML
//! config overrides or adds to them.

use std::collections::HashMap;

/// Address and port variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    addresses: HashMap<String, String>,
    ports: HashMap<String, String>,
}

const ADDRESS_DEFAULTS: &[(&str, &str)] = &[
    ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

const PORT_DEFAULTS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
];

impl Vars {
    /// The variables of Suricata 7's default configuration.
    #[must_use]
    pub fn suricata_defaults() -> Self {
        let mut v = Self::default();
        for (k, val) in ADDRESS_DEFAULTS {
            v.set_address(k, val);
        }
        for (k, val) in PORT_DEFAULTS {
            v.set_port(k, val);
        }
        v
    }

    /// Sets an address variable (name without `$`).
    pub fn set_address(&mut self, name: &str, value: &str) {
        self.addresses.insert(name.to_owned(), value.to_owned());
    }

    /// Sets a port variable (name without `$`).
    pub fn set_port(&mut self, name: &str, value: &str) {
        self.ports.insert(name.to_owned(), value.to_owned());
    }

    /// An address variable's value.
    #[must_use]
    pub fn address(&self, name: &str) -> Option<&str> {
        self.addresses.get(name).map(String::as_str)
    }

    /// A port variable's value.
    #[must_use]
    pub fn port(&self, name: &str) -> Option<&str> {
        self.ports.get(name).map(String::as_str)
    }
}
