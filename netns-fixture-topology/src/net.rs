//! Addresses with a prefix length (`10.0.0.10/16`), and the IP arithmetic of the
//! topology model (networks here, address pools in `pool.rs`), on addresses as
//! 128-bit integers for both families.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An interface address with its prefix length, such as `192.168.0.1/24`.
///
/// ```
/// use netns_fixture_topology::IpNet;
/// let net: IpNet = "192.168.0.7/24".parse().unwrap();
/// assert_eq!(net.network().to_string(), "192.168.0.0/24");
/// assert!(net.contains("192.168.0.200".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address itself.
    pub addr: IpAddr,
    /// The prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

impl IpNet {
    /// Builds an `IpNet`, checking the prefix length against the address family.
    ///
    /// ```
    /// use netns_fixture_topology::IpNet;
    /// assert!(IpNet::new("10.0.0.1".parse().unwrap(), 33).is_err());
    /// ```
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!(
                "prefix length /{prefix} is too long for {addr} (at most /{max})"
            ));
        }
        Ok(IpNet { addr, prefix })
    }

    /// The network this address belongs to (host bits cleared).
    ///
    /// ```
    /// use netns_fixture_topology::IpNet;
    /// let net: IpNet = "10.0.0.10/16".parse().unwrap();
    /// assert_eq!(net.network().to_string(), "10.0.0.0/16");
    /// ```
    pub fn network(&self) -> IpNet {
        IpNet {
            addr: mask(self.addr, self.prefix),
            prefix: self.prefix,
        }
    }

    /// Whether `ip` lies in this network.
    ///
    /// ```
    /// use netns_fixture_topology::IpNet;
    /// let net: IpNet = "10.0.0.0/8".parse().unwrap();
    /// assert!(net.contains("10.1.2.3".parse().unwrap()));
    /// assert!(!net.contains("11.0.0.1".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == mask(self.addr, self.prefix)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    let v4 = addr.is_ipv4();
    from_bits(bits(addr) & !host_mask(v4, prefix), v4)
}

/// Bits in an address of the family (`v4`: IPv4).
pub(crate) fn width(v4: bool) -> u32 {
    if v4 {
        32
    } else {
        128
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub(crate) fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

/// The address of the family (`v4`: IPv4) with these bits.
pub(crate) fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// The host part of a prefix: all ones in the low `width - prefix` bits.
pub(crate) fn host_mask(v4: bool, prefix: u8) -> u128 {
    let host_bits = width(v4) - u32::from(prefix);
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

/// First and last address of `net`'s network.
pub(crate) fn range(net: &IpNet) -> (u128, u128) {
    let mask = host_mask(net.addr.is_ipv4(), net.prefix);
    let start = bits(net.addr) & !mask;
    (start, start | mask)
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` has no prefix length (write it like `10.0.0.1/24`)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{s}` is not an IP address"))?;
        // u8's parser takes `+24` and `024`, which other tools read differently.
        let canonical = prefix == "0"
            || (!prefix.starts_with('0') && prefix.bytes().all(|b| b.is_ascii_digit()));
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| format!("`/{prefix}` in `{s}` is not a prefix length (write it in plain digits, like `/24`)"))?;
        IpNet::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("10.0.0.10/16".parse::<IpNet>().unwrap().prefix, 16);
        assert_eq!(
            "fd00::1/64".parse::<IpNet>().unwrap().to_string(),
            "fd00::1/64"
        );
        assert!("10.0.0.1"
            .parse::<IpNet>()
            .unwrap_err()
            .contains("no prefix length"));
        assert!("10.0.0.1/33"
            .parse::<IpNet>()
            .unwrap_err()
            .contains("too long"));
        assert!("10.0.0.300/24"
            .parse::<IpNet>()
            .unwrap_err()
            .contains("not an IP address"));
        assert!("fd00::1/129"
            .parse::<IpNet>()
            .unwrap_err()
            .contains("at most /128"));
    }
}
