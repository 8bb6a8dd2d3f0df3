import { describe, expect, it } from 'vitest';
import { checkOnnxRuntime, inferenceProviderDetector } from '../../../client/doctor.js';

const ortWithCuda = {
  default: {
    listSupportedBackends: () => [
      { name: 'cpu', bundled: true },
      { name: 'cuda', bundled: false },
    ],
  },
};

describe('sluice doctor: requested vs active execution provider', () => {
  it('is ok and names both when auto falls back to the CPU', async () => {
    const c = await checkOnnxRuntime(
      () => Promise.resolve(ortWithCuda),
      () => Promise.resolve({ requested: 'auto', active: 'cpu', detail: 'CUDA-only session failed: no library' }),
    );
    expect(c.level).toBe('ok');
    expect(c.detail).toBe(
      'onnxruntime-node execution providers: cpu, cuda; requested auto, active cpu (CUDA-only session failed: no library)',
    );
  });

  it('fails with an install hint when cuda is requested but the CPU is what runs', async () => {
    const c = await checkOnnxRuntime(
      () => Promise.resolve(ortWithCuda),
      () => Promise.resolve({ requested: 'cuda', active: 'cpu', detail: 'CUDA-only session failed' }),
    );
    expect(c).toMatchObject({ level: 'fail', ok: false });
    expect(c.hint).toContain('--onnxruntime-node-install=cuda12');
  });

  it('is ok when cuda is requested and active', async () => {
    const c = await checkOnnxRuntime(
      () => Promise.resolve(ortWithCuda),
      () => Promise.resolve({ requested: 'cuda', active: 'cuda', detail: 'a CUDA-only session ran the probe model' }),
    );
    expect(c.level).toBe('ok');
    expect(c.detail).toContain('requested cuda, active cuda');
  });

  it("runs the engine's real probe on this machine", async () => {
    const d = await inferenceProviderDetector('cpu')();
    expect(d).toMatchObject({ requested: 'cpu', active: 'cpu' });
  });
});
