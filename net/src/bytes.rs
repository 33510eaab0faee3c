//! Big-endian loads and stores on slices whose length the caller's `field`
//! range already fixed. Private: the protocol modules call these with
//! `&data[field::X]`, so the byte offsets still live in each `mod field`.
//!
//! None of these panics: a slice shorter than the value reads as zeros and a
//! store into one is ignored (which cannot happen for a `field` range of the
//! right width; the fallback only keeps the functions total).

#[inline(always)]
pub(crate) fn read_u16(b: &[u8]) -> u16 {
    match b.first_chunk::<2>() {
        Some(c) => u16::from_be_bytes(*c),
        None => 0,
    }
}

#[inline(always)]
pub(crate) fn read_u32(b: &[u8]) -> u32 {
    match b.first_chunk::<4>() {
        Some(c) => u32::from_be_bytes(*c),
        None => 0,
    }
}

#[inline(always)]
pub(crate) fn read_array<const N: usize>(b: &[u8]) -> [u8; N] {
    match b.first_chunk::<N>() {
        Some(c) => *c,
        None => [0; N],
    }
}

#[inline(always)]
pub(crate) fn write_u16(b: &mut [u8], v: u16) {
    if let Some(c) = b.first_chunk_mut::<2>() {
        *c = v.to_be_bytes();
    }
}

#[inline(always)]
pub(crate) fn write_u32(b: &mut [u8], v: u32) {
    if let Some(c) = b.first_chunk_mut::<4>() {
        *c = v.to_be_bytes();
    }
}

#[inline(always)]
pub(crate) fn write_array<const N: usize>(b: &mut [u8], v: [u8; N]) {
    if let Some(c) = b.first_chunk_mut::<N>() {
        *c = v;
    }
}
