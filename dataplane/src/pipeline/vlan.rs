//! VLANs (IEEE 802.1Q) at the edges of the pipeline.
//!
//! A port has no VLAN (`ports[].vlan` absent) or one VLAN id. On ingress,
//! before any other stage (and before a frame is handed to another
//! worker), [`Pipeline::vlan_ingress`] checks the frame against its port
//! and removes the tag, so every stage after it sees an untagged frame and
//! the classifier's offsets (`l3_offset` …) never include a tag. On egress,
//! [`Pipeline::vlan_egress`] (frames sent back out, `Disposition::Tx`) and
//! [`Pipeline::vlan_tag_generated`] (ARP, NDP, ICMP errors, fragments,
//! frames released from a hold queue) write the egress port's tag.
//!
//! Decisions:
//! - a tagged frame on an untagged port: `tagged_on_untagged_port`, also
//!   for priority-tagged frames (VLAN id 0);
//! - on a VLAN port, an untagged frame or another id: `vlan_mismatch`;
//! - two tags, or an 802.1ad S-tag (0x88a8) outermost: `vlan_qinq`;
//! - egress tags carry priority (PCP) 0 and DEI 0: the received priority
//!   is not carried across (the tag is gone by then), as a router that
//!   does not map priorities re-marks to best effort.
//!
//! Cost: with no VLAN port ([`Shared::vlan_any`] false) an input frame costs
//! one EtherType comparison (is it tagged: then it is dropped) and egress
//! nothing. With VLAN ports, a tag removed or added moves the 12 MAC bytes
//! and the frame's front (O(1) on an mbuf, O(length) on a `Vec`).

use net::ethernet::{self, ethertype};
use net::vlan;

use super::*;

/// Bytes an 802.1Q tag takes.
const TAG_LEN: usize = vlan::HEADER_LEN;
/// The destination and source MAC addresses, which move over a tag.
const MACS: usize = 12;

/// Whether the outermost EtherType of `f` is a VLAN tag (C- or S-tag).
#[inline(always)]
pub(super) fn is_tagged(f: &[u8]) -> bool {
    ethernet::Frame::new_checked(f)
        .is_ok_and(|e| matches!(e.ethertype(), ethertype::VLAN | ethertype::QINQ))
}

/// Insert an 802.1Q tag with id `vid`, priority 0, after the MAC addresses
/// of Ethernet frame `f`. False (nothing changed) when `f` is shorter than
/// an Ethernet header or cannot grow at the front.
pub(super) fn push_tag<F: Frame>(f: &mut F, vid: u16) -> bool {
    if f.data().len() < ethernet::HEADER_LEN || !f.grow_front(TAG_LEN) {
        return false;
    }
    let d = f.data_mut();
    d.copy_within(TAG_LEN..TAG_LEN + MACS, 0);
    ethernet::Frame::new_unchecked(&mut *d).set_ethertype(ethertype::VLAN);
    // The tag's own EtherType field is the frame's original one, already
    // in place; TCI = PCP 0, DEI 0, the id.
    vlan::Tag::new_unchecked(&mut d[ethernet::HEADER_LEN..]).set_tci(vid & 0x0fff);
    true
}

/// Remove the outermost tag of `f` (known to be there and complete).
fn pop_tag<F: Frame>(f: &mut F) -> bool {
    f.data_mut().copy_within(0..MACS, TAG_LEN);
    f.shrink_front(TAG_LEN)
}

/// What [`Pipeline::vlan_ingress`] did with a frame it let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Untagged {
    /// It had no tag (an untagged port).
    AsReceived,
    /// Its tag was removed: the frame moved, any earlier classification of
    /// it is stale.
    Removed,
}

impl Pipeline {
    /// The ingress check for frame `f` received on `ingress` (module doc).
    ///
    /// # Errors
    /// The drop reason for a frame the port does not accept.
    pub(super) fn vlan_ingress<F: Frame>(
        &self,
        ingress: PortId,
        f: &mut F,
    ) -> Result<Untagged, DropReason> {
        let want = self
            .shared
            .ports
            .get(usize::from(ingress))
            .and_then(|p| p.vlan);
        let d = f.data();
        // Shorter than an Ethernet header: `classify` counts it.
        let Ok(eth) = ethernet::Frame::new_checked(d) else {
            return Ok(Untagged::AsReceived);
        };
        match eth.ethertype() {
            ethertype::VLAN => {}
            ethertype::QINQ => return Err(DropReason::VlanQinq),
            _ if want.is_some() => return Err(DropReason::VlanMismatch),
            _ => return Ok(Untagged::AsReceived),
        }
        let Some(Ok(tag)) = d.get(ethernet::HEADER_LEN..).map(vlan::Tag::new_checked) else {
            return Err(DropReason::Malformed);
        };
        if matches!(tag.ethertype(), ethertype::VLAN | ethertype::QINQ) {
            return Err(DropReason::VlanQinq);
        }
        match want {
            None => Err(DropReason::TaggedOnUntaggedPort),
            Some(v) if v != tag.vid() => Err(DropReason::VlanMismatch),
            Some(_) if pop_tag(f) => Ok(Untagged::Removed),
            Some(_) => Err(DropReason::Malformed),
        }
    }

    /// Tag frame `f` if `d` sends it on a VLAN port; `vlan_no_headroom`
    /// when it cannot grow.
    #[inline]
    pub(super) fn vlan_egress<F: Frame>(&self, f: &mut F, d: Disposition) -> Disposition {
        let Disposition::Tx(p) = d else {
            return d;
        };
        match self.shared.ports.get(usize::from(p)).and_then(|x| x.vlan) {
            Some(vid) if !push_tag(f, vid) => Disposition::Drop(DropReason::VlanNoHeadroom),
            _ => d,
        }
    }

    /// Tag the generated frames `generated[from..]` that leave a VLAN port
    /// (with `cause`, parallel to `generated`, kept in step when one
    /// cannot be tagged and is dropped).
    pub(super) fn vlan_tag_generated(
        &self,
        generated: &mut Vec<(PortId, Vec<u8>)>,
        mut cause: Option<&mut Vec<Option<u32>>>,
        from: usize,
    ) {
        if !self.shared.vlan_any {
            return;
        }
        let mut k = from;
        while k < generated.len() {
            let (p, f) = &mut generated[k];
            match self.shared.ports.get(usize::from(*p)).and_then(|x| x.vlan) {
                Some(vid) if !push_tag(f, vid) => {
                    generated.remove(k);
                    if let Some(c) = cause.as_deref_mut()
                        && k < c.len()
                    {
                        c.remove(k);
                    }
                    self.drop_count(DropReason::VlanNoHeadroom, 1);
                }
                _ => k += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        f[6..12].copy_from_slice(&[7, 8, 9, 10, 11, 12]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f
    }

    #[test]
    fn push_then_pop_is_identity() {
        let orig = frame();
        let mut f = orig.clone();
        assert!(push_tag(&mut f, 100));
        assert_eq!(f.len(), orig.len() + 4);
        assert_eq!(&f[..12], &orig[..12]);
        assert_eq!(&f[12..18], &[0x81, 0x00, 0x00, 100, 0x08, 0x00]);
        assert_eq!(&f[18..], &orig[14..]);
        assert!(is_tagged(&f));
        assert!(pop_tag(&mut f));
        assert_eq!(f, orig);
        assert!(!is_tagged(&f));
    }

    #[test]
    fn a_slice_cannot_grow_but_can_shrink() {
        let mut v = frame();
        let mut s: &mut [u8] = &mut v[..];
        assert!(!push_tag(&mut s, 5));
        assert_eq!(s.len(), 60);
        assert!(s.shrink_front(4));
        assert_eq!(s.len(), 56);
        assert!(!push_tag(&mut vec![0u8; 13], 5));
    }
}
