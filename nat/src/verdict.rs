//! What the NAT says about a frame: the side it came from, the verdict,
//! and the drop reasons (each counted).

use serde::Serialize;

/// The side of the NAT a frame arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    Inside,
    Outside,
}

/// What to do with a processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send on: the frame was rewritten in place (or left untouched when no
    /// NAT applies, e.g. inside-to-inside traffic or IPv6).
    Forward,
    /// Do not send this frame. [`DropReason::FragmentHeld`] is not a loss:
    /// NAT kept a copy and hands it back through [`crate::Nat::take_released`].
    Drop(DropReason),
    /// Several workers: the first half of a hairpin is done (the source
    /// translated in place); the destination belongs to this worker's
    /// sessions, which finish it with [`crate::Nat::process_hairpin`].
    HandOff(u16),
    /// Several workers: a later fragment of a datagram whose first fragment
    /// was handed to this worker ([`crate::Nat::direct_fragment`]): hand it there
    /// unchanged, to be processed as received.
    Owner(u16),
}

macro_rules! reasons {
    ($($(#[$m:meta])* $v:ident = $n:literal,)*) => {
        /// Why a frame was dropped (each counted in [`crate::NatStats::drops`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// Stable snake_case name (counter keys, JSON keys, metric
            /// labels).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$v => $n,)* }
            }
        }
    };
}

reasons! {
    /// Headers inconsistent or too short to translate.
    Malformed = "malformed",
    /// An IP protocol NAT cannot translate (not TCP, UDP or ICMP), from inside.
    UnsupportedProtocol = "unsupported_protocol",
    /// ICMP message from inside that is neither a query (echo, timestamp)
    /// nor a translatable error.
    UnsupportedIcmp = "unsupported_icmp",
    /// Unsolicited inbound traffic to a NAT address: no session, mapping or rule.
    NoSession = "no_session",
    /// Inbound traffic to a mapped port from a remote the mapping was not
    /// opened to (address-and-port-dependent filtering).
    Filtered = "filtered",
    /// TCP without a session whose first packet is not a SYN.
    TcpNotSyn = "tcp_not_syn",
    /// Inside host reached its port quota (RFC 6888 REQ-4). When
    /// `icmp_on_quota_exceeded` is set the dataplane should send ICMP 3/13.
    QuotaExceeded = "quota_exceeded",
    /// No free external port in the pool.
    PoolExhausted = "pool_exhausted",
    /// Session table refused the insert: the reply key belongs to another session.
    TableConflict = "table_conflict",
    /// Session table full and nothing evictable.
    TableFull = "table_full",
    /// ICMP error whose embedded packet matches no session.
    IcmpErrorNoSession = "icmp_error_no_session",
    /// Inbound port-forward traffic from a source the rule does not allow.
    SourceNotAllowed = "source_not_allowed",
    /// Inside packet to a NAT address while hairpinning is off.
    HairpinDisabled = "hairpin_disabled",
    /// The packet matched a session key from the wrong side (e.g. an inside
    /// source address arriving from outside): not translated.
    WrongSide = "wrong_side",
    /// Non-first fragment held until its first fragment arrives (not lost).
    FragmentHeld = "fragment_held",
    /// Non-first fragment dropped: the held-fragment budget is full.
    FragmentBudget = "fragment_budget",
    /// Several workers: a non-first fragment held before its first
    /// fragment, whose datagram turned out to be another worker's.
    FragmentOtherWorker = "fragment_other_worker",
    /// ICMP error whose ICMP checksum (over the whole message, checked
    /// when the frame holds all of it) is wrong: not translated (RFC 5508
    /// REQ-3).
    BadIcmpChecksum = "bad_icmp_checksum",
    /// ICMP error whose quoted (embedded) IPv4 header checksum is wrong:
    /// not translated (RFC 5508 REQ-3).
    BadEmbeddedChecksum = "bad_embedded_checksum",
}
