"""pyiceberg's side of the CDC benchmark (bench/cdc/run.ts).

  probe              poll the table forever: load it, scan `id < 0` (the marker rows), and print one JSON line per
                     poll that saw new markers: {"pollStartMs", "pollEndMs", "snapshotId", "ids": [...]}; a line
                     {"pollMs": …} every 50 polls says how long polls take
  scan               time full scans (`scan().to_arrow()`) of the table: {"ms": [...], "rows": n}

A marker counts as visible at the start of the poll that saw it: a reader that began then saw it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def open_table(args: argparse.Namespace):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(args.catalog_name, uri=f"sqlite:///{args.catalog}", warehouse=args.warehouse)
    return catalog, args.table


def probe(args: argparse.Namespace) -> None:
    from pyiceberg.expressions import LessThan

    catalog, name = open_table(args)
    seen: set[int] = set()
    polls = 0
    durations: list[float] = []
    while True:
        start = time.time()
        try:
            table = catalog.load_table(name)
            snapshot = table.current_snapshot()
            ids = (
                table.scan(row_filter=LessThan("id", 0), selected_fields=("id",))
                .to_arrow()
                .column("id")
                .to_pylist()
            )
        except Exception as err:  # a commit in flight; poll again
            print(json.dumps({"error": str(err)[:300]}), flush=True)
            time.sleep(args.interval_ms / 1000)
            continue
        end = time.time()
        polls += 1
        durations.append((end - start) * 1000)
        fresh = [i for i in ids if i not in seen]
        seen.update(fresh)
        if fresh:
            print(
                json.dumps(
                    {
                        "pollStartMs": start * 1000,
                        "pollEndMs": end * 1000,
                        "snapshotId": str(snapshot.snapshot_id) if snapshot else None,
                        "ids": fresh,
                    }
                ),
                flush=True,
            )
        if polls % 50 == 0:
            print(json.dumps({"pollMs": durations}), flush=True)
            durations = []
        remaining = args.interval_ms / 1000 - (time.time() - start)
        if remaining > 0:
            time.sleep(remaining)


def scan(args: argparse.Namespace) -> None:
    catalog, name = open_table(args)
    times = []
    rows = 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        table = catalog.load_table(name)
        rows = table.scan().to_arrow().num_rows
        times.append(round((time.perf_counter() - start) * 1000, 1))
    print(json.dumps({"ms": times, "rows": rows}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["probe", "scan"])
    parser.add_argument("--catalog", required=True, help="SQLite catalog file")
    parser.add_argument("--catalog-name", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--interval-ms", type=float, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "probe":
        probe(args)
    else:
        scan(args)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
