// A worker thread that encodes Parquet row groups (see encode-pool.ts). Plain JavaScript for the reason given in
// wasm-encode.js. Each message is { id, ipc, options }; the answer is { id, bytes } or { id, error }.
import { parentPort } from 'node:worker_threads';
import { encodeParquet } from './wasm-encode.js';

parentPort.on('message', (message) => {
  try {
    const bytes = encodeParquet(message.ipc, message.options);
    parentPort.postMessage({ id: message.id, bytes }, [bytes.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});

// Tells a pool that is warming up that the encoder (and its WebAssembly module) is loaded.
parentPort.postMessage({ ready: true });
