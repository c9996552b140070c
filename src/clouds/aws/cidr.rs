//! Address space for a new VPC: a /16 from private space (RFC 1918) only, never stepping
//! into public space as the reference does, and its subnets.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The first address, as a number.
    base: u32,
    /// The prefix length, 0 to 32.
    prefix: u8,
}

impl Cidr {
    /// The network of `address/prefix` (host bits cleared).
    pub fn new(address: Ipv4Addr, prefix: u8) -> Self {
        let mask = Self::mask(prefix);
        Self { base: u32::from(address) & mask, prefix }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
    }

    fn last(self) -> u32 {
        self.base | !Self::mask(self.prefix)
    }

    /// True when the two networks share an address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }

    /// The `index`-th subnet of length `prefix` inside this network, if it fits.
    pub fn subnet(self, prefix: u8, index: u32) -> Option<Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if u64::from(index) >= count {
            return None;
        }
        let size = 1u64 << (32 - u32::from(prefix));
        Some(Cidr { base: self.base + (u64::from(index) * size) as u32, prefix })
    }

    /// The subnets of length `prefix`, in address order.
    pub fn subnets(self, prefix: u8) -> impl Iterator<Item = Cidr> {
        (0..).map_while(move |i| self.subnet(prefix, i))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').ok_or_else(|| format!("'{text}' is not a CIDR block"))?;
        let address: Ipv4Addr = address.parse().map_err(|_| format!("'{text}' has no valid IPv4 address"))?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("'{text}' has no valid prefix"))?;
        Ok(Self::new(address, prefix))
    }
}

/// The private address ranges of RFC 1918, in the order their /16s are tried.
const PRIVATE_RANGES: [(Ipv4Addr, u8); 3] = [(Ipv4Addr::new(10, 0, 0, 0), 8), (Ipv4Addr::new(172, 16, 0, 0), 12), (Ipv4Addr::new(192, 168, 0, 0), 16)];

/// The first private /16 that overlaps none of `taken`, or None when private space is full.
pub fn free_private_16(taken: &[Cidr]) -> Option<Cidr> {
    PRIVATE_RANGES.iter().flat_map(|(address, prefix)| Cidr::new(*address, *prefix).subnets(16)).find(|candidate| !taken.iter().any(|t| t.overlaps(*candidate)))
}

/// The first `count` blocks of length `prefix` inside `network` that overlap none of `taken`.
pub fn free_subnets(network: Cidr, prefix: u8, taken: &[Cidr], count: usize) -> Vec<Cidr> {
    network.subnets(prefix).filter(|c| !taken.iter().any(|t| t.overlaps(*c))).take(count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn first_choice_avoids_moto_default_vpc() {
        assert_eq!(free_private_16(&[cidr("172.31.0.0/16")]), Some(cidr("10.0.0.0/16")));
        assert_eq!(free_private_16(&[cidr("10.0.0.0/16"), cidr("10.1.0.0/16")]), Some(cidr("10.2.0.0/16")));
    }

    #[test]
    fn a_taken_10_slash_8_moves_to_172_16_and_never_into_public_space() {
        assert_eq!(free_private_16(&[cidr("10.0.0.0/8")]), Some(cidr("172.16.0.0/16")));
        let all_private = [cidr("10.0.0.0/8"), cidr("172.16.0.0/12")];
        assert_eq!(free_private_16(&all_private), Some(cidr("192.168.0.0/16")));
        let full = [cidr("10.0.0.0/8"), cidr("172.16.0.0/12"), cidr("192.168.0.0/16")];
        assert_eq!(free_private_16(&full), None, "must not step to 172.32.0.0/16 or any public block");
    }

    #[test]
    fn subnets_are_the_first_free_slash_18s() {
        let vpc = cidr("10.0.0.0/16");
        let three: Vec<String> = free_subnets(vpc, 18, &[], 3).iter().map(ToString::to_string).collect();
        assert_eq!(three, ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"]);
        let after_taken = free_subnets(vpc, 18, &[cidr("10.0.64.0/20")], 2);
        assert_eq!(after_taken, [cidr("10.0.0.0/18"), cidr("10.0.128.0/18")]);
        assert_eq!(free_subnets(vpc, 18, &[], 9).len(), 4, "a /16 holds four /18s");
    }

    #[test]
    fn parsing_rejects_garbage_and_clears_host_bits() {
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert_eq!(cidr("10.1.2.3/16").to_string(), "10.1.0.0/16");
    }
}
