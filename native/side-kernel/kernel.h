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
  const uint32_t* starts;  // outDim + 1
  const uint16_t* rows;    // nnz, each < inDim (so inDim <= 65536)
  const float* values;     // nnz
};

struct Job {
  uint32_t row_start;
  uint32_t row_count;
  // Sparse: indices + values (nnz of each). Dense: indices == nullptr, values holds inDim*outDim.
  // Sparse by column: `by_column` set, indices == nullptr, values == by_column->values.
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
