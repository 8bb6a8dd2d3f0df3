import { Connection, type ConnectionOptions } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
// @temporalio/proto is CommonJS and Node's ESM loader cannot see its named exports, so take the default export.
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_KEYS, cliTypeName } from '../schemas/search-attributes.js';
import { dedicatedCpuQueue, taskQueues } from '../schemas/task-queues.js';

const { temporal } = proto;
const IndexedValueType = temporal.api.enums.v1.IndexedValueType;
const TaskQueueType = temporal.api.enums.v1.TaskQueueType;

/**
 * `sluice doctor`: checks that the pieces a Sluice run needs are in place (the server, the namespace, the search
 * attributes, a poller on every queue, the inference runtime) and, for each one that is not, says what to do.
 */

/** How a check came out. `warn` is reported but does not fail `sluice doctor`. */
export type CheckLevel = 'ok' | 'warn' | 'fail';

/** The outcome of one check. */
export interface DoctorCheck {
  /** What was checked, e.g. `connection` or `pollers sluice (workflow)`. */
  name: string;
  level: CheckLevel;
  /** False only for `fail`: a warning does not make the check fail. */
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do about it; set when the level is not `ok`. */
  hint?: string;
}

function check(name: string, level: CheckLevel, detail: string, hint?: string): DoctorCheck {
  return hint === undefined
    ? { name, level, ok: level !== 'fail', detail }
    : { name, level, ok: level !== 'fail', detail, hint };
}

/** The messages of an error and its causes; gRPC errors keep the useful part in `cause`. */
function reasonOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause) {
    if (!parts.includes(e.message)) parts.push(e.message);
  }
  return parts.length > 0 ? parts.join(': ') : String(err);
}

/**
 * Connects and calls `getSystemInfo`. On success returns the open connection with the check; on failure the check's
 * hint names the address and what to look at.
 */
export async function checkConnection(
  connectionOptions: ConnectionOptions & { address: string },
  namespace: string,
  connectTimeout: Duration = '5s',
): Promise<{ check: DoctorCheck; connection?: Connection }> {
  const address = connectionOptions.address;
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...connectionOptions, connectTimeout });
    const info = await connection.workflowService.getSystemInfo({});
    const version = info.serverVersion ? `Temporal server ${info.serverVersion}` : 'Temporal server';
    return { check: check('connection', 'ok', `${version} answers at ${address}`), connection };
  } catch (err) {
    await connection?.close().catch(() => undefined);
    return {
      check: check(
        'connection',
        'fail',
        `cannot reach Temporal at ${address}: ${reasonOf(err)}`,
        `check that a Temporal server listens on ${address} (\`npm run sluice -- up\` starts a local one), that ` +
          `--address / TEMPORAL_ADDRESS / the temporal.toml profile point at it, and for a remote cluster the TLS ` +
          `or API-key settings (TEMPORAL_TLS*, TEMPORAL_API_KEY); namespace "${namespace}"`,
      ),
    };
  }
}

/** The namespace exists. */
export async function checkNamespace(connection: Connection, namespace: string): Promise<DoctorCheck> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return check('namespace', 'ok', `namespace "${namespace}" exists`);
  } catch (err) {
    return check(
      'namespace',
      'fail',
      `namespace "${namespace}" is not usable: ${reasonOf(err)}`,
      `create it (\`temporal operator namespace create --namespace ${namespace}\`), or pick another with ` +
        '--namespace / TEMPORAL_NAMESPACE / server.namespace in temporal-dev.yml',
    );
  }
}

/** Every key of `SEARCH_ATTRIBUTE_KEYS` is registered in the namespace with the type Sluice declares. */
export async function checkSearchAttributes(connection: Connection, namespace: string): Promise<DoctorCheck> {
  const name = 'search attributes';
  let custom: Record<string, number>;
  try {
    const response = await connection.operatorService.listSearchAttributes({ namespace });
    custom = response.customAttributes ?? {};
  } catch (err) {
    return check(
      name,
      'fail',
      `cannot list search attributes of "${namespace}": ${reasonOf(err)}`,
      'the operator API may be closed to this identity (Temporal Cloud: `tcld namespace search-attributes list`)',
    );
  }
  const missing: string[] = [];
  const wrongType: string[] = [];
  for (const key of SEARCH_ATTRIBUTE_KEYS) {
    const want = `INDEXED_VALUE_TYPE_${key.type}`;
    const have = custom[key.name];
    if (have === undefined || have === null) missing.push(`${key.name} (${cliTypeName(key.type)})`);
    else if (IndexedValueType[have] !== want) {
      wrongType.push(
        `${key.name} is ${String(IndexedValueType[have] ?? have).replace('INDEXED_VALUE_TYPE_', '')}, needs ${key.type}`,
      );
    }
  }
  if (missing.length === 0 && wrongType.length === 0) {
    return check(
      name,
      'ok',
      `all ${SEARCH_ATTRIBUTE_KEYS.length} registered: ${SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).join(', ')}`,
    );
  }
  const problems = [
    ...(missing.length > 0 ? [`missing ${missing.join(', ')}`] : []),
    ...(wrongType.length > 0 ? [`wrong type: ${wrongType.join('; ')}`] : []),
  ];
  return check(
    name,
    'fail',
    `namespace "${namespace}": ${problems.join('; ')}`,
    wrongType.length > 0
      ? 'remove or rename the attributes with the wrong type (`temporal operator search-attribute remove`), then run `npm run sluice -- setup`'
      : 'run `npm run sluice -- setup` to register them (the local dev server gets them from `sluice up`)',
  );
}

/** One queue and poller type that must have a worker, and how to start that worker. */
export interface PollerTarget {
  queue: string;
  type: 'workflow' | 'activity';
  /** The command that starts a worker polling it. */
  startHint: string;
}

/**
 * The queues a stack needs polled: the cpu queue (workflow and activity tasks), the shared GPU queue, and each
 * configured GPU host's own queue (activity tasks).
 */
export function pollerTargets(
  baseTaskQueue: string,
  gpuHosts: readonly string[],
  dedicatedQueues: readonly string[] = [],
): PollerTarget[] {
  const queues = taskQueues(baseTaskQueue);
  const cpuHint = 'start the cpu pool: `npm run sluice -- worker --pool cpu` (or `npm run sluice -- up` locally)';
  const anyGpu = gpuHosts[0] ?? '<host>';
  return [
    { queue: queues.cpu, type: 'workflow', startHint: cpuHint },
    { queue: queues.cpu, type: 'activity', startHint: cpuHint },
    {
      queue: queues.gpu,
      type: 'activity',
      startHint: `start a GPU host worker: \`npm run sluice -- worker --pool gpu --host ${anyGpu}\``,
    },
    ...gpuHosts.map((host): PollerTarget => ({
      queue: queues.gpuHost(host),
      type: 'activity',
      startHint: `start GPU host "${host}": \`npm run sluice -- worker --pool gpu --host ${host}\``,
    })),
    ...dedicatedQueues.flatMap((name): PollerTarget[] => {
      const startHint = `start its cpu workers: \`npm run sluice -- worker --pool cpu --queue ${name}\``;
      const queue = dedicatedCpuQueue(baseTaskQueue, name);
      return [
        { queue, type: 'workflow', startHint },
        { queue, type: 'activity', startHint },
      ];
    }),
  ];
}

function secondsOf(seconds: number | { toNumber(): number } | null | undefined): number | undefined {
  if (seconds === null || seconds === undefined) return undefined;
  return typeof seconds === 'number' ? seconds : seconds.toNumber();
}

/**
 * The queue has at least one poller of the given type. The server remembers pollers for a few minutes, so a worker
 * that stopped a moment ago still counts; the detail shows how long ago each one polled.
 */
export async function checkPollers(
  connection: Connection,
  namespace: string,
  target: PollerTarget,
  now: () => number = Date.now,
): Promise<DoctorCheck> {
  const name = `pollers ${target.queue} (${target.type})`;
  try {
    const response = await connection.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: target.queue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType:
        target.type === 'workflow' ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const pollers = response.pollers ?? [];
    if (pollers.length === 0) {
      return check(
        name,
        'fail',
        `no ${target.type} pollers on ${target.queue} in the last few minutes`,
        target.startHint,
      );
    }
    const who = pollers.map((p) => {
      const seconds = secondsOf(p.lastAccessTime?.seconds);
      const ago = seconds === undefined ? '' : ` (${Math.max(0, Math.round(now() / 1000 - seconds))}s ago)`;
      return `${p.identity || '?'}${ago}`;
    });
    return check(name, 'ok', `${pollers.length} poller${pollers.length === 1 ? '' : 's'}: ${who.join(', ')}`);
  } catch (err) {
    return check(name, 'fail', `cannot describe task queue ${target.queue}: ${reasonOf(err)}`, target.startHint);
  }
}

/** Loads a module by name; a parameter so that tests can stand in for packages that are or are not installed. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

// The specifier lives in a variable so that tsc does not need the (optional) package to be installed.
const ONNX_RUNTIME_PACKAGE = 'onnxruntime-node';
const importModule: ModuleImporter = (specifier) => import(specifier);

function isModuleNotFound(err: unknown, specifier: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    err instanceof Error &&
    err.message.includes(specifier)
  );
}

/**
 * Which ONNX Runtime execution providers this machine has. The package is optional until GPU inference lands, so
 * its absence is a warning, not a failure; a package that is installed but does not load is a failure.
 */
export async function checkOnnxRuntime(
  load: ModuleImporter = importModule,
  detect?: ProviderDetector,
): Promise<DoctorCheck> {
  const name = 'onnx runtime';
  let ort: Record<string, unknown>;
  try {
    ort = (await load(ONNX_RUNTIME_PACKAGE)) as Record<string, unknown>;
  } catch (err) {
    if (isModuleNotFound(err, ONNX_RUNTIME_PACKAGE)) {
      return check(
        name,
        'warn',
        `${ONNX_RUNTIME_PACKAGE} is not installed; GPU inference arrives with issue 6`,
        'nothing to do until then; CPU pipelines do not need it',
      );
    }
    return check(
      name,
      'fail',
      `${ONNX_RUNTIME_PACKAGE} is installed but does not load: ${reasonOf(err)}`,
      `reinstall it (\`npm rebuild ${ONNX_RUNTIME_PACKAGE}\`) and check that its native library matches this platform`,
    );
  }
  // An ES namespace of a CommonJS package puts its exports on `default` as well.
  const api = (typeof ort.listSupportedBackends === 'function' ? ort : (ort.default as Record<string, unknown>)) ?? {};
  const list = api.listSupportedBackends;
  if (typeof list !== 'function') {
    return check(
      name,
      'ok',
      `${ONNX_RUNTIME_PACKAGE} loads (this version cannot list its execution providers); only CPU is verified`,
    );
  }
  const backends = (list.call(api) as unknown[]).map((b) =>
    typeof b === 'string' ? b : String((b as { name?: unknown }).name ?? JSON.stringify(b)),
  );
  if (detect) {
    // Which provider a session really gets here: a CUDA-only session either runs or fails (lib/inference/providers.ts).
    const listed = `${ONNX_RUNTIME_PACKAGE} execution providers: ${backends.join(', ') || '(none)'}`;
    try {
      const d = await detect();
      const detail = `${listed}; requested ${d.requested}, active ${d.active} (${d.detail})`;
      if (d.requested === 'cuda' && d.active !== 'cuda') {
        return check(
          name,
          'fail',
          detail,
          'install the GPU build (`npm install onnxruntime-node --onnxruntime-node-install=cuda12`, docs/inference.md), ' +
            'check the CUDA 12 / cuDNN 9 libraries and the driver, or set SLUICE_INFERENCE_PROVIDER=cpu',
        );
      }
      return check(name, 'ok', detail);
    } catch (err) {
      return check(name, 'fail', `${listed}; the provider probe failed: ${reasonOf(err)}`, 'see docs/inference.md');
    }
  }
  return check(
    name,
    'ok',
    `${ONNX_RUNTIME_PACKAGE} execution providers: ${backends.join(', ') || '(none)'}; only CPU is verified`,
  );
}

/** What `sluice doctor` learns from the inference engine's provider probe. */
export interface ProviderDetectionSummary {
  requested: string;
  active: string;
  detail: string;
}

/** Runs the provider probe; a parameter so that tests can stand in for machines with or without CUDA. */
export type ProviderDetector = () => Promise<ProviderDetectionSummary>;

/** The engine's own probe for `requested`, imported lazily so that doctor runs where onnxruntime-node is absent. */
export function inferenceProviderDetector(requested: 'auto' | 'cpu' | 'cuda'): ProviderDetector {
  return async () => {
    const { detectProviders } = await import('../lib/inference/providers.js');
    return detectProviders(requested);
  };
}

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** Connection settings as `resolveConnection()` returns them (TLS, API key…); `address` is named in hints. */
  connectionOptions: ConnectionOptions & { address: string };
  namespace: string;
  /** The stack's base task queue; the cpu, GPU and GPU host queues derive from it. */
  baseTaskQueue: string;
  /** GPU host names from temporal-dev.yml (`workers.gpu.hosts[].name`); each needs a poller on its own queue. */
  gpuHosts: readonly string[];
  /** Dedicated CPU queue names (`workers.cpu.dedicated[].name`); each needs workflow and activity pollers. */
  dedicatedQueues?: readonly string[];
  /** How long to wait for the server. @default '5s' */
  connectTimeout?: Duration;
  /** Loads optional packages. @default a dynamic `import()` */
  importModule?: ModuleImporter;
  /**
   * The provider the GPU workers ask for (SLUICE_INFERENCE_PROVIDER); doctor probes which one a session really gets
   * on this machine. @default no probe: only the listed providers are shown
   */
  inferenceProvider?: 'auto' | 'cpu' | 'cuda';
}

/**
 * Runs every check and returns them in order: connection, namespace, search attributes, pollers, ONNX Runtime.
 * When the server cannot be reached, the checks that need it are left out (the connection check says why). Never
 * throws for a failed check; the caller decides the exit code from `ok`.
 */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const { check: connected, connection } = await checkConnection(
    opts.connectionOptions,
    opts.namespace,
    opts.connectTimeout,
  );
  checks.push(connected);
  if (connection) {
    try {
      const namespaceCheck = await checkNamespace(connection, opts.namespace);
      checks.push(namespaceCheck);
      if (namespaceCheck.ok) {
        checks.push(await checkSearchAttributes(connection, opts.namespace));
        for (const target of pollerTargets(opts.baseTaskQueue, opts.gpuHosts, opts.dedicatedQueues)) {
          checks.push(await checkPollers(connection, opts.namespace, target));
        }
      }
    } finally {
      await connection.close();
    }
  }
  checks.push(
    await checkOnnxRuntime(
      opts.importModule,
      opts.inferenceProvider ? inferenceProviderDetector(opts.inferenceProvider) : undefined,
    ),
  );
  return checks;
}
