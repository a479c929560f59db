"""The capture kit's cost per logged call, under wine, against the tests' fake kernel.

    python bench/capture_cost.py [--iterations 1000000] [--rounds 7] [--keep DIR] [--wineprefix DIR] [--json OUT]

Builds bench/capture_cost.c three ways with mingw (-O2, the kit's test flags) and links each
with tests/capture/fake_kernel.c:

  unwrapped      -DBENCH_UNWRAPPED: the kit's header not included, calls go straight to the fake kernel
  callback       the kit, -DDMALINT_SINK_CALLBACK: each line copied into a static buffer (the
                 formatting is measured, not I/O)
  tracelogging   the kit's default sink: EtwWriteTransfer with five descriptors; the fake
                 kernel's EtwWriteTransfer only counts the event (no dump file), so the real
                 EtwWriteTransfer's cost is not measured here

then runs them under wine64 interleaved, --rounds times each (the order rotates each round),
each run timing N iterations of four operations called as a driver calls them (pool
alloc+free, spin lock acquire+release, GetDmaAlignment, Build+PutScatterGatherList with its
callback; see bench/capture_cost.c). Prints, per operation and variant, the median ns per
iteration over the rounds (and the range), ns per DDI call, the lines logged per iteration,
ns each line adds over unwrapped and the ratio to unwrapped, all from this one run (the
machine is shared and noisy: compare within a run). Exits 1 when a run fails or logs other
than the expected lines; skips (exit 0, a message on stderr) when mingw or wine is missing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bench" / "capture_cost.c"
CAPTURE = ROOT / "capture"
FAKE = ROOT / "tests" / "capture"
GCC = "x86_64-w64-mingw32-gcc"
DDK = Path("/usr/x86_64-w64-mingw32/include/ddk")
INSTALL = "apt-get install gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev wine64"
FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-Wno-multichar", "-DPOOL_TAGGING", f"-I{DDK}",
         f"-I{CAPTURE}", f"-I{FAKE}"]
VARIANTS = {  # name: (defines, the kit linked in)
    "unwrapped": (["-DBENCH_UNWRAPPED"], False),
    "callback": (["-DDMALINT_SINK_CALLBACK"], True),
    "tracelogging": ([], True),
}
LINES = {"pool": 2, "lock": 2, "align": 1, "sgl": 7}  # lines the kit logs per iteration
WINEPREFIX = Path("/var/tmp") / f"dmalint-capture-cost-wine-{os.getuid()}"


def find_wine() -> str | None:
    for name in ("wine64", "/usr/lib/wine/wine64", "wine"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the benchmark cannot run here, or None."""
    if not shutil.which(GCC):
        return f"{GCC} not found"
    if not (DDK / "wdm.h").exists():
        return f"the DDK headers (wdm.h) not found in {DDK}"
    if not find_wine():
        return "wine64 not found"
    return None


def build(directory: Path, variant: str) -> Path:
    defines, kit = VARIANTS[variant]
    exe = directory / f"capture_cost_{variant}.exe"
    sources = [SOURCE, *([CAPTURE / "dmalint_capture.c"] if kit else []), FAKE / "fake_kernel.c"]
    proc = subprocess.run([GCC, *FLAGS, *defines, "-o", str(exe), *map(str, sources)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building {variant} failed:\n{proc.stderr}")
    return exe


def parse(text: str) -> dict:
    """The records of one run: {"variant", "iterations", "warmup", "qpf", "ops": {name: fields}, "samples"}."""
    out: dict = {"ops": {}, "samples": []}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "sample":
            head, _, sample = rest.partition(" text=")
            out["samples"].append({"name": head.removeprefix("name="), "text": sample})
            continue
        fields = dict(item.split("=", 1) for item in rest.split())
        if kind == "bench":
            out.update(variant=fields["variant"], iterations=int(fields["iterations"]),
                       warmup=int(fields["warmup"]), qpf=float(fields["qpf"]))
        elif kind == "op":
            name = fields.pop("name")
            out["ops"][name] = {key: float(value) for key, value in fields.items()}
        else:
            raise ValueError(f"unexpected output line: {line!r}")
    return out


def run(wine: str, exe: Path, iterations: int, env: dict) -> dict:
    proc = subprocess.run([wine, str(exe), str(iterations)], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{exe.name} {iterations} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return parse(proc.stdout)


def check_lines(result: dict) -> list[str]:
    """What is wrong with one run's line counts (the unwrapped build logs nothing)."""
    wrong = []
    for name, expected in LINES.items():
        op = result["ops"].get(name)
        want = 0 if result["variant"] == "unwrapped" else expected
        if op is None:
            wrong.append(f"{result['variant']}: no {name}")
        elif op["lines"] != want or op.get("failed"):
            wrong.append(f"{result['variant']} {name}: {op['lines']} lines per iteration, expected {want}"
                         + (" (an operation failed)" if op.get("failed") else ""))
    return wrong


def summarize(runs: list[dict]) -> dict:
    """Medians per variant and operation over the rounds, ratios and ns per line against unwrapped."""
    table: dict = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        table[variant] = {}
        for name in LINES:
            values = [r["ops"][name]["ns_per_op"] for r in mine]
            op = mine[0]["ops"][name]
            table[variant][name] = {"calls": int(op["calls"]), "lines": op["lines"], "bytes_per_line": op["bytes"],
                                    "ns_per_op": round(statistics.median(values), 2),
                                    "ns_per_op_min": round(min(values), 2), "ns_per_op_max": round(max(values), 2),
                                    "ns_per_call": round(statistics.median(values) / op["calls"], 2)}
        table[variant]["all"] = {key: round(sum(table[variant][n][key] for n in LINES), 2)
                                 for key in ("calls", "lines", "ns_per_op")}
        table[variant]["all"]["ns_per_call"] = round(table[variant]["all"]["ns_per_op"] / table[variant]["all"]["calls"], 2)
    base = table["unwrapped"]
    for variant in VARIANTS:
        for name, row in table[variant].items():
            row["x_unwrapped"] = round(row["ns_per_op"] / base[name]["ns_per_op"], 2)
            extra = row["ns_per_op"] - base[name]["ns_per_op"]
            row["ns_per_line_added"] = round(extra / row["lines"], 2) if row["lines"] else None
    return table


COLUMNS = [("op", "<6"), ("variant", "<13"), ("calls", ">5"), ("lines", ">5"), ("ns/iteration", ">12"),
           ("range", ">17"), ("ns/call", ">9"), ("ns/line added", ">13"), ("x unwrapped", ">11")]


def table_rows(table: dict) -> list[list[str]]:
    rows = []
    for name in [*LINES, "all"]:
        for variant in VARIANTS:
            row = table[variant][name]
            span = f"{row['ns_per_op_min']:.1f}-{row['ns_per_op_max']:.1f}" if "ns_per_op_min" in row else ""
            added = "-" if row["ns_per_line_added"] is None else f"{row['ns_per_line_added']:.1f}"
            rows.append([name, variant, f"{row['calls']:g}", f"{row['lines']:g}", f"{row['ns_per_op']:.1f}", span,
                         f"{row['ns_per_call']:.1f}", added, f"{row['x_unwrapped']:.2f}"])
    return rows


def print_table(table: dict) -> None:
    lines = [" ".join(format(cell, spec) for cell, (_, spec) in zip(cells, COLUMNS, strict=True))
             for cells in [[title for title, _ in COLUMNS], *table_rows(table)]]
    print("\n".join([lines[0], "-" * len(lines[0]), *lines[1:]]))


def versions(wine: str) -> dict:
    def first_line(command: list[str]) -> str:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        return (proc.stdout.splitlines() or ["?"])[0].strip()
    return {"wine": first_line([wine, "--version"]), "gcc": first_line([GCC, "--version"]),
            "commit": first_line(["git", "rev-parse", "--short", "HEAD"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=1_000_000, help="iterations of each operation per run")
    parser.add_argument("--rounds", type=int, default=7, help="runs of each variant, interleaved")
    parser.add_argument("--keep", type=Path, help="build the executables into DIR and keep them")
    parser.add_argument("--wineprefix", type=Path, default=WINEPREFIX, help=f"default {WINEPREFIX}")
    parser.add_argument("--json", type=Path, help="also write the figures and every run as JSON")
    options = parser.parse_args(argv)
    if options.iterations < 1 or options.rounds < 1:
        parser.error("--iterations and --rounds must be at least 1")
    reason = missing()
    if reason:
        print(f"capture_cost: skipped: {reason}; install: {INSTALL}", file=sys.stderr)
        return 0
    wine = find_wine()
    env = dict(os.environ, WINEPREFIX=str(options.wineprefix), WINEDEBUG="-all")
    env.pop("DMALINT_ETW_DUMP", None)
    figures: dict = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()], **versions(wine)},
        "iterations": options.iterations, "rounds": options.rounds,
        "note": "the fake kernel's EtwWriteTransfer counts the event and returns (no dump file): "
                "the real EtwWriteTransfer's cost is not in the tracelogging figures",
    }
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="dmalint-capture-cost-") as scratch:
        directory = options.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
            exes = {v: pool.submit(build, directory, v) for v in VARIANTS}
            exes = {v: future.result() for v, future in exes.items()}
        for exe in exes.values():  # start the prefix (and wineserver) before anything is timed
            run(wine, exe, 1, env)
        runs = []
        order = list(VARIANTS)
        for round_ in range(options.rounds):
            for variant in order[round_ % len(order):] + order[:round_ % len(order)]:
                result = run(wine, exes[variant], options.iterations, env)
                result["round"] = round_
                runs.append(result)
    wrong = [problem for result in runs for problem in check_lines(result)]
    figures["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["summary"] = summarize(runs)
    figures["samples"] = next(r["samples"] for r in runs if r["variant"] == "callback")
    figures["runs"] = runs
    print(f"capture kit cost, {figures['date']}, {figures['machine']['cpus']} CPUs, load "
          f"{figures['machine']['load_average']}; {figures['machine']['wine']}, {figures['machine']['gcc']}; "
          f"{options.iterations:,} iterations x {options.rounds} rounds, medians (shared, noisy machine: compare ratios)")
    print_table(figures["summary"])
    print(f"note: {figures['note']}")
    for problem in wrong:
        print(f"WRONG: {problem}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
