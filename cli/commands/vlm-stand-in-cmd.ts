import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Attributes } from '../../lib/collections/types.js';
import { startVlmStandIn } from '../../lib/collections/vlm-stand-in.js';

function rate(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`--${name} must be a number from 0 to 1, not "${value}"`);
  return n;
}

/**
 * Reads the truth file: `{ "<image sha256 hex>": { "<key>": "<value>", … }, … }`, or the synthetic catalog's truth
 * file (`{ byItem, byImageSha256 }`, lib/collections/synthetic.ts), whose `byImageSha256` part is that map.
 */
async function readTruth(path: string): Promise<Map<string, Attributes>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`--truth ${path} cannot be read as JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`--truth ${path} must be an object of image sha256 → attributes`);
  }
  const byImage = (parsed as { byImageSha256?: unknown }).byImageSha256;
  if (typeof byImage === 'object' && byImage !== null && !Array.isArray(byImage)) parsed = byImage;
  const truth = new Map<string, Attributes>();
  for (const [sha, attributes] of Object.entries(parsed as object)) {
    if (
      !/^[0-9a-f]{64}$/.test(sha) ||
      typeof attributes !== 'object' ||
      attributes === null ||
      !Object.values(attributes as object).every((v) => typeof v === 'string')
    ) {
      throw new Error(`--truth ${path}: entry ${JSON.stringify(sha)} is not "<sha256 hex>": {"key": "value"}`);
    }
    truth.set(sha, attributes as Attributes);
  }
  return truth;
}

export function registerVlmStandIn(program: Command): void {
  program
    .command('vlm-stand-in')
    .description(
      'run a STAND-IN for a remote VLM: an OpenAI-compatible chat-completions server that answers from a ground ' +
        'truth file, with seeded noise (for tests, benchmarks and demos; it does not look at images)',
    )
    .requiredOption('--truth <file>', 'JSON object: image sha256 (hex) → attributes, e.g. {"ab12…": {"color": "red"}}')
    .option('--port <port>', 'port to listen on', '8100')
    .option('--host <ip>', 'address to bind', '127.0.0.1')
    .option('--seed <n>', 'seed of the noise', '1')
    .option('--wrong-rate <r>', 'share of wrong answers (one attribute / a flipped yes-no)', '0')
    .option('--synonym-rate <r>', 'share of values answered as a synonym', '0')
    .option('--malformed-rate <r>', 'share of first replies that are not JSON', '0')
    .option('--server-error-rate <r>', 'share of attempts answered 503', '0')
    .option('--refusal-rate <r>', 'share of requests refused', '0')
    .option('--latency-ms <ms>', 'delay before each reply', '0')
    .option('--model <name>', 'answer 404 to any other model name (default: any)')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" (default: none)')
    .action(
      async (opts: {
        truth: string;
        port: string;
        host: string;
        seed: string;
        wrongRate: string;
        synonymRate: string;
        malformedRate: string;
        serverErrorRate: string;
        refusalRate: string;
        latencyMs: string;
        model?: string;
        apiKey?: string;
      }) => {
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new Error(`--port must be a port number, not "${opts.port}"`);
        }
        const latencyMs = Number(opts.latencyMs);
        if (!Number.isFinite(latencyMs) || latencyMs < 0)
          throw new Error(`--latency-ms must be ≥ 0, not "${opts.latencyMs}"`);
        const truth = await readTruth(opts.truth);
        const server = await startVlmStandIn({
          truth: (sha) => truth.get(sha),
          port,
          host: opts.host,
          seed: Number(opts.seed),
          wrongRate: rate('wrong-rate', opts.wrongRate),
          synonymRate: rate('synonym-rate', opts.synonymRate),
          malformedRate: rate('malformed-rate', opts.malformedRate),
          serverErrorRate: rate('server-error-rate', opts.serverErrorRate),
          refusalRate: rate('refusal-rate', opts.refusalRate),
          latencyMs,
          ...(opts.model !== undefined ? { model: opts.model } : {}),
          ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
        });
        console.log(`VLM stand-in (not a model: answers from ${truth.size} known images) at ${server.url}`);
        console.log(`  use it as the VLM endpoint: SLUICE_VLM_URL=${server.url} or "vlm": {"url": "${server.url}", …}`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        const stats = server.stats();
        console.log(
          `answered ${stats.requests} request(s): ${JSON.stringify(stats.byKind)} ${JSON.stringify(stats.byOutcome)}`,
        );
        await server.close();
      },
    );
}
