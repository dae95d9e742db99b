"""Benchmark: scrub a generated export end to end and compare with the I/O floor, in one run.

    python benchmarks/bench.py                 # 1,000,000 lines
    python benchmarks/bench.py --lines 100000

Prints, for the same file on the same machine in the same run:
  (a) the I/O floor: pyarrow reads the CSV and writes it back (the least any scrubber must do),
      the median of three runs;
  (b) `scrubber run` end to end as a pipeline runs it (a fresh process: imports, rules, read,
      derive, engine, all three output files);
then lines per second, the ratio b / a, and the peak memory of a second, watched run (watching
slows a run, so the timed run is left alone).
Figures vary with the machine and its load: compare ratios, not seconds, across machines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_export import write_export  # noqa: E402  (sibling script, not a package)


def io_floor(path: Path, out_dir: Path) -> float:
    """Seconds for pyarrow to read the export (every column as text) and write it back."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())))
    pacsv.write_csv(table, out_dir / "floor.csv")
    return time.perf_counter() - started


def scrub_command(path: Path, out_dir: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "scrubber", "run", str(path), "--out", str(out_dir / "scrubbed"),
            "--fail-on", "never", "--quiet", *extra]


def timed_run(command: list[str]) -> tuple[float, int]:
    """Seconds and exit code of `scrubber run` in a fresh process, with nothing else watching it."""
    started = time.perf_counter()
    code = subprocess.run(command, check=False).returncode
    return time.perf_counter() - started, code


def peak_memory(command: list[str]) -> tuple[int, str]:
    """Peak memory (bytes) of a second `scrubber run`, and how it was measured.

    The largest sum of the proportional set size (PSS: resident memory, pages shared between
    forked workers counted once in all) of the run and its worker processes, sampled every 50 ms
    with psutil; without psutil, the largest single process (ru_maxrss). Sampling reads every
    process's page tables, which slows the run: that is why the timed run is a separate one."""
    child = subprocess.Popen(command)
    try:
        import psutil
    except ImportError:
        _, status, usage = os.wait4(child.pid, 0)
        return usage.ru_maxrss * 1024, "largest process, ru_maxrss"  # KiB on Linux
    peak = 0
    process = psutil.Process(child.pid)
    while child.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak, "all its processes, PSS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Keep the generated export and outputs in this folder.")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="Skip the second run that measures peak memory.")
    parser.add_argument("scrubber_args", nargs="*", help="Extra arguments for `scrubber run` (after --).")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="scrubber-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    export = work / f"export_{args.lines}.csv"
    if not export.exists():
        started = time.perf_counter()
        write_export(args.lines, export)
        print(f"generated {args.lines:,} lines ({export.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")

    # In a process of its own: Arrow keeps the memory it read into, which would sit beside the run.
    # The median of three: one read and write of the file varies by half from run to run.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        floor = statistics.median(pool.submit(io_floor, export, work).result() for _ in range(3))
    command = scrub_command(export, work, args.scrubber_args)
    seconds, code = timed_run(command)
    if code != 0:
        sys.exit(f"scrubber run failed with exit code {code}")
    peak, measured = peak_memory(command) if args.memory else (None, "")
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print(f"(a) I/O floor, pyarrow read + write (median of 3): {floor:.2f} s ({args.lines / floor:,.0f} lines/s)")
    print(f"(b) scrubber run, end to end:        {seconds:.2f} s ({args.lines / seconds:,.0f} lines/s)")
    print(f"ratio b / a: {seconds / floor:.1f}")
    if peak is not None:
        print(f"peak memory of scrubber run ({measured}, a second run): {peak / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
