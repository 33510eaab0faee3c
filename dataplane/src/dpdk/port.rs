//! Ethernet ports: resolve a device (PCI address or vdev string), configure
//! one RX and one TX queue per worker (RSS on the 5-tuple where the device
//! supports it), start, burst I/O, statistics, link status, stop and close.

use std::ffi::CString;

use super::eal::Eal;
use super::error::{DpdkError, RteError};
use super::mbuf::Mbuf;
use super::mempool::Mempool;

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortSetup {
    /// RX and TX queues: one each per worker.
    pub queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// Turn promiscuous mode on (needed on veths/taps whose kernel MAC
    /// differs from the configured one; harmless elsewhere). Failure with
    /// `ENOTSUP` is ignored.
    pub promiscuous: bool,
    /// Set the device MAC to this address (best effort: a device that cannot
    /// change its MAC keeps its own; see [`Port::mac`]).
    pub mac: Option<[u8; 6]>,
    /// Set the device MTU (`ports[].mtu`) with `rte_eth_dev_set_mtu`. An
    /// MTU outside the device's `min_mtu..=max_mtu` (and below 68) is an error naming the
    /// port ([`DpdkError::Mtu`]), as is any refusal but "not supported"
    /// (a device without an MTU setting, e.g. `net_ring`, keeps its own;
    /// the pipeline enforces `mtu` in software either way). `None`: the
    /// device's default.
    pub mtu: Option<u16>,
}

/// What the port ended up with after [`Port::configure`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortInfo {
    pub driver: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// The RSS hash functions in use (0 with a single queue or without RSS).
    pub rss_hf: u64,
    #[serde(serialize_with = "ser_mac")]
    pub mac: [u8; 6],
    /// Whether the MAC could be set to the configured one.
    pub mac_set: bool,
    /// The device's MTU after configuration (`rte_eth_dev_get_mtu`; 0 if
    /// it cannot say).
    pub mtu: u16,
}

fn ser_mac<S: serde::Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    ))
}

/// `rte_eth_stats` plus link status, as reported by the device (defined in
/// [`crate::metrics`] so the control plane can carry it without DPDK).
pub use crate::metrics::PortStats;

/// One ethdev port. Queue `q` must be used by one thread at a time (the
/// driver gives worker `q` queue `q` on every port). `stats` is a control
/// path call: DPDK does not promise it is thread-safe, so `dataplane run`
/// calls it from the main lcore only (and publishes the result in a
/// [`crate::metrics::PortStatsBoard`] for the control thread).
#[derive(Debug)]
pub struct Port {
    id: u16,
    name: String,
    device: String,
    vdev_name: Option<String>,
    started: bool,
    closed: bool,
}

impl Port {
    /// Finds the port for `device`: a vdev string (`net_pcap0,rx_pcap=…`,
    /// `net_ring0`, `net_af_packet0,iface=veth0`, …; anything starting with
    /// `net_`) is created with `rte_vdev_init`; anything else is looked up by
    /// name as probed by EAL (a PCI address such as `0000:01:00.0`).
    ///
    /// # Errors
    /// [`DpdkError::Vdev`], [`DpdkError::DeviceNotFound`],
    /// [`DpdkError::NulInArgument`].
    pub fn open(_eal: &Eal, name: &str, device: &str) -> Result<Port, DpdkError> {
        let nul = |s: &str| DpdkError::NulInArgument(s.to_owned());
        let (devname, vdev) = if device.starts_with("net_") || device.starts_with("eth_") {
            let (n, args) = device.split_once(',').unwrap_or((device, ""));
            let cn = CString::new(n).map_err(|_| nul(device))?;
            let ca = CString::new(args).map_err(|_| nul(device))?;
            // SAFETY: EAL initialised; both strings valid for the call.
            let ret = unsafe { dpdk_sys::rte_vdev_init(cn.as_ptr(), ca.as_ptr()) };
            if ret < 0 {
                return Err(DpdkError::Vdev {
                    device: device.to_owned(),
                    err: RteError::from_ret(ret),
                });
            }
            (n.to_owned(), Some(n.to_owned()))
        } else {
            (device.to_owned(), None)
        };
        let cn = CString::new(devname.as_str()).map_err(|_| nul(device))?;
        let mut id = 0u16;
        // SAFETY: EAL initialised; cn valid; id is a valid out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cn.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(DpdkError::DeviceNotFound {
                device: device.to_owned(),
                err: RteError::from_ret(ret),
            });
        }
        Ok(Port {
            id,
            name: name.to_owned(),
            device: device.to_owned(),
            vdev_name: vdev,
            started: false,
            closed: false,
        })
    }

    /// Wraps an existing port id (e.g. one made by `rte_eth_from_rings`).
    pub(crate) fn from_id(id: u16, name: &str, device: &str) -> Port {
        Port {
            id,
            name: name.to_owned(),
            device: device.to_owned(),
            vdev_name: None,
            started: false,
            closed: false,
        }
    }

    /// DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Device string it was opened with.
    pub fn device(&self) -> &str {
        &self.device
    }

    fn err(&self, op: &'static str, ret: i32) -> DpdkError {
        DpdkError::port(&self.name, self.id, op, ret)
    }

    /// NUMA socket of the device (`-1` when unknown).
    pub fn socket(&self) -> i32 {
        // SAFETY: valid port id.
        unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) }
    }

    /// Configures `setup.queues` RX and TX queues, RX queue `q` drawing from
    /// `pools[q]` (one pool per worker), then starts the port.
    ///
    /// RSS: with more than one queue, the port hashes IPv4/IPv6 + TCP/UDP
    /// (the 5-tuple) over the queues if the device supports any of those hash
    /// functions; otherwise RX is not spread (and a warning is logged).
    ///
    /// # Errors
    /// [`DpdkError::TooFewQueues`], or [`DpdkError::Port`] naming the failing
    /// call (`rte_eth_dev_info_get`, `rte_eth_dev_configure`,
    /// `rte_eth_rx_queue_setup`, …).
    pub fn configure(
        &mut self,
        setup: &PortSetup,
        pools: &[&Mempool],
    ) -> Result<PortInfo, DpdkError> {
        let q = setup.queues.max(1);
        assert_eq!(pools.len(), usize::from(q), "one mempool per RX queue");
        // SAFETY: zeroed rte_eth_dev_info is a valid out-parameter.
        let mut info: dpdk_sys::rte_eth_dev_info = unsafe { core::mem::zeroed() };
        // SAFETY: valid port id and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        if ret < 0 {
            return Err(self.err("rte_eth_dev_info_get", ret));
        }
        if info.max_rx_queues < q || info.max_tx_queues < q {
            return Err(DpdkError::TooFewQueues {
                port: self.name.clone(),
                workers: q,
                max_rx: info.max_rx_queues,
                max_tx: info.max_tx_queues,
            });
        }
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static C string owned by the driver.
            unsafe { std::ffi::CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };

        let mut conf = dpdk_sys::rte_eth_conf::default();
        let mut rss_hf = 0;
        if q > 1 {
            // SAFETY: pure functions returning constants.
            let want = unsafe {
                dpdk_sys::dpdk_shim_rss_hf_ip()
                    | dpdk_sys::dpdk_shim_rss_hf_tcp()
                    | dpdk_sys::dpdk_shim_rss_hf_udp()
            };
            rss_hf = want & info.flow_type_rss_offloads;
            if rss_hf != 0 {
                conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
                // NULL key: the driver's default key.
            } else {
                tracing::warn!(port = %self.name, %driver, "device has no 5-tuple RSS; RX is not spread over queues");
            }
        }
        // SAFETY: valid port id; conf is a valid rte_eth_conf.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(self.id, q, q, &conf) };
        if ret < 0 {
            return Err(self.err("rte_eth_dev_configure", ret));
        }
        if let Some(mtu) = setup.mtu {
            self.set_mtu(mtu, &info)?;
        }
        let (mut nrx, mut ntx) = (setup.rx_desc, setup.tx_desc);
        // SAFETY: valid port id and out-pointers.
        let ret =
            unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nrx, &mut ntx) };
        if ret < 0 {
            return Err(self.err("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        let socket = self.socket();
        let socket_u = u32::try_from(socket).unwrap_or(u32::MAX); // SOCKET_ID_ANY
        for (qi, pool) in (0..q).zip(pools) {
            // SAFETY: valid port/queue; NULL rxconf = driver defaults; pool valid
            // and outlives the port (the driver closes ports before dropping pools).
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    qi,
                    nrx,
                    socket_u,
                    core::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret < 0 {
                return Err(self.err("rte_eth_rx_queue_setup", ret));
            }
            // SAFETY: valid port/queue; NULL txconf = driver defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(self.id, qi, ntx, socket_u, core::ptr::null())
            };
            if ret < 0 {
                return Err(self.err("rte_eth_tx_queue_setup", ret));
            }
        }
        let mut mac_set = false;
        if let Some(mac) = setup.mac {
            let mut a = dpdk_sys::rte_ether_addr { addr_bytes: mac };
            // SAFETY: valid port; a is a valid address.
            let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut a) };
            mac_set = ret == 0;
            if ret < 0 {
                tracing::debug!(port = %self.name, err = %RteError::from_ret(ret), "cannot set MAC; keeping the device's");
            }
        }
        if setup.promiscuous {
            // SAFETY: valid port.
            let ret = unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) };
            if ret < 0 && !RteError::from_ret(ret).is_unsupported() {
                return Err(self.err("rte_eth_promiscuous_enable", ret));
            }
        }
        // SAFETY: valid, configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        if ret < 0 {
            return Err(self.err("rte_eth_dev_start", ret));
        }
        self.started = true;
        Ok(PortInfo {
            driver,
            rx_queues: q,
            tx_queues: q,
            rx_desc: nrx,
            tx_desc: ntx,
            rss_hf,
            mac: self.mac()?,
            mac_set,
            mtu: self.mtu(),
        })
    }

    /// Sets the device MTU after `rte_eth_dev_configure` (see
    /// [`PortSetup::mtu`]).
    fn set_mtu(&self, mtu: u16, info: &dpdk_sys::rte_eth_dev_info) -> Result<(), DpdkError> {
        // Some drivers report no minimum: IPv4's applies to every link.
        let min = info.min_mtu.max(crate::config::MIN_MTU);
        if mtu < min || mtu > info.max_mtu {
            return Err(DpdkError::Mtu {
                port: self.name.clone(),
                mtu,
                min,
                max: info.max_mtu,
            });
        }
        // SAFETY: valid, configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
        if ret < 0 {
            let err = RteError::from_ret(ret);
            if !err.is_unsupported() {
                return Err(self.err("rte_eth_dev_set_mtu", ret));
            }
            tracing::warn!(port = %self.name, mtu, device_mtu = self.mtu(), "device cannot set its MTU; the pipeline still enforces the configured one");
        }
        Ok(())
    }

    /// The device's MTU (`rte_eth_dev_get_mtu`), 0 when it cannot say.
    pub fn mtu(&self) -> u16 {
        let mut m = 0u16;
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_mtu(self.id, &mut m) };
        if ret < 0 { 0 } else { m }
    }

    /// The device's MAC address.
    ///
    /// # Errors
    /// [`DpdkError::Port`] (`rte_eth_macaddr_get`).
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        if ret < 0 {
            return Err(self.err("rte_eth_macaddr_get", ret));
        }
        Ok(a.addr_bytes)
    }

    /// Receives up to `max` frames from `queue`, appending them to `out`.
    /// Multi-segment frames are linearised (or dropped and counted in the
    /// return's second value when they do not fit one buffer). Returns
    /// (received, dropped). Cost: one `rte_eth_rx_burst`.
    #[inline]
    pub fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: u16) -> (usize, usize) {
        out.reserve(usize::from(max));
        let len = out.len();
        // SAFETY: out has room for `max` more pointers; Mbuf is a transparent
        // NonNull<rte_mbuf>, and rx_burst writes exactly `n` non-NULL mbufs we
        // then own. Queue `queue` is used by this thread only (driver contract).
        let n = unsafe {
            let dst = out.as_mut_ptr().add(len).cast::<*mut dpdk_sys::rte_mbuf>();
            let n = dpdk_sys::dpdk_shim_eth_rx_burst(self.id, queue, dst, max);
            out.set_len(len + usize::from(n));
            usize::from(n)
        };
        let mut dropped = 0;
        if out[len..].iter().any(|m| m.nb_segs() > 1) {
            let mut i = len;
            while i < out.len() {
                if out[i].nb_segs() > 1 && !out[i].linearize() {
                    drop(out.remove(i));
                    dropped += 1;
                } else {
                    i += 1;
                }
            }
        }
        (n - dropped, dropped)
    }

    /// Sends the frames in `frames` on `queue`; the sent ones are removed from
    /// the front of `frames` (the device frees them after transmission), the
    /// unsent ones stay (the caller retries or drops them). Returns the number
    /// sent. Cost: one `rte_eth_tx_burst`.
    #[inline]
    pub fn tx_burst(&self, queue: u16, frames: &mut Vec<Mbuf>) -> usize {
        let len = frames.len();
        if len == 0 {
            return 0;
        }
        let n = u16::try_from(len).unwrap_or(u16::MAX);
        // SAFETY: frames holds `len` owned mbufs laid out as *mut rte_mbuf
        // (Mbuf is repr(transparent)); tx_burst takes ownership of the first
        // `sent`, which we then forget by shifting the rest down and shrinking
        // the length (no Drop runs for them).
        unsafe {
            let base = frames.as_mut_ptr();
            let sent = usize::from(dpdk_sys::dpdk_shim_eth_tx_burst(
                self.id,
                queue,
                base.cast::<*mut dpdk_sys::rte_mbuf>(),
                n,
            ));
            if sent < len {
                core::ptr::copy(base.add(sent), base, len - sent);
            }
            frames.set_len(len - sent);
            sent
        }
    }

    /// `rte_eth_stats_get` plus `rte_eth_link_get_nowait`.
    ///
    /// # Errors
    /// [`DpdkError::Port`] naming the failing call.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        if ret < 0 {
            return Err(self.err("rte_eth_stats_get", ret));
        }
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut l) };
        if ret < 0 && !RteError::from_ret(ret).is_unsupported() {
            return Err(self.err("rte_eth_link_get_nowait", ret));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            link_up: u32::from(l.link_status()) == dpdk_sys::RTE_ETH_LINK_UP,
            link_speed_mbps: if l.link_speed == u32::MAX {
                0
            } else {
                l.link_speed
            },
        })
    }

    /// Stops and closes the port (the pcap PMD flushes and closes its
    /// `tx_pcap` file here), then removes a vdev. Idempotent.
    ///
    /// # Errors
    /// [`DpdkError::Port`] naming the failing call; the port is still
    /// marked closed.
    pub fn close(&mut self) -> Result<(), DpdkError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if self.started {
            self.started = false;
            // SAFETY: valid started port; no worker uses it any more (caller).
            let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            if ret < 0 {
                return Err(self.err("rte_eth_dev_stop", ret));
            }
        }
        // SAFETY: valid stopped port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if ret < 0 {
            return Err(self.err("rte_eth_dev_close", ret));
        }
        if let Some(v) = &self.vdev_name {
            let cn = CString::new(v.as_str()).map_err(|_| DpdkError::NulInArgument(v.clone()))?;
            // SAFETY: valid C string; the device is closed.
            let ret = unsafe { dpdk_sys::rte_vdev_uninit(cn.as_ptr()) };
            if ret < 0 && ret != -2 {
                return Err(self.err("rte_vdev_uninit", ret));
            }
        }
        Ok(())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing port on drop");
        }
    }
}
