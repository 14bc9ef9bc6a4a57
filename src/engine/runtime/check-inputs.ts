/** The engine's backstop check of a request's tensors against the model's inputs (the HTTP layer checks first). */
import { DS_ERR_INFER_BAD_INPUT } from '../../core/errors.js';
import type { ModelIO } from '../../onnx/io-signature.js';
import { elementCount, elementTypeOf, type NamedTensors } from '../tensors.js';

/** Inputs must match the model's signature exactly. */
export function assertInputsFit(io: ModelIO, request: NamedTensors): void {
  const expected = io.inputs;
  for (const input of expected) {
    const tensor = request[input.name];
    if (!tensor) throw new DS_ERR_INFER_BAD_INPUT(`missing input ${input.name}`);
    const type = elementTypeOf(input.datatype);
    if (tensor.type !== type) {
      throw new DS_ERR_INFER_BAD_INPUT(`input ${input.name} must be ${input.datatype}, got ${tensor.type}`);
    }
    const shape = input.shape;
    if (shape && (tensor.dims.length !== shape.length || shape.some((d, i) => d >= 0 && d !== tensor.dims[i]))) {
      throw new DS_ERR_INFER_BAD_INPUT(`input ${input.name} has shape [${tensor.dims}], the model takes [${shape}]`);
    }
    if (tensor.data.length !== elementCount(tensor.dims)) {
      throw new DS_ERR_INFER_BAD_INPUT(
        `input ${input.name} has ${tensor.data.length} values for shape [${tensor.dims}]`,
      );
    }
    if (tensor.dims[0] === 0) throw new DS_ERR_INFER_BAD_INPUT(`input ${input.name} has an empty batch`);
  }
  const unknown = Object.keys(request).find((name) => !expected.some((input) => input.name === name));
  if (unknown) throw new DS_ERR_INFER_BAD_INPUT(`unknown input ${unknown}`);
}
