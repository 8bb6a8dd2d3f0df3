import { describe, expect, it } from 'vitest';
import { pollerTargets } from '../../client/doctor.js';

describe('doctor poller targets', () => {
  it('checks the cpu queue, the GPU queues and each dedicated CPU queue for workflow and activity pollers', () => {
    const targets = pollerTargets('base', ['gpu-a'], ['maintenance']).map((t) => `${t.queue} ${t.type}`);
    expect(targets).toEqual([
      'base workflow',
      'base activity',
      'base-gpu activity',
      'base-gpu@gpu-a activity',
      'base-maintenance workflow',
      'base-maintenance activity',
    ]);
    const hint = pollerTargets('base', [], ['maintenance']).at(-1)?.startHint;
    expect(hint).toContain('worker --pool cpu --queue maintenance');
  });
});
