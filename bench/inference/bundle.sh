#!/usr/bin/env bash
# Bundles bench/inference/run.ts into ONE self-contained ESM file, bench/inference/dist/gpu-bench.mjs, for a GPU
# machine without this repository: only onnxruntime-node (with its onnxruntime-common dependency) must be installed
# where the file runs. sharp stays external and is never loaded (the benchmark embeds texts only).
#
#   bash bench/inference/bundle.sh
#   # on the GPU machine, next to a node_modules/ holding onnxruntime-node installed with CUDA:
#   node gpu-bench.mjs --provider cuda --models <dir of the generated models> --out <results dir>
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/inference/dist/gpu-bench.mjs
mkdir -p "$(dirname "$out")"
# CommonJS dependencies (protobufjs under onnx-proto) call require(); give the ESM bundle one.
node_modules/.bin/esbuild bench/inference/run.ts \
  --bundle --platform=node --target=node20 --format=esm \
  --external:onnxruntime-node --external:sharp \
  --banner:js="import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);" \
  --log-level=warning \
  --outfile="$out"
echo "wrote $out ($(du -h "$out" | cut -f1))"
