/**
 * The one place that imports `onnx-proto` (protobufjs static code generated from onnx.proto).
 * The package is CommonJS, so its namespace arrives as a default import; `export import` gives
 * the rest of the project `onnx` as both a value (`onnx.ModelProto.decode`) and a type
 * namespace (`onnx.ModelProto`), which `const { onnx } = onnxProto` alone cannot.
 */
import onnxProto from 'onnx-proto';

export import onnx = onnxProto.onnx;

declare global {
  /**
   * onnx-proto's declarations name protobufjs's `Long` as a global type that nothing declares;
   * with skipLibCheck it would silently be an error type, unchecked. This is its shape.
   */
  interface Long {
    readonly low: number;
    readonly high: number;
    readonly unsigned: boolean;
    toString(radix?: number): string;
  }
}

/** An int64 proto field as protobufjs hands it over: a number, or a `Long` when `long` is installed. */
export type Int64 = number | { readonly low: number; readonly high: number; readonly unsigned: boolean };
