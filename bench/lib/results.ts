import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../lib/config.js';

/** One benchmark figure, with its peer in the same run when the issue names one. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The peer's value in the same run; null when the figure is a baseline with no named peer. */
  peer: { name: string; value: number } | null;
  /** value / peer value (or peer / value for "lower is better" figures, as `ratioMeaning` says); null without a peer. */
  ratio: number | null;
  ratioMeaning?: string;
  /** The goal from the issue, in words; null when the issue sets none. */
  goal: string | null;
}

/** The machine the run used, recorded with every result file. */
export function machineInfo() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
}

/** Writes `bench/results/<name>.json`. */
export function writeResults(name: string, command: string, figures: Figure[], notes: string[] = []): string {
  const dir = path.join(REPO_ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { benchmark: name, date: new Date().toISOString(), command, machine: machineInfo(), figures, notes },
      null,
      2,
    ) + '\n',
  );
  return file;
}

/** The q-quantile (0..1) of a sample, by nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The median of a sample. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}
