"""`scrubber run --engine dask`: read and scrub on a Dask distributed cluster, with the local engine's output.

What runs where (docs/cluster.md):
- the client (this process) lists the inputs' parts (a CSV, CSV.GZ or JSON Lines file is one part, a
  Parquet file or dataset folder one part per file), then gathers the lines and the findings back;
  the pipeline writes every output file here, as with the local engine;
- the workers read and type each part with claims.py's readers, derive the batch-wide facts
  (sessions, claim line keys) over the whole batch in one task, split every part by patient, and
  run `scrub.scrub_lines` (line and patient facts, then every rule through the engine) on each
  patient's shard. Each worker process creates its own engine rulesets: the RulePack travels, the
  engine's handles never do.

Lines are numbered across the inputs in the order given, so findings sort as locally. Inputs must be
readable by the client and by every worker at the same path (a shared filesystem).
"""

from __future__ import annotations

import logging
import operator
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scrubber import __version__
from scrubber.claims import (ClaimBatch, Mapping, _as_text, apply_mapping, batch_of, parquet_dataset,
                             read_raw, type_columns, unreadable)
from scrubber.derive import FAMILIES, DeriveContext, derive
from scrubber.errors import InputError, ScrubberError
from scrubber.loader import RulePack
from scrubber.scrub import ScrubResult, collect, default_workers, fields_used, scrub_lines, shard_of

CONNECT_TIMEOUT = 10  # seconds to reach the scheduler, and for it to have a worker
INSTALL = "pip install 'scrubber[dask]'"


@dataclass(frozen=True)
class InputPart:
    """What one read task reads: a whole input file, or one file of a Parquet input."""

    path: Path  # the input as given on the command line: errors name it
    fragment: Any = None  # a pyarrow Parquet fragment of `path`
    schema: Any = None  # the Parquet dataset's schema, which every fragment is read with
    first_row: int = 1  # the number of the fragment's first line among the input's lines


def read_and_scrub(inputs: list[Path], mapping: Mapping, pack: RulePack, run_date: date,
                   scheduler: str | None) -> tuple[ClaimBatch, ScrubResult]:
    """Read and scrub `inputs` on the cluster at `scheduler` (default: a local cluster of this
    machine's cores); the same batch and findings as `read_batch` then `scrub`."""
    distributed = _import_distributed()
    with _client(distributed, scheduler) as client:
        listed = [_parts(path) for path in inputs]
        reads = [[client.submit(_read, part, mapping, pure=False) for part in parts]
                 for parts in listed if not isinstance(parts, InputError)]
        _raise_first_error(distributed, listed, reads)
        reads = [read for file_reads in reads for read in file_reads]
        lengths = client.gather([client.submit(_length, read, pure=False) for read in reads])
        offsets = np.cumsum([0, *lengths]).tolist()
        # Header-only exports have nothing to derive or evaluate.
        found = _scrub_on_cluster(client, reads, offsets, pack, run_date) if offsets[-1] else []
        try:
            findings, frames = client.gather([found, reads])  # the lines come back while shards run
        except distributed.KilledWorker:
            raise ScrubberError("a Dask worker died while scrubbing (out of memory?); see the workers' logs") from None
    counts = iter(lengths)
    sources = [(path.name, sum(next(counts) for _ in parts)) for path, parts in zip(inputs, listed, strict=True)]
    batch = batch_of([raw for raw, _ in frames], [typed for _, typed in frames], sources)
    return batch, collect([found for shard in findings for found in shard])


def _scrub_on_cluster(client: Any, reads: list[Any], offsets: list[int], pack: RulePack, run_date: date) -> list[Any]:
    """Batch-wide facts over every line, then a shuffle by patient, then the rules on each shard:
    one future per shard, of its findings."""
    pack_on_workers = client.scatter(pack, hash=False)
    keys = [client.submit(_batch_keys, read, pure=False) for read in reads]
    facts = client.submit(_batch_facts, keys, offsets, pack_on_workers, run_date, pure=False)
    shards = max(1, sum(client.nthreads().values()))
    split = [
        client.submit(_split, read, client.submit(operator.getitem, facts, i, pure=False), shards, pure=False)
        for i, read in enumerate(reads)
    ]
    return [
        client.submit(_scrub_shard, [client.submit(operator.getitem, by_shard, s, pure=False) for by_shard in split],
                      pack_on_workers, run_date, pure=False)
        for s in range(shards)
    ]


# -- the client ----------------------------------------------------------------------------------------
def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError(f"--engine dask needs Dask, which is not installed: {INSTALL}") from None
    return distributed


@contextmanager
def _client(distributed: Any, scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a local cluster closed afterwards."""
    if scheduler is None:
        # dashboard_address=":0": any free port (8787 may be taken by another cluster or a notebook's).
        quiet = logging.CRITICAL  # worker logs may show a failed task's values: never print them
        with distributed.LocalCluster(n_workers=default_workers(), threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=quiet) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # OSError on a timeout, ValueError or TypeError on a malformed address
        raise InputError(f"cannot connect to the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s "
                         f"({exc.__class__.__name__}); is it running and reachable?") from None
    with client:
        _check_workers(client, scheduler)
        yield client


def _check_workers(client: Any, scheduler: str) -> None:
    """The cluster has a worker, and every worker runs this scrubber version (the same findings)."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise InputError(f"the Dask scheduler at {scheduler} has no workers; start some with "
                         f"`dask worker {scheduler}`") from None
    try:
        versions = set(client.run(_version).values())
    except Exception as exc:
        raise InputError(f"the Dask workers cannot run scrubber ({exc.__class__.__name__}); "
                         f"{INSTALL} on every worker, in the same version as here") from None
    if versions != {__version__}:
        raise InputError(f"the Dask workers run scrubber {', '.join(sorted(versions))}, this client "
                         f"{__version__}; install the same version everywhere")


def _version() -> str:
    return __version__


def _parts(path: Path) -> list[InputPart] | InputError:
    """The read tasks of one input (or the error reading it would raise, kept for its turn)."""
    if not (path.exists() and (path.is_dir() or path.name.lower().endswith(".parquet"))):
        return [InputPart(path)]  # read_raw reads it whole, or says why it cannot
    try:
        dataset = parquet_dataset(path)  # what read_raw reads, file by file (or says why it cannot)
        parts, first_row = [], 1
        for fragment in dataset.get_fragments():
            parts.append(InputPart(path, fragment, dataset.schema, first_row))
            first_row += fragment.count_rows()  # from the file's footer
        return parts
    except InputError as exc:
        return exc
    except Exception as exc:
        return unreadable(path, exc)


def _raise_first_error(distributed: Any, listed: list[list[InputPart] | InputError], reads: list[list[Any]]) -> None:
    """Raise what a local run would: the first input, in command-line order, that cannot be read."""
    distributed.wait([read for file_reads in reads for read in file_reads])
    pending = iter(reads)
    for parts in listed:
        if isinstance(parts, InputError):
            raise parts
        for read in next(pending):
            if read.status == "error":
                read.result()  # raises the worker's exception (an InputError names the file, never a value)


# -- the workers ---------------------------------------------------------------------------------------
_ENGINE = threading.Lock()  # a worker process's engine rulesets serve one shard at a time


def _read(part: InputPart, mapping: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One part's raw cells and typed columns, as claims.read_batch reads a file."""
    if part.fragment is None:
        raw = read_raw(part.path)
    else:
        try:
            raw = _as_text(part.fragment.to_table(schema=part.schema))
        except Exception as exc:
            raise unreadable(part.path, exc) from None
    return raw, type_columns(raw, apply_mapping(raw, mapping, part.path), (part.path.name, part.first_row))


def _length(read: tuple[pd.DataFrame, pd.DataFrame]) -> int:
    return len(read[1])


def _batch_keys(read: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """The columns the batch-wide families read (sessions span patients; claim line keys span files)."""
    columns = sorted({c for fam in FAMILIES.values() if fam.scope == "batch" for c in fam.reads})
    return read[1][columns]


def _batch_facts(keys: list[pd.DataFrame], offsets: list[int], pack: RulePack, run_date: date) -> list[pd.DataFrame]:
    """The batch-scope derived fields over every line, cut back into the parts (indexed by global row)."""
    frame = pd.concat(keys, ignore_index=True)
    facts = derive(frame, DeriveContext(pack.reference, run_date), fields_used(pack), scopes=("batch",))
    facts = facts.drop(columns=frame.columns)
    return [facts.iloc[start:end] for start, end in zip(offsets, offsets[1:], strict=False)]


def _split(read: tuple[pd.DataFrame, pd.DataFrame], facts: pd.DataFrame, shards: int) -> list[pd.DataFrame]:
    """A part's typed lines with their batch-wide facts, split by patient into one frame per shard."""
    typed = read[1].set_axis(facts.index)
    lines = pd.concat([typed, facts], axis=1)
    shard = shard_of(typed["patient_id"], shards)
    return [lines[shard == s] for s in range(shards)]


def _scrub_shard(lines: list[pd.DataFrame], pack: RulePack, run_date: date) -> list[pd.DataFrame]:
    """Every rule on one shard's lines (whole patients, in input order, from each part); findings by global row."""
    lines = [some for some in lines if len(some)]
    if not lines:
        return []
    base = pd.concat(lines)
    with _ENGINE:
        found = scrub_lines(base, np.arange(len(base)), pack, run_date)
    rows = base.index.to_numpy()
    for findings in found:
        findings["row"] = rows[findings["row"].to_numpy()]
    return found
