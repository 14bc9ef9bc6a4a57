#include "kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace side_kernel {
namespace {

// Tokens per block: XT [inDim x block] stays in L2 while a column's nonzeros gather from it, and
// one register tile (8 vectors of AVX2) covers the block, so each column's nonzeros are walked
// once per block. 64 was 5-10 % faster than 128 on BERT-shaped linears in a one-off comparison on
// a noisy machine (not kept as a benchmark); it changes no output bit.
constexpr uint32_t kTokenBlock = 64;
// Columns per step of the transposes and the sums: a cache line of a row of x or out.
constexpr uint32_t kColumnBlock = 16;

#define SK_INLINE inline __attribute__((always_inline))

// The delta's nonzeros grouped by output column j (a stable counting sort of the flat indices,
// so within a column they keep the index order): column j's are rows[starts[j]..starts[j+1]).
template <typename Row, typename Value = float>
struct ColumnsOf {
  const uint32_t* starts;
  const Row* rows;
  const Value* values;
};
using Columns = ColumnsOf<uint32_t>;

// Rows of ColumnsOf<PackedI4Entry, uint16_t>: ByColumn::packed_i4's bytes (values: its scales).
struct PackedI4Entry {
  uint8_t byte;
};

SK_INLINE float ValueOf(float v) { return v; }
SK_INLINE float ValueOf(uint16_t half) { return HalfToFloat(half); }

SK_INLINE bool HasWeightDelta(const Job& job) { return job.values != nullptr || job.by_column != nullptr; }

// The hot loop, written once and inlined into one function per instruction set (the caller's
// target attribute applies after inlining), with GCC's generic vectors so that each set gets its
// own register width. For each column j and each chunk of tokens, R vectors of sums stay in
// registers while the column's nonzeros add v * XT[i, chunk]: no load or store of partial sums
// per nonzero. Widths differ per set, but every sum is the same sequence of float32 adds, so
// the bits do not.
typedef float F4 __attribute__((vector_size(16)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F16 __attribute__((vector_size(64)));

template <typename V, int R, bool kDense, typename Row, typename Value>
SK_INLINE void ColumnChunk(const Job& job, const ColumnsOf<Row, Value>& columns, uint32_t in_dim, uint32_t out_dim, uint32_t j,
                           const float* __restrict xt, float* __restrict dt, uint32_t n, uint32_t t0) {
  constexpr uint32_t L = sizeof(V) / sizeof(float);
  V acc[R];
  for (int r = 0; r < R; ++r) acc[r] = V{} * 0.0f;
  auto add = [&](uint32_t i, float v) {
    const float* x = xt + static_cast<size_t>(i) * n + t0;
    for (int r = 0; r < R; ++r) {
      V xv;
      std::memcpy(&xv, x + r * L, sizeof(V));
      acc[r] += xv * v;
    }
  };
  if (kDense) {
    for (uint32_t i = 0; i < in_dim; ++i) add(i, job.values[static_cast<size_t>(i) * out_dim + j]);
  } else if constexpr (std::is_same_v<Row, PackedI4Entry>) {
    // Codes times their group's scale: the same float32 product the decoder makes, exactly. An
    // entry of code 0 is a bridge of 16 x (nibble + 1) rows that adds +-0 (no bit of a sum changes).
    uint32_t k = columns.starts[j];
    const uint32_t end = columns.starts[j + 1];
    if (k < end) {
      const ByColumn& g = *job.by_column;
      uint32_t group = static_cast<uint32_t>(std::upper_bound(g.group_ends, g.group_ends + g.groups, k) - g.group_ends);
      uint32_t group_end = g.group_ends[group];
      float scale = HalfToFloat(columns.values[group]);
      uint32_t row = ~0u;
      for (; k < end; ++k) {
        if (k == group_end) {
          while (g.group_ends[++group] == k) {
          }
          group_end = g.group_ends[group];
          scale = HalfToFloat(columns.values[group]);
        }
        const uint8_t byte = columns.rows[k].byte;
        const int32_t code = static_cast<int8_t>(byte) >> 4;
        row += ((byte & 15u) + 1u) << ((code == 0) << 2);
        add(row, static_cast<float>(code) * scale);
      }
    }
  } else if constexpr (std::is_same_v<Row, uint8_t>) {
    // Row gaps: the same rows in the same order, one byte each.
    uint32_t row = ~0u;
    for (uint32_t k = columns.starts[j], end = columns.starts[j + 1]; k < end; ++k) {
      row += columns.rows[k];
      add(row, ValueOf(columns.values[k]));
    }
  } else {
    for (uint32_t k = columns.starts[j], end = columns.starts[j + 1]; k < end; ++k)
      add(columns.rows[k], ValueOf(columns.values[k]));
  }
  std::memcpy(dt + t0, acc, sizeof(acc));
}

template <typename V, int R, bool kDense, typename Row, typename Value>
SK_INLINE void AccumulateColumns(const Job& job, const ColumnsOf<Row, Value>& columns, uint32_t in_dim, uint32_t out_dim,
                                 uint32_t j_begin, uint32_t j_end, const float* xt, float* dt_block, uint32_t n) {
  constexpr uint32_t C = R * sizeof(V) / sizeof(float);
  for (uint32_t j = j_begin; j < j_end; ++j) {
    float* dt = dt_block + static_cast<size_t>(j - j_begin) * n;
    uint32_t t0 = 0;
    for (; t0 + C <= n; t0 += C) ColumnChunk<V, R, kDense>(job, columns, in_dim, out_dim, j, xt, dt, n, t0);
    for (; t0 + 4 <= n; t0 += 4) ColumnChunk<F4, 1, kDense>(job, columns, in_dim, out_dim, j, xt, dt, n, t0);
    for (; t0 < n; ++t0) ColumnChunk<float, 1, kDense>(job, columns, in_dim, out_dim, j, xt, dt, n, t0);
  }
}

// One instantiation per resident form: rows as u16 or byte gaps, values as f32 or fp16.
template <typename V, typename Row, typename Value>
SK_INLINE void AccumulateGrouped(const Job& job, const uint32_t* starts, const Row* rows, const Value* values,
                                 uint32_t in_dim, uint32_t out_dim, uint32_t j_begin, uint32_t j_end, const float* xt,
                                 float* dt, uint32_t n) {
  const ColumnsOf<Row, Value> grouped{starts, rows, values};
  AccumulateColumns<V, 8, false>(job, grouped, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}

template <typename V, typename Row>
SK_INLINE void AccumulateRows(const Job& job, const ByColumn& g, const Row* rows, uint32_t in_dim, uint32_t out_dim,
                              uint32_t j_begin, uint32_t j_end, const float* xt, float* dt, uint32_t n) {
  if (g.values_f16 != nullptr)
    AccumulateGrouped<V>(job, g.starts, rows, g.values_f16, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  else
    AccumulateGrouped<V>(job, g.starts, rows, g.values, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}

template <typename V>
SK_INLINE void AccumulateByColumn(const Job& job, const ByColumn& g, uint32_t in_dim, uint32_t out_dim,
                                  uint32_t j_begin, uint32_t j_end, const float* xt, float* dt, uint32_t n) {
  if (g.packed_i4 != nullptr)
    AccumulateGrouped<V>(job, g.starts, reinterpret_cast<const PackedI4Entry*>(g.packed_i4), g.scales, in_dim, out_dim,
                         j_begin, j_end, xt, dt, n);
  else if (g.row_gaps != nullptr)
    AccumulateRows<V>(job, g, g.row_gaps, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  else
    AccumulateRows<V>(job, g, g.rows, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}

template <typename V>
SK_INLINE void AccumulateBody(const Job& job, const Columns& columns, uint32_t in_dim, uint32_t out_dim,
                              uint32_t j_begin, uint32_t j_end, const float* xt, float* dt, uint32_t n) {
  // 8 registers of sums: enough independent adds to hide their latency.
  if (job.by_column != nullptr) {
    AccumulateByColumn<V>(job, *job.by_column, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  } else if (job.indices == nullptr) {
    AccumulateColumns<V, 8, true>(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  } else {
    AccumulateColumns<V, 8, false>(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  }
}

#define SK_ACCUMULATE_ARGS                                                                              \
  const Job &job, const Columns &columns, uint32_t in_dim, uint32_t out_dim, uint32_t j_begin, uint32_t j_end, \
      const float *xt, float *dt, uint32_t n

void AccumulateBaseline(SK_ACCUMULATE_ARGS) {
  AccumulateBody<F4>(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}

#if defined(__x86_64__) || defined(__i386__)
#define SK_X86 1
__attribute__((target("avx2"))) void AccumulateAvx2(SK_ACCUMULATE_ARGS) {
  AccumulateBody<F8>(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}
__attribute__((target("avx512f,prefer-vector-width=512"))) void AccumulateAvx512(SK_ACCUMULATE_ARGS) {
  AccumulateBody<F16>(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}
#endif

// DT[j - j_begin, 0:n] for columns [j_begin, j_end): the sums of x · Δ, without the bias.
void Accumulate(Path path, SK_ACCUMULATE_ARGS) {
#ifdef SK_X86
  if (path == Path::kAvx512) return AccumulateAvx512(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
  if (path == Path::kAvx2) return AccumulateAvx2(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
#endif
  AccumulateBaseline(job, columns, in_dim, out_dim, j_begin, j_end, xt, dt, n);
}

typedef int I4 __attribute__((vector_size(16)));

// dst[c * ds + r] = src[r * ss + c] (+ add[r]) for a 4 x 4 block, in registers: strided scalar
// copies would touch a cache line per element, and rows of x and out share L1 sets.
SK_INLINE void Transpose4(const float* src, size_t ss, float* dst, size_t ds, const float* add, bool accumulate) {
  F4 r0, r1, r2, r3;
  std::memcpy(&r0, src, sizeof(F4));
  std::memcpy(&r1, src + ss, sizeof(F4));
  std::memcpy(&r2, src + 2 * ss, sizeof(F4));
  std::memcpy(&r3, src + 3 * ss, sizeof(F4));
  const F4 t0 = __builtin_shuffle(r0, r1, I4{0, 4, 1, 5});
  const F4 t1 = __builtin_shuffle(r0, r1, I4{2, 6, 3, 7});
  const F4 t2 = __builtin_shuffle(r2, r3, I4{0, 4, 1, 5});
  const F4 t3 = __builtin_shuffle(r2, r3, I4{2, 6, 3, 7});
  F4 o[4] = {__builtin_shuffle(t0, t2, I4{0, 1, 4, 5}), __builtin_shuffle(t0, t2, I4{2, 3, 6, 7}),
             __builtin_shuffle(t1, t3, I4{0, 1, 4, 5}), __builtin_shuffle(t1, t3, I4{2, 3, 6, 7})};
  if (add != nullptr) {
    F4 a;
    std::memcpy(&a, add, sizeof(F4));
    for (int q = 0; q < 4; ++q) o[q] += a;
  }
  if (accumulate) {
    for (int q = 0; q < 4; ++q) {
      F4 d;
      std::memcpy(&d, dst + q * ds, sizeof(F4));
      o[q] = d + o[q];
    }
  }
  for (int q = 0; q < 4; ++q) std::memcpy(dst + q * ds, &o[q], sizeof(F4));
}

// dst[c * ds + r] = src[r * ss + c] (+ add[r]) for r < rows, c < cols (dst += that when accumulating). Blocks of 4 x 4 walk
// along the side whose rows are far apart in memory, so each of its cache lines is finished
// before the next (rows 12 KiB apart share an L1 set: leaving lines half-done thrashes it).
template <bool kAlongSrcRows>
void Transpose(const float* src, size_t ss, uint32_t rows, uint32_t cols, float* dst, size_t ds, const float* add,
               bool accumulate = false) {
  auto element = [&](uint32_t r, uint32_t c) {
    const float v = add ? src[r * ss + c] + add[r] : src[r * ss + c];
    dst[c * ds + r] = accumulate ? dst[c * ds + r] + v : v;
  };
  const uint32_t rows4 = rows & ~3u, cols4 = cols & ~3u;
  if (kAlongSrcRows) {
    for (uint32_t r = 0; r < rows4; r += 4)
      for (uint32_t c = 0; c < cols4; c += 4) Transpose4(src + r * ss + c, ss, dst + c * ds + r, ds, add ? add + r : nullptr, accumulate);
  } else {
    for (uint32_t c = 0; c < cols4; c += 4)
      for (uint32_t r = 0; r < rows4; r += 4) Transpose4(src + r * ss + c, ss, dst + c * ds + r, ds, add ? add + r : nullptr, accumulate);
  }
  for (uint32_t r = 0; r < rows4; ++r)
    for (uint32_t c = cols4; c < cols; ++c) element(r, c);
  for (uint32_t r = rows4; r < rows; ++r)
    for (uint32_t c = 0; c < cols; ++c) element(r, c);
}

// Groups nonzeros by column: starts[out_dim + 1], then each nonzero's row and value at its
// column's next slot (a stable counting sort).
template <typename Row>
void Group(const uint32_t* indices, const float* in_values, size_t nnz, uint32_t out_dim, uint32_t* starts, Row* rows,
           float* values) {
  std::memset(starts, 0, sizeof(uint32_t) * (out_dim + 1));
  // i = idx / out_dim through a double multiply, exact up to one step that the branch fixes:
  // an integer division per nonzero would cost more than the rest of this loop.
  const double inv = 1.0 / out_dim;
  auto split = [&](uint32_t idx, uint32_t& i, uint32_t& j) {
    int64_t ii = static_cast<int64_t>(idx * inv);
    int64_t jj = static_cast<int64_t>(idx) - ii * out_dim;
    if (jj < 0) {
      --ii;
      jj += out_dim;
    } else if (jj >= out_dim) {
      ++ii;
      jj -= out_dim;
    }
    i = static_cast<uint32_t>(ii);
    j = static_cast<uint32_t>(jj);
  };
  for (size_t k = 0; k < nnz; ++k) {
    uint32_t i, j;
    split(indices[k], i, j);
    ++starts[j + 1];
  }
  for (uint32_t j = 0; j < out_dim; ++j) starts[j + 1] += starts[j];
  // Place each nonzero at its column's next free slot, counting from the column's end backwards
  // would reverse them; so fill forwards with a cursor per column (reusing `starts` shifted).
  for (size_t k = 0; k < nnz; ++k) {
    uint32_t i, j;
    split(indices[k], i, j);
    const uint32_t slot = starts[j]++;
    rows[slot] = static_cast<Row>(i);
    values[slot] = in_values[k];
  }
  // The cursors now hold each column's end, i.e. the next column's start: shift back.
  for (uint32_t j = out_dim; j > 0; --j) starts[j] = starts[j - 1];
  starts[0] = 0;
}

// Groups a job's nonzeros by column into `uints` (starts, then rows) and `values`.
Columns GroupByColumn(const Job& job, uint32_t out_dim, uint32_t* uints, float* values) {
  uint32_t* starts = uints;
  uint32_t* rows = uints + out_dim + 1;
  Group(job.indices, job.values, job.nnz, out_dim, starts, rows, values);
  return Columns{starts, rows, values};
}

}  // namespace

void GroupByColumn16(const uint32_t* indices, const float* values, size_t nnz, uint32_t out_dim, uint32_t* starts,
                     uint16_t* rows, float* grouped_values) {
  Group(indices, values, nnz, out_dim, starts, rows, grouped_values);
}

PackedI4 PackI4ByColumn(const uint32_t* positions, size_t nnz, const uint8_t* codes, uint32_t group, uint32_t in_dim,
                        uint32_t out_dim) {
  if (group == 0) group = 1;  // callers check; never divide by zero
  PackedI4 packed;
  const size_t groups = (nnz + group - 1) / group;
  packed.starts.assign(static_cast<size_t>(out_dim) + 1, 0);
  packed.group_ends.resize(groups);
  // Two passes over the same walk: count each column's entries (entries null), then write them.
  // Entries of code 0 add zero: they are left out, their rows counted into the next gap.
  auto walk = [&](uint8_t* entries) {
    uint32_t at = 0, j = 0;
    size_t closed = 0;
    uint64_t column_end = in_dim;
    int64_t previous = -1;
    size_t next_group = group;  // the first entry of the next group
    for (size_t k = 0; k < nnz; ++k) {
      if (k == next_group) {
        packed.group_ends[closed++] = at;
        next_group += group;
      }
      for (; positions[k] >= column_end; column_end += in_dim, previous = -1) packed.starts[++j] = at;
      const uint8_t code = (codes[k >> 1] >> ((k & 1) << 2)) & 15u;
      if (code == 0) continue;
      const int64_t row = static_cast<int64_t>(positions[k] - (column_end - in_dim));
      uint32_t gap = static_cast<uint32_t>(row - previous);
      for (; gap > 16; ++at) {
        const uint32_t bridge = std::min<uint32_t>(256, (gap - 1) / 16 * 16);
        if (entries) entries[at] = static_cast<uint8_t>(bridge / 16 - 1);  // code 0: 16 x (nibble + 1) rows
        gap -= bridge;
      }
      if (entries) entries[at] = static_cast<uint8_t>(code << 4 | (gap - 1));
      ++at;
      previous = row;
    }
    while (j < out_dim) packed.starts[++j] = at;
    for (; closed < groups; ++closed) packed.group_ends[closed] = at;
    return at;
  };
  packed.entries.resize(walk(nullptr));
  walk(packed.entries.data());
  return packed;
}

bool ToRowGaps(const uint32_t* starts, uint32_t out_dim, const uint16_t* rows, uint8_t* gaps) {
  for (uint32_t j = 0; j < out_dim; ++j) {
    int32_t previous = -1;
    for (uint32_t k = starts[j]; k < starts[j + 1]; ++k) {
      const int32_t gap = static_cast<int32_t>(rows[k]) - previous;
      if (gap > 255) return false;
      gaps[k] = static_cast<uint8_t>(gap);
      previous = rows[k];
    }
  }
  return true;
}

bool ToExactHalves(const float* values, size_t n, uint16_t* halves) {
  for (size_t k = 0; k < n; ++k) {
    uint32_t bits;
    std::memcpy(&bits, &values[k], sizeof bits);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    const float magnitude = std::fabs(values[k]);
    uint32_t half;
    if (!(magnitude < 65520.0f)) return false;  // infinite, NaN or past the largest fp16
    if (magnitude < 0x1p-14f) {
      // fp16 subnormals are multiples of 2^-24: exact only when the scaled value is a whole number.
      half = static_cast<uint32_t>(magnitude * 0x1p24f);
    } else {
      uint32_t m;
      std::memcpy(&m, &magnitude, sizeof m);
      half = ((m >> 23) - 112u) << 10 | ((m >> 13) & 0x3ffu);
    }
    halves[k] = static_cast<uint16_t>(sign | half);
    const float back = HalfToFloat(halves[k]);
    if (std::memcmp(&back, &values[k], sizeof back) != 0) return false;
  }
  return true;
}

std::vector<Path> SupportedPaths() {
  std::vector<Path> paths;
#ifdef SK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) paths.push_back(Path::kAvx512);
  if (__builtin_cpu_supports("avx2")) paths.push_back(Path::kAvx2);
#endif
  paths.push_back(Path::kBaseline);
  return paths;
}

const char* PathName(Path path) {
  switch (path) {
    case Path::kAvx512: return "avx512";
    case Path::kAvx2: return "avx2";
    default: return "baseline";
  }
}

void Scratch::Reserve(uint32_t in_dim, uint32_t out_dim, const std::vector<Task>& tasks) {
  uint32_t block = 0;
  size_t nnz = 0;
  for (const Task& task : tasks) {
    block = std::max(block, std::min(task.token_count, kTokenBlock));
    if (task.job->indices != nullptr && task.job->by_column == nullptr) nnz = std::max(nnz, task.job->nnz);
  }
  const size_t need_floats = (static_cast<size_t>(in_dim) + kColumnBlock) * block + nnz;
  const size_t need_uints = static_cast<size_t>(out_dim) + 1 + nnz;
  if (floats.size() < need_floats) floats.resize(need_floats);
  if (uints.size() < need_uints) uints.resize(need_uints);
}

void RunTask(const Call& call, const Task& task, Scratch& scratch) {
  const Job& job = *task.job;
  const uint32_t in_dim = call.in_dim, out_dim = call.out_dim;
  const uint32_t first_row = job.row_start + task.token_start;
  float* out = call.out + static_cast<size_t>(first_row) * out_dim;
  if (!HasWeightDelta(job)) {
    // No weight delta: 0 + bias (or 0); accumulating, + bias (or nothing).
    for (uint32_t t = 0; t < task.token_count; ++t) {
      float* row = out + static_cast<size_t>(t) * out_dim;
      if (call.accumulate) {
        if (job.bias != nullptr)
          for (uint32_t j = 0; j < out_dim; ++j) row[j] += job.bias[j];
      } else if (job.bias == nullptr) {
        std::memset(row, 0, sizeof(float) * out_dim);
      } else {
        for (uint32_t j = 0; j < out_dim; ++j) row[j] = 0.0f + job.bias[j];
      }
    }
    return;
  }
  const uint32_t block = std::min(task.token_count, kTokenBlock);
  float* xt = scratch.floats.data();
  Columns columns{};
  if (job.indices != nullptr && job.by_column == nullptr) {
    columns = GroupByColumn(job, out_dim, scratch.uints.data(), xt + (static_cast<size_t>(in_dim) + kColumnBlock) * block);
  }
  float* dt = xt + static_cast<size_t>(in_dim) * block;  // kColumnBlock x block
  for (uint32_t t0 = 0; t0 < task.token_count; t0 += block) {
    const uint32_t n = std::min(block, task.token_count - t0);
    const float* x = call.x + static_cast<size_t>(first_row + t0) * in_dim;
    for (uint32_t i0 = 0; i0 < in_dim; i0 += kColumnBlock) {
      Transpose<true>(x + i0, in_dim, n, std::min(kColumnBlock, in_dim - i0), xt + static_cast<size_t>(i0) * n, n, nullptr);
    }
    float* rows = out + static_cast<size_t>(t0) * out_dim;
    // A few columns at a time: their sums stay in L1 until written, a cache line per row.
    for (uint32_t j0 = 0; j0 < out_dim; j0 += kColumnBlock) {
      const uint32_t j1 = std::min(out_dim, j0 + kColumnBlock);
      Accumulate(call.path, job, columns, in_dim, out_dim, j0, j1, xt, dt, n);
      Transpose<false>(dt, n, j1 - j0, n, rows + j0, out_dim, job.bias ? job.bias + j0 : nullptr, call.accumulate);
    }
  }
}

std::vector<Task> PlanTasks(const std::vector<Job>& jobs, uint32_t in_dim, uint32_t out_dim, uint32_t threads) {
  std::vector<Task> tasks;
  double total = 0;
  std::vector<double> costs(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) {
    const Job& job = jobs[k];
    // Per token: one multiply-add per nonzero, plus the transposes and the write-out.
    const double per_token = static_cast<double>(HasWeightDelta(job) ? job.nnz : 0) + in_dim + out_dim;
    costs[k] = per_token * job.row_count;
    total += costs[k];
  }
  // Enough whole jobs to balance by handing out the costliest first: no splitting.
  const bool split = threads > 1 && jobs.size() < static_cast<size_t>(threads) * 2;
  const double target = split ? total / (threads * 2.0) : 0;
  constexpr uint32_t kMinTokens = 16;  // a few vectors per chunk
  for (size_t k = 0; k < jobs.size(); ++k) {
    const Job& job = jobs[k];
    if (job.row_count == 0) continue;
    uint32_t pieces = 1;
    if (split && target > 0) {
      const uint32_t by_cost = static_cast<uint32_t>(std::ceil(costs[k] / target));
      const uint32_t by_tokens = std::max<uint32_t>(1, job.row_count / kMinTokens);
      pieces = std::max<uint32_t>(1, std::min(by_cost, by_tokens));
    }
    const uint32_t base = job.row_count / pieces, extra = job.row_count % pieces;
    uint32_t start = 0;
    for (uint32_t p = 0; p < pieces; ++p) {
      const uint32_t count = base + (p < extra ? 1 : 0);
      tasks.push_back(Task{&job, start, count, costs[k] * count / job.row_count});
      start += count;
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.cost > b.cost; });
  return tasks;
}

}  // namespace side_kernel
