//! What the workers of one process share: configuration, ports, routes,
//! the neighbour table, the NAT stage (one NAT per worker), the IPv6 flow
//! tracker and the counters.

use super::*;

/// State shared by all workers of one process.
pub struct Shared {
    pub config: Arc<Config>,
    pub ports: Vec<PortInfo>,
    pub routes: RouteTable,
    pub neighbors: NeighborTable,
    pub nat: Option<crate::natglue::NatStage>,
    pub v6flows: crate::v6flow::V6Flows,
    pub counters: Counters,
    /// Per port: the token bucket generated ICMP errors sent there draw
    /// from (`[icmp_rate]`; slow path only, so a lock per port).
    pub icmp_buckets: Vec<Mutex<crate::ratelimit::TokenBucket>>,
    /// Some port has a VLAN: frames are checked, untagged and tagged per
    /// port (`pipeline::vlan`). False: only a tagged frame costs anything
    /// (it is dropped).
    pub vlan_any: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// EUI-64 link-local address of a MAC (RFC 4291 appendix A).
pub fn link_local(mac: Mac) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8] = mac[0] ^ 0x02;
    o[9] = mac[1];
    o[10] = mac[2];
    o[11] = 0xff;
    o[12] = 0xfe;
    o[13] = mac[3];
    o[14] = mac[4];
    o[15] = mac[5];
    Ipv6Addr::from(o)
}

impl Shared {
    /// Build the shared state for `workers` pipelines.
    ///
    /// # Errors
    /// [`BuildError`] when the NAT or a flow table refuses the configuration.
    pub fn new(config: Config, workers: usize) -> Result<Arc<Shared>, BuildError> {
        let config = Arc::new(config);
        let mut ports = Vec::with_capacity(config.ports.len());
        let mut routes = RouteTable::default();
        for (i, p) in config.ports.iter().enumerate() {
            let mut v6 = config.ipv6_addresses(i);
            v6.push(link_local(p.mac.0));
            ports.push(PortInfo {
                name: p.name.clone(),
                mac: p.mac.0,
                role: p.role,
                v4: config.ports[i]
                    .ipv4
                    .iter()
                    .filter_map(|c| match c.addr {
                        IpAddr::V4(a) => Some(a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
                v6,
                mtu: p.mtu,
                vlan: p.vlan,
            });
            // Connected routes.
            for c in p.ipv4.iter().chain(&p.ipv6) {
                routes.add(c.addr, c.len, None, i as PortId);
            }
            routes.add(
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
                10,
                None,
                i as PortId,
            );
        }
        for r in &config.routes {
            let port = config.port_index(&r.port).unwrap_or(0) as PortId;
            routes.add(r.prefix.addr, r.prefix.len, r.via, port);
        }
        let neighbors = NeighborTable::new(
            &config.neighbor,
            config.neighbors.iter().map(|n| {
                let port = config.port_index(&n.port).unwrap_or(0) as PortId;
                ((port, n.ip), n.mac.0)
            }),
        );
        let nat = match &config.nat {
            Some(n) => Some(crate::natglue::NatStage::new(n, &config, workers.max(1))?),
            None => None,
        };
        let v6flows = crate::v6flow::V6Flows::new(&config, workers.max(1))?;
        let counters = Counters::new(workers.max(1), ports.len());
        let icmp_buckets = config
            .ports
            .iter()
            .map(|p| {
                let r = p.icmp_rate(&config);
                Mutex::new(crate::ratelimit::TokenBucket::new(r.per_sec, r.burst))
            })
            .collect();
        let vlan_any = ports.iter().any(|p| p.vlan.is_some());
        Ok(Arc::new(Shared {
            vlan_any,
            config,
            ports,
            routes,
            neighbors,
            nat,
            v6flows,
            counters,
            icmp_buckets,
        }))
    }

    /// Port names in port order.
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name.clone()).collect()
    }

    pub(super) fn is_own_v4(&self, a: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| p.v4.contains(&a))
    }

    pub(super) fn is_own_v6(&self, a: Ipv6Addr) -> bool {
        self.ports.iter().any(|p| p.v6.contains(&a))
    }
}
