/**
 * A first run before the worker reports ready, on GPU providers. The first run of a WebGPU
 * session compiles its shaders (8–32 s for the demo zoo's model on lavapipe on a shared 2-core
 * machine; later runs of other batch sizes reuse nearly all of them), and that cost belongs to start-up, which readiness
 * waits for, not to the first request, whose deadline it would eat.
 */
import type { ModelIO } from '../../onnx/io-signature.js';
import { allocate, elementCount, elementTypeOf, type NamedTensors } from '../tensors.js';

/** Zero inputs with every open dimension 1; null when an input has no declared rank or a type the engine cannot carry. */
export function warmUpInputs(io: ModelIO): NamedTensors | null {
  const inputs: Record<string, NamedTensors[string]> = {};
  for (const input of io.inputs) {
    const type = elementTypeOf(input.datatype);
    if (type === null || input.shape === null) return null;
    const dims = input.shape.map((d) => (d < 0 ? 1 : d));
    inputs[input.name] = { type, dims, data: allocate(type, elementCount(dims)) };
  }
  return inputs;
}
