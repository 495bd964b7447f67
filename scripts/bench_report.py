"""Turns a scripts/bench.sh result directory into the comparison table of
docs/performance.md (medians of the runs, stomphub beside RabbitMQ, with ratios,
and romp for the idle connections)."""

import datetime
import json
import pathlib
import platform
import statistics
import subprocess
import sys

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def load(directory, broker, name):
    reports = []
    for path in sorted(directory.glob(f"{broker}-{name}-*.json")):
        try:
            reports.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass
    return reports


def median(reports, pick):
    values = [v for v in (pick(r) for r in reports) if v is not None]
    return statistics.median(values) if values else None


def fmt(value, unit="", digits=0):
    if value is None:
        return "failed"
    return f"{value:,.{digits}f}{unit}"


def ratio(ours, theirs, higher_is_better=True):
    if not ours or not theirs:
        return "-"
    value = ours / theirs if higher_is_better else theirs / ours
    return f"{value:.1f}x"


def loss_note(reports):
    lost = sum(r["delivery"]["lost"] + r["delivery"]["duplicates"] + r["delivery"]["reordered"] for r in reports)
    return "none lost/duplicated/reordered" if lost == 0 else f"{lost} lost+duplicated+reordered"


def machine():
    cpu = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cores} cores ({cpu}){memory}, {platform.system()} {platform.release()}"


def rows(directory):
    out = []
    s, r = load(directory, "stomphub", "fanout-100-max"), load(directory, "rabbitmq", "fanout-100-max")
    sv, rv = median(s, lambda x: x["deliveries_per_second"]), median(r, lambda x: x["deliveries_per_second"])
    out.append(("fan-out 1 -> 100, max rate: deliveries/s", fmt(sv) + f" ({loss_note(s)})", fmt(rv), ratio(sv, rv), "-"))
    sc = median(s, lambda x: x.get("broker_cpu_us_per_delivery"))
    rc = median(r, lambda x: x.get("broker_cpu_us_per_delivery"))
    out.append(("broker CPU per delivery (same run)", fmt(sc, " us", 3), fmt(rc, " us", 3), ratio(sc, rc, False), "-"))
    s, r = load(directory, "stomphub", "fanout-1000-rate"), load(directory, "rabbitmq", "fanout-1000-rate")
    out.append((
        "fan-out 1 -> 1000 at 1,000 msg/s offered: deliveries/s, p99",
        f"{fmt(median(s, lambda x: x['deliveries_per_second']))}, p99 {fmt(median(s, lambda x: x['latency']['p99_us'] / 1000), ' ms', 1)}",
        f"{fmt(median(r, lambda x: x['deliveries_per_second']))}, p99 {fmt(median(r, lambda x: x['latency']['p99_us'] / 1000), ' ms', 1)}",
        ratio(median(s, lambda x: x["deliveries_per_second"]), median(r, lambda x: x["deliveries_per_second"])),
        "-",
    ))
    s, r = load(directory, "stomphub", "fanout-100-rate"), load(directory, "rabbitmq", "fanout-100-rate")
    sp, rp = median(s, lambda x: x["latency"]["p99_us"] / 1000), median(r, lambda x: x["latency"]["p99_us"] / 1000)
    out.append(("fan-out 1 -> 100 at 1,000 msg/s offered: p99", fmt(sp, " ms", 2), fmt(rp, " ms", 2), ratio(sp, rp, False), "-"))
    s, r = load(directory, "stomphub", "p2p-1000-max"), load(directory, "rabbitmq", "p2p-1000-max")
    sv, rv = median(s, lambda x: x["messages_per_second"]), median(r, lambda x: x["messages_per_second"])
    out.append((
        "p2p 1000 users, max rate: msg/s (p99)",
        f"{fmt(sv)} (p99 {fmt(median(s, lambda x: x['latency']['p99_us'] / 1000), ' ms', 1)})",
        f"{fmt(rv)} (p99 {fmt(median(r, lambda x: x['latency']['p99_us'] / 1000), ' ms', 1)})",
        ratio(sv, rv),
        "-",
    ))
    s, r = load(directory, "stomphub", "conns-10000"), load(directory, "rabbitmq", "conns-10000")
    m = load(directory, "romp", "conns-10000")

    def romp(pick, unit="", digits=0):
        return fmt(median(m, pick), unit, digits) if m else "not run"

    rss = lambda x: x.get("broker_rss_per_connection_kib")
    sv, rv = median(s, rss), median(r, rss)
    out.append(("idle connections: RSS per connection", fmt(sv, " KiB", 1), fmt(rv, " KiB", 1), ratio(sv, rv, False), romp(rss, " KiB", 1)))
    held = lambda x: x["established"]
    se, re_ = median(s, held), median(r, held)
    out.append(("connections held (of 10,000 requested)", fmt(se), fmt(re_), ratio(se, re_), romp(held)))
    rate = lambda x: x["setups_per_second"]
    sv, rv = median(s, rate), median(r, rate)
    out.append(("connection set-up rate (200 at a time)", fmt(sv, "/s"), fmt(rv, "/s"), ratio(sv, rv), romp(rate, "/s")))
    tail = lambda x: x.get("setup_latency", {}).get("p999_us", 0) / 1000 or None
    sv, rv = median(s, tail), median(r, tail)
    out.append(("connection set-up p99.9", fmt(sv, " ms", 1), fmt(rv, " ms", 1), ratio(sv, rv, False), romp(tail, " ms", 1)))
    return out


def main():
    directory, version, runs, doc = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
    lines = [
        START,
        f"Measured {datetime.date.today()} by `scripts/bench.sh` (results in `{directory}`), "
        f"median of {runs} runs, each scenario against stomphub then RabbitMQ {version} Web-STOMP, alternating.",
        f"Machine: {machine()}. Load generator on the same machine; 128-byte bodies; loopback.",
        "Ratios are stomphub's advantage (higher throughput, or lower latency/CPU/memory).",
        "",
        "| scenario | stomphub | RabbitMQ Web-STOMP | ratio | romp 0.5 |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(directory)]
    lines.append(END)
    table = "\n".join(lines)
    text = doc.read_text()
    if START in text and END in text:
        text = text[: text.index(START)] + table + text[text.index(END) + len(END):]
    else:
        text += "\n## stomphub and RabbitMQ side by side\n\n" + table + "\n"
    doc.write_text(text)
    print(table)


if __name__ == "__main__":
    main()
