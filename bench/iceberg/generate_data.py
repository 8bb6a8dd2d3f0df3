"""Deterministic input data for the Iceberg engine benchmarks (bench/iceberg/run.ts).

Writes, under --out:
  base.parquet              --rows rows: id (long, 0..rows-1) + name, amount, updated_at, quantity, active
  changes.parquet           the upsert batch: rows/10 changes, 80% updates, 10% inserts, 10% deletes, shuffled
  rounds/round-NN.parquet   --rounds batches of rows/100 changes each (same 80/10/10 mix) for the scan benchmark
  expected.json             row count and checksums of the table after `changes`, and after all rounds

Every file carries Iceberg field ids (PARQUET:field_id 1..6; the `op` column is 100), so that every engine,
including ours, which matches Parquet columns by field id, reads the same file. Values come from
random.Random(--seed): the same arguments always give the same bytes' worth of data.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BASE_MICROS = 1_764_028_800_000_000  # 2025-11-25T00:00:00Z
TIERS = ("std", "gold", "platinum")


def field(name: str, type_: pa.DataType, field_id: int, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={b"PARQUET:field_id": str(field_id).encode()})


SCHEMA = pa.schema(
    [
        field("id", pa.int64(), 1, nullable=False),
        field("name", pa.string(), 2),
        field("amount", pa.float64(), 3),
        field("updated_at", pa.timestamp("us", tz="UTC"), 4),
        field("quantity", pa.int32(), 5),
        field("active", pa.bool_(), 6),
    ]
)
CHANGES_SCHEMA = pa.schema([field("op", pa.string(), 100, nullable=False), *SCHEMA])


class Row:
    __slots__ = ("name", "amount", "updated_at", "quantity", "active")

    def __init__(self, name: str | None, amount: float, updated_at: int, quantity: int, active: bool) -> None:
        self.name = name
        self.amount = amount
        self.updated_at = updated_at
        self.quantity = quantity
        self.active = active


def new_row(rnd: random.Random, key: int, version: int) -> Row:
    name = None if key % 10 == 0 else f"customer-{rnd.randrange(50_000)}-{TIERS[key % 3]}-v{version}"
    # Every version has a later updated_at, so an update always changes a non-key column (pyiceberg skips rows
    # whose values did not change).
    return Row(
        name,
        round(rnd.random() * 10_000, 2),
        BASE_MICROS + key * 1_000 + version * 86_400_000_000,
        rnd.randrange(1_000),
        rnd.random() < 0.5,
    )


def to_table(ids: list[int], rows: list[Row | None], ops: list[str] | None = None) -> pa.Table:
    def col(attr: str) -> list:
        return [None if r is None else getattr(r, attr) for r in rows]

    columns = [
        pa.array(ids, pa.int64()),
        pa.array(col("name"), pa.string()),
        pa.array(col("amount"), pa.float64()),
        pa.array(col("updated_at"), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        pa.array(col("quantity"), pa.int32()),
        pa.array(col("active"), pa.bool_()),
    ]
    if ops is None:
        return pa.Table.from_arrays(columns, schema=SCHEMA)
    return pa.Table.from_arrays([pa.array(ops, pa.string()), *columns], schema=CHANGES_SCHEMA)


class LiveKeys:
    """The keys in the table, with O(1) sampling and removal, in a deterministic order."""

    def __init__(self, keys: range) -> None:
        self.keys = list(keys)
        self.index = {k: i for i, k in enumerate(self.keys)}

    def sample(self, rnd: random.Random, n: int) -> list[int]:
        return [self.keys[i] for i in rnd.sample(range(len(self.keys)), n)]

    def remove(self, key: int) -> None:
        i = self.index.pop(key)
        last = self.keys.pop()
        if i < len(self.keys):
            self.keys[i] = last
            self.index[last] = i

    def add(self, key: int) -> None:
        self.index[key] = len(self.keys)
        self.keys.append(key)


def change_batch(
    rnd: random.Random, live: LiveKeys, state: dict[int, Row], size: int, next_id: int, version: int
) -> tuple[pa.Table, int]:
    """80% updates and 10% deletes of distinct live keys, 10% inserts of new keys, shuffled; applies them to state."""
    updates_n = size * 8 // 10
    deletes_n = size // 10
    inserts_n = size - updates_n - deletes_n
    picked = live.sample(rnd, updates_n + deletes_n)
    changes: list[tuple[str, int]] = [("update", k) for k in picked[:updates_n]]
    changes += [("delete", k) for k in picked[updates_n:]]
    changes += [("insert", next_id + i) for i in range(inserts_n)]
    rnd.shuffle(changes)
    ops: list[str] = []
    ids: list[int] = []
    rows: list[Row | None] = []
    for op, key in changes:
        ops.append(op)
        ids.append(key)
        if op == "delete":
            rows.append(None)
            del state[key]
            live.remove(key)
        else:
            row = new_row(rnd, key, version)
            rows.append(row)
            if op == "insert":
                live.add(key)
            state[key] = row
    return to_table(ids, rows, ops), next_id + inserts_n


def checksums(state: dict[int, Row]) -> dict[str, int | str]:
    # Sums as decimal strings: they pass 2^53, which a JSON number in JavaScript cannot hold exactly.
    return {
        "rows": len(state),
        "idSum": str(sum(state)),
        "quantitySum": str(sum(r.quantity for r in state.values())),
        "updatedAtSum": str(sum(r.updated_at for r in state.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    out: Path = args.out
    (out / "rounds").mkdir(parents=True, exist_ok=True)
    rnd = random.Random(args.seed)

    base_state = {k: new_row(rnd, k, 0) for k in range(args.rows)}
    base_ids = list(range(args.rows))
    pq.write_table(to_table(base_ids, [base_state[k] for k in base_ids]), out / "base.parquet", compression="zstd")

    # The upsert benchmark: one batch of rows/10 changes on the base table.
    state = dict(base_state)
    changes, _ = change_batch(rnd, LiveKeys(range(args.rows)), state, args.rows // 10, args.rows, 1)
    pq.write_table(changes, out / "changes.parquet", compression="zstd")
    after_changes = checksums(state)

    # The scan benchmark: rounds of rows/100 changes, each on the result of the previous one.
    state = dict(base_state)
    live = LiveKeys(range(args.rows))
    next_id = args.rows
    for r in range(1, args.rounds + 1):
        batch, next_id = change_batch(rnd, live, state, args.rows // 100, next_id, r)
        pq.write_table(batch, out / "rounds" / f"round-{r:02d}.parquet", compression="zstd")
    expected = {
        "rows": args.rows,
        "rounds": args.rounds,
        "seed": args.seed,
        "base": checksums(base_state),
        "afterChanges": after_changes,
        "afterRounds": checksums(state),
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected))


if __name__ == "__main__":
    main()
