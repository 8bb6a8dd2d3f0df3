"""What pyiceberg 0.12 spends applying position deletes, apart from reading any file.

pyiceberg applies position deletes per record batch in `_combine_positional_deletes` (pyiceberg/io/pyarrow.py): it
builds the batch's row indexes with `pa.array(range(start, end))` from a Python range, drops the deleted ones with
`is_in`, and then `take`s the kept rows. This times exactly that function (and the `take`) on the shape of the CDC
benchmark's table after run 1 (16 bucket files, a share of their rows deleted), so the table-health note can say how
much of pyiceberg's full-scan time is this floor rather than the table's layout.

Run:
  .tools/venv/bin/python bench/cdc/pyiceberg_floor.py [--rows 1000000] [--files 16] [--deleted 0.02] [--repeats 5]
Prints one JSON object: the median ms of the index building and of the take, per scan of `--rows` rows.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import pyarrow as pa
from pyiceberg.io.pyarrow import _combine_positional_deletes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--deleted", type=float, default=0.02, help="share of each file's rows deleted")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    per_file = args.rows // args.files
    rng = random.Random(1)
    deletes = [
        pa.chunked_array([pa.array(sorted(rng.sample(range(per_file), int(per_file * args.deleted))), pa.int64())])
        for _ in range(args.files)
    ]
    # A batch shaped like the benchmark's orders table: a long key, two longs, a decimal-ish double, a string.
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(per_file), pa.int64()),
            "customer_id": pa.array(range(per_file), pa.int64()),
            "quantity": pa.array(range(per_file), pa.int64()),
            "amount": pa.array([i * 0.5 for i in range(per_file)], pa.float64()),
            "status": pa.array([f"status-{i % 7}" for i in range(per_file)], pa.string()),
        }
    )
    index_ms: list[float] = []
    take_ms: list[float] = []
    for _ in range(args.repeats):
        indexes = []
        start = time.perf_counter()
        for d in deletes:
            indexes.append(_combine_positional_deletes([d], 0, per_file))
        index_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        for idx in indexes:
            batch.take(idx)
        take_ms.append((time.perf_counter() - start) * 1000)
    print(
        json.dumps(
            {
                "rows": per_file * args.files,
                "files": args.files,
                "deletedShare": args.deleted,
                "indexMsMedian": round(statistics.median(index_ms), 1),
                "takeMsMedian": round(statistics.median(take_ms), 1),
                "indexMs": [round(x, 1) for x in index_ms],
                "takeMs": [round(x, 1) for x in take_ms],
            }
        )
    )


if __name__ == "__main__":
    main()
