import { describe, expect, it } from 'vitest';
import { readEnv } from '../../lib/config.js';
import { ERROR_TYPE_NAMES, ERROR_TYPES, isRetryable } from '../../schemas/error-types.js';
import { SEARCH_ATTRIBUTE_KEYS, SearchAttributes, cliTypeName } from '../../schemas/search-attributes.js';
import { TaskQueues, taskQueues } from '../../schemas/task-queues.js';
import { formatPath } from '../../schemas/validation.js';
import { readInputArgument } from '../../cli/input.js';
import { getPipeline, PIPELINE_NAMES, UnknownPipelineError } from '../../client/pipelines.js';

describe('task queues', () => {
  it('derive the GPU queues from one base name', () => {
    expect(TaskQueues.cpu).toBe('sluice');
    expect(TaskQueues.gpu).toBe('sluice-gpu');
    expect(TaskQueues.gpuHost('gpu-a')).toBe('sluice-gpu@gpu-a');
    expect(taskQueues('t1').gpuHost('h')).toBe('t1-gpu@h');
  });
  it('reject host names that would make ambiguous queue names', () => {
    expect(() => TaskQueues.gpuHost('a@b')).toThrow(/GPU host name "a@b" is invalid/);
    expect(() => TaskQueues.gpuHost('')).toThrow(/invalid/);
  });
});

describe('error types', () => {
  it('every type says whether it is retryable, and the known ones are classified as designed', () => {
    for (const name of ERROR_TYPE_NAMES) expect(typeof ERROR_TYPES[name].retryable).toBe('boolean');
    expect(isRetryable('InvalidInput')).toBe(false);
    expect(isRetryable('OutOfMemory')).toBe(false);
    expect(isRetryable('CommitConflict')).toBe(true);
    expect(isRetryable('HostUnavailable')).toBe(true);
  });
});

describe('search attributes', () => {
  it('are all Sluice-prefixed, unique, with CLI type names', () => {
    const names = SEARCH_ATTRIBUTE_KEYS.map((k) => k.name);
    expect(names.slice(0, 5)).toEqual([
      'SluicePipeline',
      'SluiceDataset',
      'SluiceModel',
      'SluiceGpuHost',
      'SluicePhase',
    ]);
    expect(new Set(names).size).toBe(names.length);
    for (const k of SEARCH_ATTRIBUTE_KEYS) {
      expect(k.name).toMatch(/^Sluice[A-Z][A-Za-z]+$/);
      expect(['Keyword', 'KeywordList', 'Int', 'Double', 'Bool', 'Datetime', 'Text']).toContain(cliTypeName(k.type));
    }
    expect(cliTypeName(SearchAttributes.pipeline.type)).toBe('Keyword');
  });
});

describe('environment', () => {
  it('reads defaults and overrides', () => {
    const env = readEnv({ SLUICE_TASK_QUEUE: 'q1', SLUICE_LOG_LEVEL: 'DEBUG', SLUICE_CODEC_KEY_ID: ' k1 ' });
    expect(env.taskQueueOverride).toBe('q1');
    expect(env.logLevel).toBe('debug');
    expect(env.codecKeyId).toBe('k1');
    expect(env.configPath).toMatch(/temporal-dev\.yml$/);
    expect(readEnv({}).taskQueueOverride).toBeUndefined();
  });
  it('reads S3 settings for an s3:// warehouse, and refuses half a credential pair', () => {
    expect(readEnv({}).s3).toEqual({ region: 'us-east-1' });
    expect(
      readEnv({
        SLUICE_S3_ENDPOINT: 'http://127.0.0.1:9000',
        SLUICE_S3_ACCESS_KEY_ID: 'k',
        SLUICE_S3_SECRET_ACCESS_KEY: 's',
      }).s3,
    ).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    });
    expect(() => readEnv({ SLUICE_S3_ACCESS_KEY_ID: 'k' })).toThrow(/SLUICE_S3_SECRET_ACCESS_KEY/);
  });
  it('rejects an unknown log level, naming the variable', () => {
    expect(() => readEnv({ SLUICE_LOG_LEVEL: 'loud' })).toThrow(/SLUICE_LOG_LEVEL="loud" is not a level/);
  });
});

describe('CLI input and pipelines', () => {
  it('parses inline JSON and explains bad JSON', () => {
    expect(readInputArgument('{"count": 3}')).toEqual({ count: 3 });
    expect(readInputArgument(undefined)).toEqual({});
    expect(() => readInputArgument('{count: 3}')).toThrow(/--input value is not valid JSON/);
  });
  it('an unknown pipeline lists the known ones', () => {
    expect(() => getPipeline('nope')).toThrow(UnknownPipelineError);
    try {
      getPipeline('nope');
    } catch (err) {
      for (const name of PIPELINE_NAMES) expect((err as Error).message).toContain(name);
    }
  });
  it('zod paths render the way users write them', () => {
    expect(formatPath(['workers', 'gpu', 'hosts', 1, 'slots'])).toBe('workers.gpu.hosts[1].slots');
    expect(formatPath([])).toBe('(root)');
  });
});
