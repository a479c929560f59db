"""What the capture kit's tests share: compiling with mingw, running under wine, checking what
the harness printed, and reading the TraceLogging sink's dump (tests/capture/fake_kernel.c)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from bench.capture_cost import DDK, GCC, find_wine

__all__ = ["CAPTURE", "FLAGS", "GUID_BYTES", "HARNESS", "Kit", "dmalint_check", "dump_records"]

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "capture"
HARNESS = ROOT / "tests" / "capture"
FLAGS = ["-Wall", "-Wextra", "-Werror", "-Wno-multichar", "-DPOOL_TAGGING", f"-I{DDK}"]
GUID_BYTES = bytes.fromhex("2220c8484fb1be561364624fff462dca")

class Kit:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.env = dict(os.environ, WINEPREFIX=str(out / "wineprefix"), WINEDEBUG="-all")

    def compile(self, source: Path, *defines: str) -> Path:
        obj = self.out / f"{source.stem}{''.join(d.replace('-D', '_') for d in defines)}.o"
        subprocess.run([GCC, "-O2", *FLAGS, f"-I{CAPTURE}", f"-I{HARNESS}", *defines, "-c", "-o", str(obj), str(source)],
                       check=True, capture_output=True, text=True)
        return obj

    def link(self, name: str, objects: list[Path]) -> Path:
        exe = self.out / f"{name}.exe"
        subprocess.run([GCC, "-o", str(exe), *map(str, objects)], check=True, capture_output=True, text=True)
        return exe


    def run(self, exe: Path, scenario: str = "clean", env: dict | None = None) -> tuple[int, str]:
        # stdin and stderr not inherited: wine's own services would hold a pipe open for seconds
        proc = subprocess.run([find_wine(), str(exe), scenario], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, text=True, env=dict(self.env, **(env or {})), timeout=60)
        return proc.returncode, proc.stdout

    def check(self, text: str, name: str) -> dict:
        path = self.out / f"{name}.trace"
        path.write_text(text)
        return dmalint_check(path)[1]

    def capture_all(self, runs: dict[str, tuple[str, str]]) -> None:
        """Runs each (exe, scenario) and checks all their traces with one `dmalint check DIR`."""
        traces = self.out / "traces"
        traces.mkdir()
        self.captured = {}
        for name, (exe, scenario) in runs.items():
            rc, text = self.run(self.exes[exe], scenario)
            (traces / f"{name}.trace").write_text(text)
            self.captured[name] = (rc, text)
        report = dmalint_check(traces)[1]
        self.reports = {
            name: {"files": [f for f in report["files"] if Path(f["path"]).stem == name],
                   "findings": [f for f in report["findings"] if Path(f["path"]).stem == name]}
            for name in runs
        }

    def captured_run(self, name: str) -> tuple[int, list[str], dict]:
        rc, text = self.captured[name]
        return rc, text.splitlines(), self.reports[name]


def dmalint_check(path: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "checker", "check", str(path), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    return proc.returncode, json.loads(proc.stdout)


def dump_records(data: bytes):
    """(provider GUID, event descriptor, [(type, bytes)]) for each event of a DMALDUMP file."""
    assert data[:8] == b"DMALDUMP"
    pos = 8
    while pos < len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        rec = data[pos + 4:pos + 4 + size]
        pos += 4 + size
        cpu, pid, tid, ts = struct.unpack_from("<IIIQ", rec, 0)
        guid = rec[20:36]
        ev_id, ver, chan, level, opcode, task, kw = struct.unpack_from("<HBBBBHQ", rec, 36)
        (count,) = struct.unpack_from("<I", rec, 52)
        p, descs = 56, []
        for _ in range(count):
            typ = rec[p]
            assert rec[p + 1:p + 4] == b"\0\0\0"
            (n,) = struct.unpack_from("<I", rec, p + 4)
            descs.append((typ, rec[p + 8:p + 8 + n]))
            p += 8 + n
        assert p == len(rec)
        yield guid, (ev_id, ver, chan, level, opcode, task, kw), descs
