import * as ort from 'onnxruntime-node';
import { InferenceError } from './errors.js';
import { GraphBuilder } from './onnx-graph.js';

/** An execution provider the pool can run a model on. */
export type ProviderName = 'cpu' | 'cuda';

/** What the caller asks for; `auto` takes CUDA when a session can be created on it, else the CPU. */
export type ProviderRequest = 'auto' | ProviderName;

/** Session settings shared by every model of a pool. */
export interface SessionSettings {
  /** Threads inside one operator (ONNX Runtime's intra-op pool). @default 0: ONNX Runtime's choice (one per core) */
  intraOpThreads?: number;
  /** Threads across independent operators. @default 0: ONNX Runtime's choice */
  interOpThreads?: number;
}

/** The answer of {@link detectProviders}. */
export interface ProviderDetection {
  requested: ProviderRequest;
  /** The provider a session was really created on. */
  active: ProviderName;
  cudaAvailable: boolean;
  /** How this was decided, with the CUDA error when there was one. */
  detail: string;
}

function sessionOptions(provider: ProviderName, settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    // Only the provider asked for: ONNX Runtime then fails loudly when it cannot be loaded, instead of quietly
    // running every node on the CPU provider that it would otherwise append.
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(settings.intraOpThreads ? { intraOpNumThreads: settings.intraOpThreads } : {}),
    ...(settings.interOpThreads ? { interOpNumThreads: settings.interOpThreads } : {}),
  };
}

/** Whether this onnxruntime-node build lists CUDA at all (a CPU-only install lists it as not bundled). */
function cudaListed(): boolean {
  try {
    return ort.listSupportedBackends().some((b) => b.name === 'cuda');
  } catch {
    return false;
  }
}

/** The message of an error and its causes. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

/** Set once the CUDA provider library failed to load in this process. */
let cudaLoadFailure: unknown;

/**
 * Creates a session on the requested provider. `cuda` creates it with the CUDA provider ONLY, so that a missing
 * CUDA library or device is an error (`provider-unavailable`) rather than a silent CPU session; `auto` tries CUDA
 * the same way and falls back to the CPU, recording why. Returns the provider the session really runs on.
 */
export async function createSessionOn(
  model: string | Uint8Array,
  request: ProviderRequest,
  settings: SessionSettings,
): Promise<{ session: ort.InferenceSession; provider: ProviderName; detail: string }> {
  const create = (provider: ProviderName) =>
    typeof model === 'string'
      ? ort.InferenceSession.create(model, sessionOptions(provider, settings))
      : ort.InferenceSession.create(model, sessionOptions(provider, settings));
  if (request === 'cpu') return { session: await create('cpu'), provider: 'cpu', detail: 'CPU requested' };
  let cudaError: unknown = cudaLoadFailure;
  if (cudaError === undefined && cudaListed()) {
    try {
      return { session: await create('cuda'), provider: 'cuda', detail: 'session created with the CUDA provider only' };
    } catch (err) {
      cudaError = err;
      // The provider library cannot appear later in this process: remember, so that the next model of an `auto`
      // pool goes straight to the CPU instead of logging the same load error again.
      if (/Failed to load (shared )?library/i.test(reason(err))) cudaLoadFailure = err;
    }
  } else if (cudaError === undefined) {
    cudaError = new Error('this onnxruntime-node build does not list a CUDA backend');
  }
  if (request === 'cuda') {
    throw new InferenceError(
      'provider-unavailable',
      `the CUDA execution provider cannot create a session here: ${reason(cudaError)}; install the GPU build ` +
        '(`npm install onnxruntime-node --onnxruntime-node-install=cuda12`, see docs/inference.md) and check the ' +
        'CUDA 12 / cuDNN 9 libraries and the driver, or run this worker with SLUICE_INFERENCE_PROVIDER=cpu',
      { cause: cudaError },
    );
  }
  return {
    session: await create('cpu'),
    provider: 'cpu',
    detail: `auto: CUDA not usable (${reason(cudaError)}), fell back to the CPU`,
  };
}

let probeModel: Uint8Array | undefined;

/** A one-node model (y = x + 1) that every provider can run; built in memory, so detection needs no files. */
function providerProbeModel(): Uint8Array {
  if (!probeModel) {
    const g = new GraphBuilder('sluice-provider-probe');
    const x = g.input('x', 'float', [1, 4]);
    g.output(g.op('Add', [x, g.floats([1, 1, 1, 1], [1, 4])]), 'y', 'float', [1, 4]);
    probeModel = g.toBytes('Sluice execution-provider probe');
  }
  return probeModel;
}

/**
 * Finds the provider a pool asking for `requested` would really get: it creates a session for a tiny in-memory
 * model with ONLY that provider (CUDA cannot then fall back quietly) and runs it once, checking the answer.
 */
export async function detectProviders(
  requested: ProviderRequest = 'auto',
  settings: SessionSettings = {},
): Promise<ProviderDetection> {
  let cudaAvailable = false;
  let cudaDetail: string;
  if (cudaLoadFailure !== undefined) {
    cudaDetail = `CUDA-only session failed: ${reason(cudaLoadFailure)}`;
  } else if (!cudaListed()) {
    cudaDetail = 'onnxruntime-node does not list a CUDA backend';
  } else {
    try {
      const { session } = await createSessionOn(providerProbeModel(), 'cuda', settings);
      try {
        const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([0, 1, 2, 3]), [1, 4]) });
        const y = out.y?.data as Float32Array | undefined;
        cudaAvailable = y !== undefined && y[3] === 4;
        cudaDetail = cudaAvailable ? 'a CUDA-only session ran the probe model' : 'the CUDA probe gave a wrong answer';
      } finally {
        await session.release();
      }
    } catch (err) {
      cudaDetail = `CUDA-only session failed: ${reason(err instanceof InferenceError ? err.cause : err)}`;
    }
  }
  const active: ProviderName = requested === 'cpu' ? 'cpu' : cudaAvailable ? 'cuda' : 'cpu';
  const versions = `onnxruntime-node ${ort.env.versions.node ?? '?'}`;
  return { requested, active, cudaAvailable, detail: `${versions}; ${cudaDetail}` };
}
