// The side-path kernel's compute, free of Node: see src/engine/runtime/mixed/kernel/side-kernel.ts for the
// contract. Every path computes each output element (t, j) as ((0 + p_1) + p_2) + ... + bias with
// p_k = v_k * x[t, i_k] in float32 over the nonzeros of column j in the delta's index order, never
// fused (-ffp-contract=off, no FMA target), so all paths and the JS fallback give the same bits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace side_kernel {

enum class Path { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

/** Paths this CPU can run, best first. */
std::vector<Path> SupportedPaths();
const char* PathName(Path path);

/**
 * A sparse delta already grouped by output column (see GroupByColumn): column j's nonzeros are
 * rows[starts[j]..starts[j+1]) with values at the same positions, rows ascending. The one-session
 * op's resident form, made once per delta load instead of once per call.
 */
struct ByColumn {
  const uint32_t* starts;      // outDim + 1
  const uint16_t* rows;        // nnz, each < inDim (so inDim <= 65536); or null when row_gaps holds them
  const float* values;         // nnz, or null when values_f16 holds them
  const uint16_t* values_f16;  // nnz finite fp16 bit patterns (every value exactly an fp16), or null
  // nnz gaps, each >= 1: a column's first row is its first gap - 1, each next row the previous + its
  // gap (one byte per entry where every gap fits one), or null.
  const uint8_t* row_gaps = nullptr;
  // Or int4 codes as the file keeps them (see PackI4ByColumn): rows, values and row_gaps null.
  const uint8_t* packed_i4 = nullptr;  // starts[outDim] entries
  const uint16_t* scales = nullptr;    // finite fp16 bit patterns, one per group
  const uint32_t* group_ends = nullptr;  // group g covers entries [group_ends[g - 1], group_ends[g]), never decreasing
  uint32_t groups = 0;
};

/**
 * The one-session resident form of an int4 delta whose codes run column by column (format v2
 * `order: column`): one byte per entry, the high nibble its signed code, the low nibble its row gap
 * - 1 (a column's first row is its gap - 1, each next the previous + its gap). Entries of code 0
 * are left out (they add zero); a byte of code 0 is a bridge instead: 16 x (nibble + 1) rows,
 * adding +-0 to a sum that starts at +0, which changes no bit (for finite x). Group g's scale
 * applies to entries [group_ends[g - 1], group_ends[g]) (0 for g = 0), bridges included; a group
 * may be empty.
 */
struct PackedI4 {
  std::vector<uint32_t> starts;      // outDim + 1
  std::vector<uint8_t> entries;
  std::vector<uint32_t> group_ends;  // one per group
};

/**
 * Packs a [in_dim, out_dim] weight's kept entries listed column by column: `positions` j * in_dim + i,
 * strictly increasing, each < in_dim * out_dim (format v2 `order: column`), with their I4 `codes`
 * (two per byte, even entry low) in the same order, in groups of `group`.
 */
PackedI4 PackI4ByColumn(const uint32_t* positions, size_t nnz, const uint8_t* codes, uint32_t group, uint32_t in_dim,
                        uint32_t out_dim);

/**
 * Rows grouped by column (starts[out_dim + 1], rows ascending within a column) as gaps: true when
 * every gap fits a byte (then `gaps` holds them), false otherwise (`gaps` partly written).
 */
bool ToRowGaps(const uint32_t* starts, uint32_t out_dim, const uint16_t* rows, uint8_t* gaps);

/**
 * A finite fp16 bit pattern as a float, exactly. Integer arithmetic for normal numbers and a
 * normal-range float product for subnormals, so it holds under ORT's flush-to-zero modes too.
 */
inline float HalfToFloat(uint16_t h) {
  const uint32_t magnitude = h & 0x7fffu;
  float f;
  if (magnitude >= 0x400u) {
    const uint32_t bits = (static_cast<uint32_t>(h & 0x8000u) << 16) | ((magnitude << 13) + (112u << 23));
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
  }
  f = static_cast<float>(magnitude) * 0x1p-24f;
  return (h & 0x8000u) ? -f : f;
}

/**
 * Writes each value's fp16 bit pattern to `halves` and returns true when every value is finite and
 * exactly an fp16 (HalfToFloat gives it back bit for bit); false, with `halves` partly written, otherwise.
 */
bool ToExactHalves(const float* values, size_t n, uint16_t* halves);

struct Job {
  uint32_t row_start;
  uint32_t row_count;
  // Sparse: indices + values (nnz of each). Dense: indices == nullptr, values holds inDim*outDim.
  // Sparse by column: `by_column` set, indices == nullptr, values == by_column->values (null for fp16).
  // No weight delta: values == nullptr and by_column == nullptr.
  const uint32_t* indices;
  const float* values;
  size_t nnz;
  const float* bias;  // outDim values or nullptr
  const ByColumn* by_column = nullptr;
};

/**
 * Regroups a sparse delta of a [in_dim, out_dim] weight (flat row-major indices, each < in_dim *
 * out_dim, strictly increasing) by column: starts[out_dim + 1], rows[nnz] (in_dim <= 65536) and
 * values[nnz]. Within a column the rows keep the index order, so sums over them are the same.
 */
void GroupByColumn16(const uint32_t* indices, const float* values, size_t nnz, uint32_t out_dim, uint32_t* starts,
                     uint16_t* rows, float* grouped_values);

/** One job's rows [token_start, token_start + token_count) relative to its row_start. */
struct Task {
  const Job* job;
  uint32_t token_start;
  uint32_t token_count;
  double cost;
};

struct Call {
  const float* x;
  uint32_t in_dim;
  float* out;
  uint32_t out_dim;
  Path path;
  // false: out = x·Δ + bias (the segment pipeline's D). true: out += x·Δ + bias (the custom op
  // adds the side path to the base result in place; rows of a job without deltas stay as they are).
  bool accumulate = false;
};

/** One thread's working memory, sized by Reserve() before the threads start. */
struct Scratch {
  std::vector<float> floats;     // XT [inDim x block], DT [16 x block], values by column
  std::vector<uint32_t> uints;   // column starts [outDim + 1], rows by column
  /** Grows (may throw std::bad_alloc) to what RunTask needs for any of `tasks`. */
  void Reserve(uint32_t in_dim, uint32_t out_dim, const std::vector<Task>& tasks);
};

/** Computes one task's rows of out. Never allocates. */
void RunTask(const Call& call, const Task& task, Scratch& scratch);

/**
 * Splits jobs into tasks for `threads` threads: whole jobs when there are enough of them, else
 * token ranges of the costliest jobs. Sorted costliest first.
 */
std::vector<Task> PlanTasks(const std::vector<Job>& jobs, uint32_t in_dim, uint32_t out_dim, uint32_t threads);

}  // namespace side_kernel
