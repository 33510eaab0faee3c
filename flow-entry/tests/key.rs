//! `FlowKey`: `Hash` agrees with `Eq` (property test), field round trips.

use flow_entry::FlowKey;
use proptest::prelude::*;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        // Small pools so equal keys come up often.
        (0u32..4).prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        (0u128..4).prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

type Fields = (IpAddr, IpAddr, u8, u16, u16, u16);

fn arb_fields() -> impl Strategy<Value = Fields> {
    (
        arb_ip(),
        arb_ip(),
        prop_oneof![Just(6u8), Just(17u8), any::<u8>()],
        prop_oneof![Just(0u16), Just(1u16), any::<u16>()],
        prop_oneof![Just(0u16), Just(1u16), any::<u16>()],
        0u16..3,
    )
}

fn key(f: &Fields) -> FlowKey {
    FlowKey::new(f.0, f.1, f.2, f.3, f.4, f.5)
}

fn std_hash(k: &FlowKey) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut h);
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn hash_agrees_with_eq(a in arb_fields(), b in arb_fields(), seed in any::<u64>()) {
        let (ka, kb) = (key(&a), key(&b));
        let ka2 = key(&a);
        let fold = foldhash::fast::FixedState::with_seed(seed);
        // Equal keys hash equally, under any hasher and seed.
        prop_assert_eq!(ka, ka2);
        prop_assert_eq!(fold.hash_one(ka), fold.hash_one(ka2));
        prop_assert_eq!(std_hash(&ka), std_hash(&ka2));
        if ka == kb {
            prop_assert_eq!(fold.hash_one(ka), fold.hash_one(kb));
            prop_assert_eq!(std_hash(&ka), std_hash(&kb));
        }
        // Eq is exactly field equality (same family after normalisation).
        let same_family = a.0.is_ipv4() == a.1.is_ipv4() && b.0.is_ipv4() == b.1.is_ipv4()
            && a.0.is_ipv4() == b.0.is_ipv4();
        if same_family {
            prop_assert_eq!(ka == kb, a == b);
        }
    }

    #[test]
    fn fields_round_trip_and_reverse_is_an_involution(a in arb_fields()) {
        let k = key(&a);
        prop_assert_eq!((k.proto(), k.src_port(), k.dst_port(), k.zone()), (a.2, a.3, a.4, a.5));
        if a.0.is_ipv4() == a.1.is_ipv4() {
            prop_assert_eq!(k.src(), a.0);
            prop_assert_eq!(k.dst(), a.1);
        }
        let r = k.reversed();
        prop_assert_eq!(r.reversed(), k);
        prop_assert_eq!(r.src(), k.dst());
        prop_assert_eq!(r.src_port(), k.dst_port());
        prop_assert_eq!((r.proto(), r.zone(), r.is_ipv6()), (k.proto(), k.zone(), k.is_ipv6()));
    }
}
