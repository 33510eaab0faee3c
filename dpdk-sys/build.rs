//! Generates the DPDK bindings at build time against the system DPDK found by
//! pkg-config, and compiles the C shim for DPDK's static inline functions.
//!
//! Requires (Debian/Ubuntu): `libdpdk-dev` (DPDK headers, libs and libdpdk.pc),
//! `pkg-config`, and `clang` + `libclang-dev` (bindgen). `scripts/install-deps`
//! installs them.

use std::env;
use std::path::PathBuf;

/// Driver libraries whose functions the driver calls directly (vdev creation,
/// ring-backed ports). With shared DPDK every other PMD is loaded at EAL init
/// from DPDK's plugin directory.
const EXTRA_LIBS: &[&str] = &["rte_bus_vdev", "rte_net_ring"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/dpdk_shim.h");
    println!("cargo:rerun-if-changed=shim/dpdk_shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(true)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "\n\ndpdk-sys: DPDK (>= 22.11) was not found by pkg-config: {e}\n\
                 Install the DPDK development package and its build tools:\n    \
                 apt-get install libdpdk-dev pkg-config clang libclang-dev\n\
                 (or run ./scripts/install-deps). A DPDK installed elsewhere is found via \
                 PKG_CONFIG_PATH=<prefix>/lib/pkgconfig.\n\n"
            );
            panic!(
                "dpdk-sys: libdpdk not found by pkg-config (install libdpdk-dev and pkg-config)"
            );
        }
    };

    // `pkg-config --cflags libdpdk` must be passed whole (it carries
    // `-include rte_config.h` and `-march=...`): take it verbatim.
    let cflags = pkg_config_cflags();

    // Linking: the pkg-config crate emitted the `-l`s of libdpdk.pc; the
    // driver libraries we call directly are not on that list.
    let libdirs: Vec<PathBuf> = lib.link_paths.clone();
    for l in EXTRA_LIBS {
        let found = libdirs.is_empty()
            || libdirs.iter().any(|d| {
                d.join(format!("lib{l}.so")).exists() || d.join(format!("lib{l}.a")).exists()
            });
        if !found {
            println!("cargo:warning=dpdk-sys: lib{l} not found in {libdirs:?}; linking it anyway");
        }
        println!("cargo:rustc-link-lib=dylib={l}");
    }

    // The C shim.
    let mut build = cc::Build::new();
    build
        .file("shim/dpdk_shim.c")
        .include("shim")
        .warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("dpdk_shim");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    let bindings = bindgen::Builder::default()
        .header("shim/dpdk_shim.h")
        .clang_args(cflags.iter())
        .clang_arg("-Ishim")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("dpdk_shim_.*")
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_get_.*")
        .allowlist_function("rte_ring_.*")
        .allowlist_function("rte_vdev_.*")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_version")
        .allowlist_type("rte_eth_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_mempool")
        .allowlist_type("rte_ring")
        .allowlist_type("rte_ether_addr")
        .allowlist_var("RTE_ETH_.*")
        .allowlist_var("RTE_MAX_.*")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MBUF_.*")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("LCORE_ID_ANY")
        .allowlist_var("RING_F_.*")
        .allowlist_var("RTE_MEMPOOL_CACHE_MAX_SIZE")
        .allowlist_var("RTE_ETHER_.*")
        // Keep enums as plain integer constants: DPDK passes them as ints.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "dpdk-sys: bindgen failed on the DPDK headers ({e}); is libclang installed \
                 (apt-get install clang libclang-dev)?"
            )
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("dpdk-sys: writing bindings.rs to OUT_DIR");
}

/// `pkg-config --cflags libdpdk`, split on whitespace.
fn pkg_config_cflags() -> Vec<String> {
    let pc = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let out = std::process::Command::new(&pc)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| {
            panic!("dpdk-sys: running `{pc} --cflags libdpdk` failed ({e}): install pkg-config")
        });
    assert!(
        out.status.success(),
        "dpdk-sys: `{pc} --cflags libdpdk` failed: {} (install libdpdk-dev)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
