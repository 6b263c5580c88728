"""`benchmarks.nodes` without running its load: the CPU it attributes to each party comes from
the processes it names (`tests/test_bench_ingest.py` checks its message when wrk is missing)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.nodes import Cpu, CpuMeter, Throughput, postgres_cpu, process_cpu

BUSY = "while True: pass"


def test_a_busy_process_is_charged_its_cpu_and_an_idle_one_nothing() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)  # both started; the idle one has finished importing
        meter = CpuMeter([busy.pid], None)
        idle_before, before = process_cpu(idle.pid), meter.read()
        deadline = time.monotonic() + 20
        while process_cpu(busy.pid) - before.nodes < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = CpuMeter.spent(before, meter.read())
        assert spent.nodes >= 0.2
        assert spent.postgresql == 0.0
        assert process_cpu(idle.pid) - idle_before < 0.05
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()


def test_without_a_server_postgresql_costs_nothing_and_a_gone_process_reads_zero(
    tmp_path: Path,
) -> None:
    assert postgres_cpu(tmp_path) == 0.0  # no postmaster.pid
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert process_cpu(gone.pid) == 0.0


def test_the_cpu_line_reads_as_a_share_of_a_core_and_a_cost_per_impression() -> None:
    result = Throughput("postgresql, 2 nodes", acked=1000, seconds=2.0, nodes=2)
    result.cpu.add(Cpu(nodes=2.0, postgresql=1.0, client=0.1))
    line = result.cpu_line()
    # Two nodes used 2 s of CPU in 2 s: each was half a core; 2 ms of node CPU an impression.
    assert "each node   50 %" in line and "all nodes  2.00 ms" in line
    assert "postgresql   50 % ( 1.00 ms)" in line
    assert "load client    5 % ( 0.10 ms)" in line
