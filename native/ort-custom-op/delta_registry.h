// The deltas the side-path op reads, by handle. The cache's decoded arrays are viewed, never
// copied: the binding keeps a reference to each array while its handle is registered, and the
// TypeScript side registers a delta right before the run that reads it (runs are synchronous on
// the thread that registered it), so a registered view always points at live memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../side-kernel/kernel.h"

namespace ort_custom_op {

struct TensorView {
  std::vector<int64_t> shape;
  uint64_t length = 0;        // product of shape
  const uint32_t* indices = nullptr;  // null: dense, values holds `length` values
  const float* values = nullptr;
  size_t nnz = 0;
  std::vector<float> dense;   // a sparse 1-D tensor (a bias) spread out once, for the kernel
  // A sparse weight the cache already holds grouped by column (indices null, values = by_column.values).
  bool grouped = false;
  side_kernel::ByColumn by_column{};
};

struct DeltaEntry {
  const void* owner = nullptr;  // the Node environment that registered it
  std::unordered_map<std::string, TensorView> tensors;
};

/** Handle 0 means "no delta" (the base model) and is never registered. */
uint64_t RegisterDelta(std::shared_ptr<const DeltaEntry> entry);
/** False when `handle` is unknown or belongs to another environment. */
bool ReleaseDelta(uint64_t handle, const void* owner);
/** Drops every entry of `owner` (its environment is ending). */
void ReleaseAllOf(const void* owner);
/** The entry, or null when the handle is not registered. */
std::shared_ptr<const DeltaEntry> FindDelta(uint64_t handle);

}  // namespace ort_custom_op
