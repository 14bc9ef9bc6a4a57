// The side-path operator, domain "ai.deltaserve", op "SideAdd" (version 1):
//   Y = SideAdd(Y0, X, item_deltas)   attributes: weight (string), bias (string, may be empty)
// Y0 is a patched linear's base result (X·W + b, after the bias Add, so ORT keeps its
// MatMul+Add fusions); X its input; item_deltas int64 [items] the delta handle of each batch item
// (0: the base). For item k's rows, Y = Y0 + X·ΔW + Δb with ΔW, Δb the tensors named `weight`
// and `bias` in that handle's delta (absent ones add nothing). Y reuses Y0's buffer (GetAliasMap).
// The work runs on ORT's intra-op pool (KernelContext_ParallelFor); every failure is a status.
#pragma once
#include <onnxruntime_c_api.h>

namespace ort_custom_op {

constexpr const char* kDomain = "ai.deltaserve";
constexpr const char* kOpName = "SideAdd";

/** A new op definition for one session; `threads` is the session's intra-op thread count (≥ 1). */
OrtCustomOp* NewSideOp(int threads);
void DeleteSideOp(OrtCustomOp* op);

}  // namespace ort_custom_op
