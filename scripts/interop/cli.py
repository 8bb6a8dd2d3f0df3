"""Argument parsing, catalog URI translation and the JSON-out/exit-code contract shared by the interop scripts.

Every script prints exactly one JSON document on stdout and exits 0, or prints `<script>: error: <message>` as the
last line of stderr and exits 1 (2 for bad arguments, from argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class S3Options:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str


@dataclass(frozen=True)
class JdbcTarget:
    url: str
    user: str | None
    password: str | None


def add_s3_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("S3 (s3proxy or any S3 endpoint; path-style addressing)")
    group.add_argument("--s3-endpoint", help="e.g. http://127.0.0.1:9000")
    group.add_argument("--s3-key", help="access key id")
    group.add_argument("--s3-secret", help="secret access key")
    group.add_argument(
        "--s3-region", default="us-east-1", help="always passed on: pyiceberg otherwise asks AWS for the bucket region"
    )


def add_catalog_args(parser: argparse.ArgumentParser, *, warehouse_required: bool = False) -> None:
    group = parser.add_argument_group("catalog (Iceberg JDBC/SQL catalog tables in SQLite or PostgreSQL)")
    group.add_argument(
        "--catalog-uri",
        required=True,
        help="sqlite:////abs/catalog.db, postgresql+psycopg2://user[:pw]@host:port/db, postgres://… or jdbc:…",
    )
    group.add_argument("--catalog-name", required=True, help="the catalog_name column value shared by all engines")
    group.add_argument("--warehouse", required=warehouse_required, help="file:///abs/dir or s3://bucket/prefix")
    add_s3_args(parser)


def s3_options(args: argparse.Namespace) -> S3Options | None:
    given = [args.s3_endpoint, args.s3_key, args.s3_secret]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--s3-endpoint, --s3-key and --s3-secret must be given together")
    return S3Options(args.s3_endpoint, args.s3_key, args.s3_secret, args.s3_region)


def split_identifier(identifier: str) -> tuple[str, str]:
    """`ns.t` (or `a.b.t`) into (namespace, table); a bare name is refused because both catalogs need a namespace."""
    namespace, _, table = identifier.rpartition(".")
    if not namespace or not table:
        raise ValueError(f"table {identifier!r} has no namespace; pass it as <namespace>.<table>, e.g. db.orders")
    return namespace, table


def sqlalchemy_uri(uri: str) -> str:
    """The SQLAlchemy URI pyiceberg's SqlCatalog takes, from any accepted catalog URI form."""
    if uri.startswith("jdbc:sqlite:"):
        path = uri[len("jdbc:sqlite:") :]
        if path.startswith("file:"):
            path = path[len("file:") :]
        if not path.startswith("/"):
            raise ValueError(f"catalog URI {uri!r} must name an absolute SQLite path")
        return "sqlite:///" + path
    if uri.startswith("jdbc:postgresql:"):
        target = urlsplit(uri[len("jdbc:") :])
        query = parse_qs(target.query)
        user = (query.get("user") or [None])[0]
        password = (query.get("password") or [None])[0]
        auth = "" if not user else user + (f":{password}" if password else "") + "@"
        return f"postgresql+psycopg2://{auth}{target.netloc}{target.path}"
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix) :]
    if uri.startswith("postgresql+psycopg2://") or uri.startswith("sqlite:///"):
        return uri
    raise ValueError(
        f"catalog URI {uri!r} is not understood; use sqlite:////abs/catalog.db or postgresql+psycopg2://user@host/db"
    )


def jdbc_target(uri: str) -> JdbcTarget:
    """The JDBC URL and credentials for Iceberg's JdbcCatalog (Spark), from any accepted catalog URI form."""
    if uri.startswith("jdbc:"):
        if uri.startswith("jdbc:postgresql:"):
            query = parse_qs(urlsplit(uri[len("jdbc:") :]).query)
            return JdbcTarget(uri, (query.get("user") or [None])[0], (query.get("password") or [None])[0])
        return JdbcTarget(uri, None, None)
    sa = sqlalchemy_uri(uri)
    if sa.startswith("sqlite:///"):
        path = sa[len("sqlite:///") :]
        if not path.startswith("/"):
            raise ValueError(f"catalog URI {uri!r} must name an absolute SQLite path (sqlite:////abs/catalog.db)")
        return JdbcTarget("jdbc:sqlite:" + path, None, None)
    target = urlsplit(sa)
    host = target.hostname or "127.0.0.1"
    port = f":{target.port}" if target.port else ""
    user = unquote(target.username) if target.username else None
    password = unquote(target.password) if target.password else None
    return JdbcTarget(f"jdbc:postgresql://{host}{port}{target.path}", user, password)


def pyiceberg_catalog(args: argparse.Namespace, *, init_tables: bool):
    """pyiceberg's SqlCatalog on the catalog database; `init_tables` creates the catalog tables when missing."""
    from pyiceberg.catalog.sql import SqlCatalog

    props: dict[str, str] = {"uri": sqlalchemy_uri(args.catalog_uri), "init_catalog_tables": str(init_tables).lower()}
    if args.warehouse:
        props["warehouse"] = args.warehouse
    s3 = s3_options(args)
    if s3:
        props.update(
            {
                "s3.endpoint": s3.endpoint,
                "s3.access-key-id": s3.access_key_id,
                "s3.secret-access-key": s3.secret_access_key,
                "s3.region": s3.region,
            }
        )
    return SqlCatalog(args.catalog_name, **props)


def column_list(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def emit(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, allow_nan=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def run(prog: str, parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], Any]) -> None:
    """Parses arguments, runs `body`, prints its result as JSON; on error prints one clear line and exits 1."""
    args = parser.parse_args()
    try:
        result = body(args)
    except Exception as err:  # noqa: BLE001 - every failure becomes the one-line error contract
        if os.environ.get("SLUICE_INTEROP_DEBUG"):
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        sys.stderr.write(f"{prog}: error: {type(err).__name__}: {message}\n")
        sys.stderr.flush()
        sys.exit(1)
    emit(result)
