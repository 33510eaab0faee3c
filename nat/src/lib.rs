//! `nat`: masquerade (source NAT) and port forwarding (destination NAT) stages on the flow table.
#![deny(unsafe_code)]
