//! The network configuration file (`--net-config`): DNS capture, tc interfaces and deny rules,
//! until the policy engine drives the same maps (it replaces only its own rules; see
//! `shrike_bpf::net::NetRules::replace_source`).
//!
//! JSON, so it needs no new parser:
//!
//! ```json
//! {
//!   "dns": true,
//!   "interfaces": ["eth0"],
//!   "rules": [
//!     { "id": "NET-001", "name": "No metadata service", "severity": "high",
//!       "direction": "egress", "cidr": "169.254.169.254/32", "ports": "80",
//!       "protocol": "tcp", "binary": "/usr/bin/curl", "audit": false }
//!   ]
//! }
//! ```
//!
//! A rule: `direction` `egress` (default; connect and UDP send), `bind` or `ingress` (tc);
//! `cidr` (required; an address alone is a host); `ports` a number or `"lo-hi"` (default all);
//! `protocol` `tcp`, `udp` or `any` (default); at most one scope, `binary` (an executable's
//! path) or `cgroup` (a cgroup v2 directory: that cgroup and everything below it); `audit`
//! true reports `would_deny` without refusing. `id`, `name` and `severity` go into the alert.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use shrike_bpf::net::{
    IpNet, NetDirection, NetOptions, NetProtocol, NetRule, NetScope, TcInterfaces,
    CONFIG_INDEX_BASE,
};

/// How many rules the configuration may hold (their indexes follow `CONFIG_INDEX_BASE`).
pub const MAX_RULES: usize = shrike_bpf::net::CONFIG_RULES_MAX;

/// A JSON value in which no object has a key twice: `{"cidr": "10.0.0.0/8", "cidr": "0/0"}`
/// would otherwise keep only the last, silently.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {key:?}: each key may appear once in an object"
                )));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// What the rule stage says in the alert of a configuration rule the kernel names by index
/// (whether it refused or only audited comes from the kernel's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRuleInfo {
    pub index: u16,
    pub rule_id: String,
    pub name: String,
    pub severity: String,
}

/// A parsed configuration: what the sensor loads and what the rule stage says in alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub options: NetOptions,
    pub infos: Vec<NetRuleInfo>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<NetConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the network configuration {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses a configuration text.
pub fn parse(text: &str) -> Result<NetConfig> {
    let root = serde_json::from_str::<Strict>(text)
        .context("not valid JSON")?
        .0;
    let Some(obj) = root.as_object() else {
        bail!("the top level must be an object with \"rules\", \"dns\", \"interfaces\"");
    };
    for key in obj.keys() {
        if !["dns", "interfaces", "rules"].contains(&key.as_str()) {
            bail!("unknown key {key:?} (expected \"dns\", \"interfaces\", \"rules\")");
        }
    }
    let dns = match obj.get("dns") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => bail!("\"dns\" must be true or false, not {other}"),
    };
    let tc_interfaces = match obj.get("interfaces") {
        None => TcInterfaces::All,
        Some(Value::Array(names)) => TcInterfaces::Named(
            names
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(String::from)
                        .with_context(|| format!("interface names are strings, not {n}"))
                })
                .collect::<Result<_>>()?,
        ),
        Some(other) => bail!("\"interfaces\" must be a list of names, not {other}"),
    };
    let mut rules = Vec::new();
    let mut infos = Vec::new();
    let empty = Vec::new();
    let list = match obj.get("rules") {
        None => &empty,
        Some(Value::Array(list)) => list,
        Some(other) => bail!("\"rules\" must be a list, not {other}"),
    };
    if list.len() > MAX_RULES {
        bail!("{} rules: at most {MAX_RULES} are supported", list.len());
    }
    for (i, r) in list.iter().enumerate() {
        let index = CONFIG_INDEX_BASE
            .checked_add(i as u16)
            .filter(|_| i < MAX_RULES)
            .with_context(|| format!("too many rules: at most {MAX_RULES} are supported"))?;
        let (rule, info) = parse_rule(r, index).with_context(|| format!("rule {}", i + 1))?;
        rules.push(rule);
        infos.push(info);
    }
    let required = !rules.is_empty();
    Ok(NetConfig {
        options: NetOptions {
            dns,
            tc_interfaces,
            rules,
            required,
        },
        infos,
    })
}

fn string<'a>(r: &'a serde_json::Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match r.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => bail!("{key:?} must be a string, not {other}"),
    }
}

fn parse_rule(r: &Value, index: u16) -> Result<(NetRule, NetRuleInfo)> {
    let Some(r) = r.as_object() else {
        bail!("a rule is an object");
    };
    const KEYS: &[&str] = &[
        "id",
        "name",
        "severity",
        "direction",
        "cidr",
        "ports",
        "protocol",
        "binary",
        "cgroup",
        "audit",
    ];
    for key in r.keys() {
        if !KEYS.contains(&key.as_str()) {
            bail!("unknown key {key:?} (expected one of {})", KEYS.join(", "));
        }
    }
    let direction = match string(r, "direction")?.unwrap_or("egress") {
        "egress" => NetDirection::Egress,
        "bind" => NetDirection::Bind,
        "ingress" => NetDirection::Ingress,
        other => bail!("direction {other:?}: expected egress, bind or ingress"),
    };
    let cidr = string(r, "cidr")?.context("\"cidr\" is required (e.g. \"10.0.0.0/8\")")?;
    let network = IpNet::parse(cidr)?;
    let ports = match r.get("ports") {
        None => (0, u16::MAX),
        Some(Value::Number(n)) => {
            let p = n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .with_context(|| format!("port {n} is not 0-65535"))?;
            (p, p)
        }
        Some(Value::String(s)) => parse_ports(s)?,
        Some(other) => bail!("\"ports\" must be a number or \"lo-hi\", not {other}"),
    };
    let protocol = match string(r, "protocol")?.unwrap_or("any") {
        "tcp" => Some(NetProtocol::Tcp),
        "udp" => Some(NetProtocol::Udp),
        "any" => None,
        other => bail!("protocol {other:?}: expected tcp, udp or any"),
    };
    let scope = match (string(r, "binary")?, string(r, "cgroup")?) {
        (Some(_), Some(_)) => bail!("give \"binary\" or \"cgroup\", not both"),
        (Some(b), None) => NetScope::Binary(PathBuf::from(b)),
        (None, Some(c)) => NetScope::Cgroup(PathBuf::from(c)),
        (None, None) => NetScope::Host,
    };
    let audit = match r.get("audit") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => bail!("\"audit\" must be true or false, not {other}"),
    };
    let id = string(r, "id")?
        .map(String::from)
        .unwrap_or_else(|| format!("NET-CONFIG-{}", index - CONFIG_INDEX_BASE + 1));
    let name = string(r, "name")?
        .map(String::from)
        .unwrap_or_else(|| format!("Network deny rule {id}"));
    let severity = string(r, "severity")?.unwrap_or("high");
    if !["info", "low", "medium", "high", "critical"].contains(&severity) {
        bail!("severity {severity:?}: expected info, low, medium, high or critical");
    }
    Ok((
        NetRule {
            index,
            direction,
            network,
            ports,
            protocol,
            scope,
            audit,
        },
        NetRuleInfo {
            index,
            rule_id: id,
            name,
            severity: severity.to_string(),
        },
    ))
}

fn parse_ports(s: &str) -> Result<(u16, u16)> {
    let num = |t: &str| {
        t.trim()
            .parse::<u16>()
            .with_context(|| format!("port {t:?} is not 0-65535"))
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(s)?;
            (p, p)
        }
    };
    if lo > hi {
        bail!("port range {s:?} is empty");
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_rule_parses_into_a_kernel_rule_and_its_alert() {
        let c = parse(
            r#"{"dns": false, "interfaces": ["veth1"], "rules": [
                {"id": "NET-1", "name": "no db", "severity": "critical", "direction": "egress",
                 "cidr": "10.0.0.0/8", "ports": "5432-5433", "protocol": "tcp",
                 "binary": "/usr/bin/psql"},
                {"cidr": "2001:db8::/32", "ports": 53, "direction": "ingress", "audit": true}
            ]}"#,
        )
        .unwrap();
        assert!(!c.options.dns);
        assert!(c.options.required);
        assert_eq!(
            c.options.tc_interfaces,
            TcInterfaces::Named(vec!["veth1".into()])
        );
        let r = &c.options.rules[0];
        assert_eq!(r.index, CONFIG_INDEX_BASE);
        assert_eq!(r.ports, (5432, 5433));
        assert_eq!(r.protocol, Some(NetProtocol::Tcp));
        assert_eq!(r.scope, NetScope::Binary("/usr/bin/psql".into()));
        assert_eq!(c.infos[0].rule_id, "NET-1");
        assert_eq!(c.infos[0].severity, "critical");
        let r = &c.options.rules[1];
        assert_eq!(
            (r.index, r.ports, r.audit),
            (CONFIG_INDEX_BASE + 1, (53, 53), true)
        );
        assert_eq!(r.direction, NetDirection::Ingress);
        assert_eq!(c.infos[1].rule_id, "NET-CONFIG-2");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("[]", "top level"),
            (r#"{"rule": []}"#, "unknown key \"rule\""),
            (r#"{"rules": [{"ports": 1}]}"#, "\"cidr\" is required"),
            (
                r#"{"rules": [{"cidr": "10.0.0.0/40"}]}"#,
                "not an IP address or CIDR",
            ),
            (r#"{"rules": [{"cidr": "::1", "ports": "9-1"}]}"#, "empty"),
            (
                r#"{"rules": [{"cidr": "::1", "ports": 70000}]}"#,
                "not 0-65535",
            ),
            (
                r#"{"rules": [{"cidr": "::1", "protocol": "icmp"}]}"#,
                "expected tcp, udp or any",
            ),
            (
                r#"{"rules": [{"cidr": "::1", "binary": "/a", "cgroup": "/b"}]}"#,
                "not both",
            ),
            (
                r#"{"rules": [{"cidr": "::1", "severity": "huge"}]}"#,
                "severity",
            ),
            (
                r#"{"rules": [{"cidr": "::1", "dport": 1}]}"#,
                "unknown key \"dport\"",
            ),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
        let empty = parse("{}").unwrap();
        assert!(empty.options.dns && !empty.options.required);
    }

    /// Issue 19, case 7: a key given twice (in a rule or at the top) is refused with its
    /// position instead of the last one silently winning; too many rules says the limit.
    #[test]
    fn duplicate_keys_are_refused_and_the_rule_limit_is_named() {
        for text in [
            r#"{"rules": [{"cidr": "10.0.0.0/8", "cidr": "0.0.0.0/0"}]}"#,
            r#"{"dns": true, "dns": false}"#,
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains("duplicate key"), "{text}: {err}");
            assert!(err.contains("line 1 column"), "{text}: {err}");
        }
        let rules = vec![r#"{"cidr": "10.0.0.1"}"#; MAX_RULES + 1].join(",");
        let err = format!(
            "{:#}",
            parse(&format!(r#"{{"rules": [{rules}]}}"#)).unwrap_err()
        );
        assert_eq!(err, "4096 rules: at most 4095 are supported");
        let rules = vec![r#"{"cidr": "10.0.0.1"}"#; MAX_RULES].join(",");
        assert_eq!(
            parse(&format!(r#"{{"rules": [{rules}]}}"#))
                .unwrap()
                .options
                .rules
                .len(),
            MAX_RULES
        );
    }
}
