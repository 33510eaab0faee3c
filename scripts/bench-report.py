#!/usr/bin/env python3
"""Writes docs/benchmarks.md (and docs/benchmarks-*.png) from scripts/bench's
output directory. Usage: bench-report.py OUTDIR QUICK SECS IPERF_SECS"""
import datetime, json, os, platform, re, statistics, subprocess, sys

out, quick, secs, iperf = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
docs = os.path.join(root, "docs")


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
lines = []
w = lines.append
w("# Benchmarks")
w("")
HISTORY = "Figures of earlier designs and what changed them: [benchmarks-history.md](benchmarks-history.md)."
w(HISTORY)
w("")
w("Written by `scripts/bench%s` — do not edit by hand." % (" --quick" if quick else ""))
w("")
w("| | |")
w("|---|---|")
w(f"| date | {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} |")
w(f"| CPU | {cpu}, {os.cpu_count()} cores |")
# scripts/bench samples the 1-minute load average at each stage.
loads = []
if os.path.exists(f"{out}/load.txt"):
    for l in open(f"{out}/load.txt"):
        parts = l.split()
        if len(parts) == 2:
            try:
                loads.append((parts[0], float(parts[1])))
            except ValueError:
                pass
stage = {"before-build": "before the build", "measure-start": "when measuring started",
         "after-a": "after (a)", "after-b": "after (b)", "after-c": "after (c)",
         "measure-end": "after the measurements"}
if loads:
    seen = ", ".join(f"{v:.2f} {stage.get(k, k)}" for k, v in loads)
    w(f"| load | 1-minute load average: {seen} (on {os.cpu_count()} cores; from the start of the "
      "measurements on it includes the benchmarks themselves, which keep at least one core busy) |")
else:
    w("| load | not recorded |")
mem = sh("free -h | awk '/Mem:/ {print $2}'")
w(f"| memory | {mem} |")
w(f"| kernel | {platform.release()} |")
w(f"| DPDK | {sh('pkg-config --modversion libdpdk')} (Debian), no hugepages (`--no-huge`) |")
w(f"| rustc | {sh('rustc --version')} |")
w("")

# (a) flow table
flows = [json.loads(l) for l in open(f"{out}/flows.jsonl") if l.strip().startswith("{")]
w("## Flow table (flow-entry `flowbench`)")
w("")
w("`flow_entry::Shard<FlowKey, _>` (one single-writer shard, one thread; N sessions of two keys each, as the NAT "
  "keeps them). Per operation, ns; lookups are random existing keys (both directions of a session) in prefetched "
  "bursts of 64 (`prefetch_index` of every key, then `prefetch_entry`, then the lookups, as the NAT's bursts do); "
  "refresh is `set_expires_at`, expire one `poll` releasing all N. "
  "`hashbrown` is a plain `HashMap<FlowKey, u32>` with the same 2N keys and lookup sequence, same run, "
  "looked up one key at a time.")
w("")
w("| flows | insert | lookup hit | lookup miss | refresh | expire | hashbrown lookup | lookup / hashbrown | bytes/flow |")
w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for f in flows:
    ratio = f["lookup_hit_ns"] / f["baseline_hashbrown_lookup_ns"] if f.get("baseline_hashbrown_lookup_ns") else float("nan")
    w(f"| {f['flows']:,} | {f['insert_ns']:.0f} | {f['lookup_hit_ns']:.0f} | {f['lookup_miss_ns']:.0f} | "
      f"{f['refresh_ns']:.0f} | {f['expire_ns']:.0f} | {f['baseline_hashbrown_lookup_ns']:.0f} | {ratio:.2f}× | {f['bytes_per_flow']:.0f} |")
w("")

# NAT criterion
nat = open(f"{out}/nat.txt").read() if os.path.exists(f"{out}/nat.txt") else ""
rows = []
name = None
for line in nat.splitlines():
    m = re.match(r"^(\S[^\s]*)\s+time:\s+\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]", line)
    if m:
        rows.append((m.group(1), m.group(4), m.group(5)))
        continue
    m = re.match(r"^\s+time:\s+\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]", line)
    if m and name:
        rows.append((name, m.group(3), m.group(4)))
        continue
    if line and not line.startswith(" ") and "time:" not in line and "/" in line:
        name = line.strip()
w("## NAT (nat crate criterion benches, median)")
w("")
if rows:
    w("| bench | time |")
    w("|---|---:|")
    for n, v, u in rows:
        w(f"| {n} | {v} {u} |")
else:
    w("(the NAT benches did not produce figures in this run)")
w("")

# (b) Mpps
mp = [l.split() for l in open(f"{out}/mpps.txt") if l.strip()]
w("## Packet rate: `dataplane run` vs `dpdk-testpmd` io forwarding")
w("")
w(f"Same vdevs for both: port 0 `net_pcap` replaying 4096 UDP flows of 64-byte frames from 64 inside hosts "
  f"(`infinite_rx=1`), port 1 `net_null` (TX frees). One forwarding lcore each; {secs} s per run, runs alternated. "
  "testpmd: io forwarding (no packet access); dataplane: the full pipeline (classify, NAT masquerade with session "
  "creation/lookup, route, MAC rewrite). Mpps of frames received on port 0 and sent on port 1.")
w("")
w("| round | testpmd rx | testpmd tx | dataplane rx | dataplane tx | dataplane / testpmd (tx) |")
w("|---:|---:|---:|---:|---:|---:|")
ratios = []
for r in mp:
    tp_rx, tp_tx, dp_rx, dp_tx = map(float, r[1:5])
    ratio = dp_tx / tp_tx if tp_tx else float("nan")
    ratios.append(ratio)
    w(f"| {r[0]} | {tp_rx:.2f} | {tp_tx:.2f} | {dp_rx:.2f} | {dp_tx:.2f} | {ratio:.0%} |")
if ratios:
    w("")
    w(f"Median ratio: **{statistics.median(ratios):.0%}** of testpmd's io-forward rate (target ≥ 50%); "
      f"rounds {min(ratios):.0%}–{max(ratios):.0%}.")
w("")
floors = []
if os.path.exists(f"{out}/floors.txt"):
    for line in open(f"{out}/floors.txt"):
        try:
            floors.append(json.loads(line))
        except ValueError:
            pass
if floors:
    tp = statistics.median(float(r[2]) for r in mp) if mp else float("nan")
    what = {
        "io": "receive, send unchanged (our `Port`/`Mbuf` wrapper)",
        "touch": "+ TTL decrement, both MACs",
        "floor": "+ `net::classify`, flat-table lookup/insert (burst prefetched), `net::rewrite` source NAT",
    }
    w("Floors on the same vdevs and lcore (`dpdkfloor`; single-threaded loops without locks, expiry, state or "
      "counters — what a minimal design reaches, not a NAT):")
    w("")
    w("| loop | work per frame | Mpps | / testpmd |")
    w("|---|---|---:|---:|")
    for f in floors:
        w(f"| {f['mode']} | {what.get(f['mode'], '')} | {f['tx_mpps']:.2f} | {f['tx_mpps'] / tp:.0%} |")
    w("")

# (c) iperf3
def figures(path):
    d, checks = {}, []
    if not os.path.exists(path):
        return d, checks
    for line in open(path):
        m = re.match(r"FIGURE (\S+) (\S+)(?: lost_percent (\S+))?", line)
        if m:
            d[m.group(1)] = float(m.group(2))
            if m.group(3):
                d["udp_lost"] = float(m.group(3))
        m = re.match(r"(PASS|FAIL) (\S+)", line)
        if m:
            checks.append((m.group(2), m.group(1)))
    return d, checks

dp, dpc = figures(f"{out}/netns-dp.txt")
kn, knc = figures(f"{out}/netns-kernel.txt")
w("## iperf3 through the NAT (network namespaces)")
w("")
w(f"`scripts/netns-topology`: inside host → NAT box → router → server; {iperf} s per run. The dataplane runs on "
  "`net_tap` ports (kernel ↔ userspace copies on both sides), the reference is the kernel's nftables masquerade "
  "in the same topology. UDP offered at 200 Mbit/s, 1200-byte datagrams.")
w("")
w("| | kernel nftables | dataplane (net_tap) |")
w("|---|---:|---:|")
w(f"| TCP Mbit/s | {kn.get('iperf3_tcp_mbps', 'n/a')} | {dp.get('iperf3_tcp_mbps', 'n/a')} |")
w(f"| UDP Mbit/s received | {kn.get('iperf3_udp_mbps', 'n/a')} | {dp.get('iperf3_udp_mbps', 'n/a')} |")
w(f"| UDP loss % | {kn.get('udp_lost', float('nan')):.1f} | {dp.get('udp_lost', float('nan')):.1f} |")
w("")
w("Functional checks in the same runs (`scripts/netns-check`):")
w("")
names = [n for n, _ in knc] + [n for n, _ in dpc if n not in dict(knc)]
w("| check | kernel | dataplane |")
w("|---|---|---|")
for n in names:
    w(f"| {n} | {dict(knc).get(n, '—')} | {dict(dpc).get(n, '—')} |")
w("")

# (d) replay harness
rj = None
if os.path.exists(f"{out}/replay.json"):
    for l in open(f"{out}/replay.json"):
        if l.strip().startswith("{"):
            rj = json.loads(l)
w("## `dataplane replay`: full pipeline vs pass-through (`replaybench`)")
w("")
if rj:
    w(f"`cargo run --release -p dataplane --example replaybench`: {rj['packets']:,} packets of {rj['flows']:,} flows "
      "(5 packets each way; replies to the NAT's chosen endpoints), "
      "replayed through the full pipeline and through a pass-through pipeline (frames forwarded untouched) "
      "with the same driver, same run, best of 2 rounds. `files` is what `dataplane replay` does (pcap files "
      "in, per-port pcap files out); `memory` keeps frames in memory. Burst 1 is `dataplane replay`'s default "
      "(exact clock); burst 32 is `--burst 32`.")
    w("")
    w("| variant | full (packets/s) | pass-through (packets/s) | ratio |")
    w("|---|---:|---:|---:|")
    for b in (1, 32):
        for io in ("files", "memory"):
            f = rj[f"burst{b}_{io}_full_pps"]; p = rj[f"burst{b}_{io}_passthrough_pps"]
            w(f"| {io}, burst {b} | {f:,.0f} | {p:,.0f} | {rj[f'burst{b}_{io}_ratio']:.3f} |")
    floors = {
        "floor": "floor (least work a NAT does: classify, one lookup/insert in a flat prefetched table, "
                 "rewrite, TTL, MACs; no locks, allocator, expiry, state, counters)",
        "floor_table": "floor with the product's session table (`flow_entry::Shard`, single writer, as the NAT "
                       "keeps it) in place of the flat table",
    }
    for kind, what in floors.items():
        if f"{kind}_files_pps" not in rj:
            continue
        for io in ("files", "memory"):
            p = rj[f"burst1_{io}_passthrough_pps"]
            w(f"| {io}, {what} | {rj[f'{kind}_{io}_pps']:,.0f} | {p:,.0f} | {rj[f'{kind}_{io}_ratio']:.3f} |")
    w("")
    w(f"`dataplane replay` (files, burst 1): **{rj['burst1_files_ratio']:.2f}** of the pass-through rate "
      "(target ≥ 0.50). Full pipeline: "
      f"{rj['nat_sessions_created']:,} sessions created, {rj['nat_sessions_active']:,} active at the end, "
      f"{rj['full_drops']} drops.")
else:
    w("(replaybench did not produce figures in this run)")
w("")

# plots
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if flows:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [f["flows"] for f in flows]
        ax.plot(xs, [f["lookup_hit_ns"] for f in flows], "o-", label="Shard lookup (hit, prefetched bursts)")
        ax.plot(xs, [f["lookup_miss_ns"] for f in flows], "s--", label="Shard lookup (miss, prefetched bursts)")
        ax.plot(xs, [f["baseline_hashbrown_lookup_ns"] for f in flows], "^-", label="hashbrown HashMap")
        ax.set_xscale("log"); ax.set_xlabel("flows"); ax.set_ylabel("ns per lookup"); ax.grid(True, alpha=.3)
        ax.set_title("Lookup cost vs number of flows"); ax.legend()
        fig.tight_layout(); fig.savefig(f"{docs}/benchmarks-lookup.png", dpi=100)
    if mp:
        fig, ax = plt.subplots(figsize=(6, 4))
        tp = statistics.median(float(r[2]) for r in mp); dpv = statistics.median(float(r[4]) for r in mp)
        ax.bar(["dpdk-testpmd\nio forward", "dataplane\nfull NAT pipeline"], [tp, dpv], color=["#888", "#2a6"])
        for i, v in enumerate([tp, dpv]):
            ax.text(i, v, f"{v:.2f}", ha="center", va="bottom")
        ax.set_ylabel("Mpps (one core)"); ax.set_title("net_pcap → net_null, 64-byte frames")
        fig.tight_layout(); fig.savefig(f"{docs}/benchmarks-mpps.png", dpi=100)
    # the plots go after the heading and the history line
    lines.insert(lines.index(HISTORY) + 2, "![lookup cost vs flows](benchmarks-lookup.png) ![Mpps vs testpmd](benchmarks-mpps.png)\n")
except ImportError:
    pass

open(f"{docs}/benchmarks.md", "w").write("\n".join(lines) + "\n")
