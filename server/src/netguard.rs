//! Refusing to send a secret to private, loopback, link-local or metadata addresses. The check
//! runs on the addresses a name resolves to, at connect time (so DNS rebinding cannot slip past),
//! and on IP literals before sending.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let carried = embedded_v4(v6);
            if !carried.is_empty() {
                return carried.into_iter().all(is_public_v4);
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254)
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)) // documentation
        }
    }
}

/// The IPv4 addresses an IPv6 address carries, by which it is judged: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`),
/// 6to4 (`2002:AABB:CCDD::/48`) and Teredo (`2001:0::/32`: the server, and the client's
/// address stored inverted).
fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let seg = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    let last = v4(seg[6], seg[7]);
    let compatible = seg[..6] == [0; 6] && !(v6.is_loopback() || v6.is_unspecified());
    let nat64 = seg[0] == 0x64 && seg[1] == 0xff9b && (seg[2..6] == [0; 4] || seg[2] == 1);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        vec![mapped]
    } else if compatible || nat64 {
        vec![last]
    } else if seg[0] == 0x2002 {
        vec![v4(seg[1], seg[2])]
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        vec![v4(seg[2], seg[3]), v4(!seg[6], !seg[7])]
    } else {
        Vec::new()
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16, cloud metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || a >= 240)
}

/// The error a refused address produces; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("the destination resolves to a private or local address, which this server does not send secrets to")]
pub struct PrivateAddress;

/// DNS resolution that drops non-public addresses unless the operator allowed them.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(PrivateAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            // IPv4-compatible, 6to4 and Teredo addresses carrying loopback, private or metadata addresses.
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:7f00:1::808:808",    // Teredo server 127.0.0.1
            "2001:0:808:808::80ff:fffe", // Teredo client 127.0.0.1 (stored inverted)
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "104.18.6.192",
            "2606:4700::1",
            "::ffff:8.8.8.8",
            "::808:808",
            "2002:808:808::1",
            "64:ff9b::808:808",
            "2001:0:808:808::f7f7:f7f7",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
