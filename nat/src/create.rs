//! Session creation: outbound (masquerade: the mapping, its port and the
//! two keys), inbound (port forwards, and endpoint-independent or
//! address-dependent filtering on an existing mapping), the insert.

use super::*;

impl Nat {
    /// A new outbound session for packet `t` (`pk`: its key and hash):
    /// its mapping (existing or new: port allocated), the session and its
    /// two keys inserted.
    pub(crate) fn create_outbound(
        &mut self,
        t: &Tuple,
        pk: KeyHash,
        flags: u8,
        icmp_type: Option<u8>,
        now: u64,
    ) -> Step {
        self.last_now = self.last_now.max(now);
        if !self.is_inside(t.src) || self.is_inside(t.dst) {
            // Not masqueraded traffic (or inside-to-inside).
            return Step::Untouched;
        }
        match t.proto {
            ip_protocol::TCP
                if flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST)
                    != tcp::flags::SYN =>
            {
                return Step::Drop(DropReason::TcpNotSyn);
            }
            ip_protocol::ICMP if !icmp_type.is_some_and(icmpv4::is_query_request) => {
                return Step::Drop(DropReason::NoSession);
            }
            _ => {}
        }
        let key = MapKey {
            proto: t.proto,
            in_ip: t.src,
            in_port: t.sport,
            remote: (self.cfg.mapping == MappingBehavior::AddressAndPortDependent)
                .then_some((t.dst, t.dport)),
        };
        // The slab slot the insert reuses (its free-list link is read
        // first): loading while the mapping is found or made.
        self.table.prefetch_insert_slot();
        let ext = self.outbound_mapping(&key, t, now);
        if let Ok((ip, port, _)) = ext
            && t.proto == ip_protocol::TCP
        {
            // The inside host opens the connection a held unsolicited
            // SYN was for (simultaneous open): that SYN is dropped
            // silently, never answered (RFC 5382 REQ-4).
            self.pool.syn.cancel(&(t.dst, t.dport, ip, port));
        }
        let (ext_ip, ext_port, rk) = match ext {
            Ok(e) => e,
            Err(r) => return Step::Drop(r),
        };
        let xlat = outbound_xlat(t, ext_ip, ext_port);
        let tcp = TcpTrack::opened();
        let session = Session {
            orig: *t,
            xlat,
            orig_side: Side::Inside,
            kind: SessionKind::Masquerade,
            tcp,
            mapped: true,
        };
        self.insert(session, t, Some(pk), rk, tcp.class(), now)
    }

    /// The external endpoint of an outbound session's mapping `mk`: the
    /// existing mapping (one more reference) or a new one; with the
    /// session's reply key and its hash, whose index bucket is being
    /// loaded (prefetched as soon as the endpoint is known, so that miss
    /// overlaps the mapping's own index writes).
    pub(crate) fn outbound_mapping(
        &mut self,
        mk: &MapKey,
        t: &Tuple,
        now: u64,
    ) -> Result<(Ipv4Addr, u16, Option<KeyHash>), DropReason> {
        let table = &self.table;
        let mut rk = None;
        let ext = self.pool.map_outbound(mk, t.dst, now, |ip, port| {
            let k = key(&outbound_xlat(t, ip, port).reversed());
            let h = table.hash(&k);
            table.prefetch_index(h);
            rk = Some((k, h));
        });
        match ext {
            Ok((ip, port)) => Ok((ip, port, rk)),
            Err(AllocError::QuotaExceeded) => Err(DropReason::QuotaExceeded),
            Err(AllocError::Exhausted) => Err(DropReason::PoolExhausted),
            Err(AllocError::Protocol(_)) => Err(DropReason::UnsupportedProtocol),
        }
    }

    /// Insert a new session created by packet `t` (its mapping reference,
    /// if any, already taken: a refused insert gives it back). `pk`: the
    /// packet's key and hash when the packet is the session's forward
    /// direction (`s.orig == *t`), else `None` (an inbound-created
    /// masquerade session, entered by its reverse key); `rk`: the reply
    /// key and its hash if the caller has them.
    pub(crate) fn insert(
        &mut self,
        s: Session,
        t: &Tuple,
        pk: Option<KeyHash>,
        rk: Option<KeyHash>,
        class: TimeoutClass,
        now: u64,
    ) -> Step {
        let expires = now.saturating_add(self.timeout(t.proto, class));
        let fwd = s.orig;
        debug_assert_eq!(pk.is_some(), fwd == *t);
        // The packet that creates the session: forward → xlat; reverse →
        // the original tuple reversed.
        let (fk, xlat_pkt) = match pk {
            Some(pk) => (pk, s.xlat),
            None => {
                let k = key(&fwd);
                ((k, self.table.hash(&k)), fwd.reversed())
            }
        };
        let rk = rk.unwrap_or_else(|| {
            let k = key(&s.xlat.reversed());
            (k, self.table.hash(&k))
        });
        let inserted = {
            let mut rel = releaser(&mut self.pool, &mut self.counters.released, self.apdm, now);
            self.table.insert_hashed(
                fk,
                Some(rk),
                s,
                Timestamp::from_nanos(expires),
                Timestamp::from_nanos(now),
                &mut rel,
            )
        };
        match inserted {
            Ok(_) => {
                self.counters.created += 1;
                Step::Xlat(xlat_pkt)
            }
            Err(e) => {
                let (s, reason) = match e {
                    ShardInsertError::Full(s) => (s, DropReason::TableFull),
                    ShardInsertError::KeyExists(s) => (s, DropReason::TableConflict),
                };
                if let Some(k) = map_key(&s, self.apdm) {
                    self.pool.unref(&k, fwd.dst, now);
                }
                Step::Drop(reason)
            }
        }
    }

    /// A new inbound session for packet `t` (`pk`: its key and hash): a
    /// port forward, or a session on an existing mapping the filtering
    /// admits.
    pub(crate) fn create_inbound(&mut self, t: &Tuple, pk: KeyHash, flags: u8, now: u64) -> Step {
        self.last_now = self.last_now.max(now);
        let syn_only =
            flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST) == tcp::flags::SYN;
        // Port forwarding (DNAT) first.
        if let Some(rule) = self.cfg.port_forwards.iter().find(|r| {
            r.protocol.number() == t.proto
                && r.external == t.dst
                && r.external_ports.contains(t.dport)
        }) {
            if !rule.source_allowed(t.src) {
                return Step::Drop(DropReason::SourceNotAllowed);
            }
            if t.proto == ip_protocol::TCP && !syn_only {
                return Step::Drop(DropReason::TcpNotSyn);
            }
            let xlat = Tuple {
                dst: rule.inside,
                dport: rule.inside_port_for(t.dport),
                ..*t
            };
            let s = Session {
                orig: *t,
                xlat,
                orig_side: Side::Outside,
                kind: SessionKind::PortForward,
                tcp: TcpTrack::opened(),
                mapped: false,
            };
            return self.insert(s, t, Some(pk), None, TimeoutClass::Transitory, now);
        }
        let is_nat = self.is_nat_address(t.dst);
        let mapped = {
            let filtering = self.cfg.filtering;
            let pool = &mut self.pool;
            let mapped = pool.by_external(t.proto, t.dst, t.dport);
            let mut out = None;
            let admitted = |pool: &Pool, k: &MapKey| match filtering {
                FilteringBehavior::EndpointIndependent => true,
                FilteringBehavior::AddressDependent => pool.has_remote(k, t.src),
                FilteringBehavior::AddressAndPortDependent => false,
            };
            let adm = mapped.is_some_and(|k| admitted(pool, &k));
            if let Some(k) = mapped
                && adm
                && t.proto != ip_protocol::ICMP
                && (t.proto != ip_protocol::TCP || syn_only)
                && pool.add_ref(&k, t.src)
            {
                out = Some(k);
            }
            mapped.map(|k| (k, out.is_some(), adm))
        };
        if !is_nat {
            return Step::Untouched;
        }
        match mapped {
            None => Step::Drop(DropReason::NoSession),
            // Admitted by the filter, but a TCP segment other than a SYN.
            Some((_, false, true)) if t.proto == ip_protocol::TCP && !syn_only => {
                Step::Drop(DropReason::TcpNotSyn)
            }
            Some((_, false, _)) => Step::Drop(DropReason::Filtered),
            Some((k, true, _)) => {
                // Endpoint-independent filtering, or address-dependent from
                // an address the mapping talks to: a new session on it.
                let orig = Tuple {
                    src: k.in_ip,
                    sport: k.in_port,
                    dst: t.src,
                    dport: t.sport,
                    proto: t.proto,
                };
                let xlat = Tuple {
                    src: t.dst,
                    sport: t.dport,
                    ..orig
                };
                let mut tcp = TcpTrack::default();
                let class = if t.proto == ip_protocol::TCP {
                    tcp.on_packet(Dir::Reply, flags)
                } else {
                    TimeoutClass::Established
                };
                let s = Session {
                    orig,
                    xlat,
                    orig_side: Side::Inside,
                    kind: SessionKind::InboundFiltered,
                    tcp,
                    mapped: true,
                };
                let pk = (orig == *t).then_some(pk);
                self.insert(s, t, pk, None, class, now)
            }
        }
    }
}
