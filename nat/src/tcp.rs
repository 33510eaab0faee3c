//! TCP connection tracking for NAT timeouts (RFC 5382 REQ-5, RFC 7857 REQ-2).
//!
//! Tracks only what the timeout needs: SYN seen in each direction, FIN in
//! each direction, RST. The timeout class follows:
//!
//! | state | class |
//! |---|---|
//! | SYN one way only (partially open) | transitory (≥ 4 min) |
//! | SYN both ways, no FIN | established (≥ 2 h 4 min) |
//! | one FIN (partially closed) | transitory |
//! | FIN both ways, or RST | TIME_WAIT hold (4 min, RFC 7857 REQ-2) |
//!
//! A new SYN (without ACK) from the originator on a closing/closed session
//! restarts tracking (the peer reuses the 4-tuple after TIME_WAIT).

/// TCP flags used by the tracker.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Direction of a packet relative to the session's originator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the endpoint that opened the session.
    Orig,
    /// From the other endpoint.
    Reply,
}

/// Timeout class of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TimeoutClass {
    Transitory,
    Established,
    TimeWait,
}

/// Compact TCP tracking state (one byte of flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpTrack(u8);

const SYN_O: u8 = 1;
const SYN_R: u8 = 2;
const FIN_O: u8 = 4;
const FIN_R: u8 = 8;
const RST_SEEN: u8 = 16;

impl TcpTrack {
    /// State after the originator's first SYN.
    #[must_use]
    pub fn opened() -> Self {
        Self(SYN_O)
    }

    /// Update with a packet's flags; returns the new timeout class. O(1).
    pub fn on_packet(&mut self, dir: Dir, tcp_flags: u8) -> TimeoutClass {
        let syn = tcp_flags & flags::SYN != 0;
        let ack = tcp_flags & flags::ACK != 0;
        if syn && !ack && dir == Dir::Orig && self.0 & (FIN_O | FIN_R | RST_SEEN) != 0 {
            // 4-tuple reused after close: start over.
            self.0 = SYN_O;
            return self.class();
        }
        if tcp_flags & flags::RST != 0 {
            self.0 |= RST_SEEN;
        }
        if syn {
            self.0 |= if dir == Dir::Orig { SYN_O } else { SYN_R };
        }
        if tcp_flags & flags::FIN != 0 {
            self.0 |= if dir == Dir::Orig { FIN_O } else { FIN_R };
        }
        self.class()
    }

    /// Current timeout class. O(1).
    #[must_use]
    pub fn class(&self) -> TimeoutClass {
        let s = self.0;
        if s & RST_SEEN != 0 || s & (FIN_O | FIN_R) == (FIN_O | FIN_R) {
            TimeoutClass::TimeWait
        } else if s & (SYN_O | SYN_R) == (SYN_O | SYN_R) && s & (FIN_O | FIN_R) == 0 {
            TimeoutClass::Established
        } else {
            TimeoutClass::Transitory
        }
    }

    /// The tracking state as conntrack names it: `SYN_SENT` (the
    /// originator's SYN only), `SYN_RECV` (the other side's only),
    /// `ESTABLISHED`, `FIN_WAIT` (one FIN), `TIME_WAIT` (FIN both ways),
    /// `CLOSE` (RST seen).
    #[must_use]
    pub fn state_name(&self) -> &'static str {
        let s = self.0;
        if s & RST_SEEN != 0 {
            "CLOSE"
        } else if s & (FIN_O | FIN_R) == (FIN_O | FIN_R) {
            "TIME_WAIT"
        } else if s & (FIN_O | FIN_R) != 0 {
            "FIN_WAIT"
        } else if s & (SYN_O | SYN_R) == (SYN_O | SYN_R) {
            "ESTABLISHED"
        } else if s & SYN_O != 0 {
            "SYN_SENT"
        } else {
            "SYN_RECV"
        }
    }

    /// Whether a SYN was seen both ways.
    #[must_use]
    pub fn established_once(&self) -> bool {
        self.0 & (SYN_O | SYN_R) == (SYN_O | SYN_R)
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    #[test]
    fn lifecycle() {
        let mut t = TcpTrack::opened();
        assert_eq!(t.class(), TimeoutClass::Transitory);
        assert_eq!(
            t.on_packet(Dir::Reply, SYN | ACK),
            TimeoutClass::Established
        );
        assert_eq!(t.on_packet(Dir::Orig, ACK), TimeoutClass::Established);
        assert_eq!(t.on_packet(Dir::Orig, FIN | ACK), TimeoutClass::Transitory);
        assert_eq!(t.on_packet(Dir::Reply, FIN | ACK), TimeoutClass::TimeWait);
        assert_eq!(t.on_packet(Dir::Orig, ACK), TimeoutClass::TimeWait);
        assert_eq!(
            t.on_packet(Dir::Orig, SYN),
            TimeoutClass::Transitory,
            "reuse restarts"
        );
    }

    #[test]
    fn rst_goes_to_time_wait() {
        let mut t = TcpTrack::opened();
        t.on_packet(Dir::Reply, SYN | ACK);
        assert_eq!(t.on_packet(Dir::Reply, RST), TimeoutClass::TimeWait);
        // A reply-side SYN does not reopen.
        assert_eq!(t.on_packet(Dir::Reply, SYN), TimeoutClass::TimeWait);
    }

    #[test]
    fn simultaneous_open_and_half_open() {
        let mut t = TcpTrack::default();
        assert_eq!(t.on_packet(Dir::Orig, SYN), TimeoutClass::Transitory);
        assert_eq!(t.on_packet(Dir::Reply, SYN), TimeoutClass::Established);
        let mut h = TcpTrack::opened();
        assert_eq!(h.on_packet(Dir::Orig, ACK), TimeoutClass::Transitory);
        assert!(!h.established_once());
    }
}
