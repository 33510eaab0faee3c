//! Routes (longest-prefix match over connected and configured routes)
//! and the hasher of the per-worker next-hop cache.

use super::*;

#[derive(Debug, Clone, Copy)]
struct Route {
    prefix_v4: u32,
    prefix_v6: u128,
    v4: bool,
    len: u8,
    via: Option<IpAddr>,
    port: PortId,
}

/// An IPv4 route in the form the lookup wants: mask and prefix as `u32`.
#[derive(Debug, Clone, Copy)]
struct Route4 {
    mask: u32,
    prefix: u32,
    port: PortId,
    via: Option<IpAddr>,
}

/// Static + connected routes, longest prefix first. Lookup is O(routes);
/// IPv4 routes are also kept as (mask, prefix) pairs, 16 bytes each, so an
/// IPv4 lookup is one AND and compare per route.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    v4: Vec<Route4>,
}

impl RouteTable {
    pub(super) fn add(&mut self, prefix: IpAddr, len: u8, via: Option<IpAddr>, port: PortId) {
        let (v4, prefix_v4, prefix_v6) = match prefix {
            IpAddr::V4(a) => (true, mask4(u32::from(a), len), 0),
            IpAddr::V6(a) => (false, 0, mask6(u128::from(a), len)),
        };
        self.routes.push(Route {
            prefix_v4,
            prefix_v6,
            v4,
            len,
            via,
            port,
        });
        // Stable sort: longest prefix first; ties keep config order.
        self.routes.sort_by_key(|r| core::cmp::Reverse(r.len));
        self.v4 = self
            .routes
            .iter()
            .filter(|r| r.v4)
            .map(|r| Route4 {
                mask: mask4(u32::MAX, r.len),
                prefix: r.prefix_v4,
                port: r.port,
                via: r.via,
            })
            .collect();
    }

    /// [`RouteTable::lookup`] for an IPv4 destination.
    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Option<(PortId, IpAddr)> {
        let d = u32::from(dst);
        self.v4
            .iter()
            .find(|r| d & r.mask == r.prefix)
            .map(|r| (r.port, r.via.unwrap_or(IpAddr::V4(dst))))
    }

    /// Longest-prefix match: `(egress port, next hop address)`.
    pub fn lookup(&self, dst: IpAddr) -> Option<(PortId, IpAddr)> {
        match dst {
            IpAddr::V4(d) => self.lookup_v4(d),
            IpAddr::V6(d) => {
                let d = u128::from(d);
                self.routes
                    .iter()
                    .find(|r| !r.v4 && mask6(d, r.len) == r.prefix_v6)
                    .map(|r| (r.port, r.via.unwrap_or(dst)))
            }
        }
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// Hasher of the per-worker next-hop cache (looked up once per forwarded
/// packet): its keys are local (port, next hop) pairs, not attacker-chosen
/// in number, so a multiply-rotate hash (Fx-style) replaces SipHash there.
#[derive(Clone, Copy, Default)]
pub(super) struct NhHash;

impl core::hash::BuildHasher for NhHash {
    type Hasher = NhHasher;
    fn build_hasher(&self) -> NhHasher {
        NhHasher(0)
    }
}

pub(super) struct NhHasher(u64);

impl NhHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl core::hash::Hasher for NhHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let r = c.remainder();
        if !r.is_empty() {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(r);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
