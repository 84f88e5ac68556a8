//! IPv4 and IPv6 networks for the `cidr` operator and for the kernel plan's LPM tries.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A network: an address whose host bits are zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Why text is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("'{text}' is not an IP address or network (write e.g. 10.0.0.0/8 or fd00::/8)")]
    Syntax { text: String },
    #[error("prefix length {prefix} is too long for '{text}' (at most {max})")]
    PrefixTooLong { text: String, prefix: u32, max: u32 },
    #[error("'{text}' has host bits set")]
    HostBits { text: String, network: String },
}

impl CidrError {
    /// A fix for the error, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            CidrError::HostBits { network, .. } => Some(format!("did you mean '{network}'?")),
            _ => None,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) compare as the IPv4 address.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

fn bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(prefix: u32, width: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        all & !((1u128 << (width - prefix)) - 1)
    }
}

impl Cidr {
    /// Parses `addr/len`, or a bare address as a single-host network.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax {
            text: text.to_string(),
        };
        let (addr_text, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|_| syntax())?)),
            None => (text, None),
        };
        let addr = canonical(IpAddr::from_str(addr_text).map_err(|_| syntax())?);
        let (value, width) = bits(addr);
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return Err(CidrError::PrefixTooLong {
                text: text.to_string(),
                prefix,
                max: width,
            });
        }
        let m = mask(prefix, width);
        if value & !m != 0 {
            let network = Cidr {
                addr: from_bits(value & m, width),
                prefix: prefix as u8,
            };
            return Err(CidrError::HostBits {
                text: text.to_string(),
                network: network.to_string(),
            });
        }
        Ok(Cidr {
            addr,
            prefix: prefix as u8,
        })
    }

    /// Whether `addr` is inside this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        let (net, width) = bits(self.addr);
        let (value, w) = bits(addr);
        w == width && value & mask(u32::from(self.prefix), width) == net
    }
}

fn from_bits(value: u128, width: u32) -> IpAddr {
    if width == 32 {
        IpAddr::from((value as u32).to_be_bytes())
    } else {
        IpAddr::from(value.to_be_bytes())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Cidr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains_v4_v6_and_mapped() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        assert!(!net.contains(ip("11.0.0.1")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("10.1.2.3")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert_eq!(Cidr::parse("169.254.169.254").unwrap().prefix, 32);
    }

    #[test]
    fn bad_networks_are_errors_with_fixes() {
        let e = Cidr::parse("10.1.0.0/8").unwrap_err();
        assert_eq!(e.hint().as_deref(), Some("did you mean '10.0.0.0/8'?"));
        assert!(matches!(
            Cidr::parse("10.0.0.0/33"),
            Err(CidrError::PrefixTooLong { .. })
        ));
        assert!(matches!(
            Cidr::parse("nope/8"),
            Err(CidrError::Syntax { .. })
        ));
    }
}
