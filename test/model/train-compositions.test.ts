import { describe, expect, it } from 'vitest';

import { checkGradients, type GradientCheckGraph } from '../../src/train/gradient-check.js';

describe('differentiable LayerNorm and GELU (ggml has no backward for NORM or GELU)', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: values match ggml_norm/ggml_gelu_erf and every gradient entry matches a central difference`, async () => {
      const report = await checkGradients('layer_norm_gelu', { seed, step: 1e-2 });
      // The erf approximation is within 1.5e-7; f32 adds a few ulps.
      expect(report.forwardError).toBeLessThan(1e-5);
      expect(report.tensors.map((t) => t.name)).toEqual(['x', 'ln.weight', 'ln.bias', 'dense.weight', 'dense.bias']);
      for (const t of report.tensors) {
        expect(t.maxAbsGradient, t.name).toBeGreaterThan(1e-3);
        // f32 central difference: 1 % of the tensor's largest gradient covers rounding and the O(step²) term.
        expect(t.maxAbsError, t.name).toBeLessThan(0.01 * t.maxAbsGradient);
      }
    });
  }

  it('rejects an unknown graph with INVALID_ARGUMENT', async () => {
    await expect(checkGradients('nope' as GradientCheckGraph)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
