// What grouping a delta by column once per load saves the side kernel: one call of 16 requests ×
// 128 tokens, each with its own DARE delta, on deltas as decoded (the kernel groups each per call)
// and on deltas already grouped (the one-session op's case), accumulating into the output as the
// op does. Both must give the same bits. Best of 5 calls, one thread, the AVX2 path.
// Build and run from the repository root:
//   g++ -O3 -ffp-contract=off -std=c++17 -Inative/side-kernel bench/native/kernel-grouping.cc \
//     native/side-kernel/kernel.cc -o /tmp/kernel-grouping && /tmp/kernel-grouping
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernel.h"

using namespace side_kernel;

static void Compare(uint32_t in, uint32_t out, double p) {
  constexpr uint32_t kTokens = 128, kJobs = 16;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<std::vector<uint32_t>> idx(kJobs), starts(kJobs);
  std::vector<std::vector<float>> val(kJobs), grouped(kJobs);
  std::vector<std::vector<uint16_t>> rows(kJobs);
  std::vector<ByColumn> by_column(kJobs);
  std::vector<Job> flat(kJobs), pre(kJobs);
  for (uint32_t j = 0; j < kJobs; ++j) {
    for (uint32_t k = 0; k < in * out; ++k)
      if (u(rng) > p) idx[j].push_back(k), val[j].push_back(u(rng) - 0.5f);
    const size_t nnz = idx[j].size();
    starts[j].resize(out + 1), rows[j].resize(nnz), grouped[j].resize(nnz);
    GroupByColumn16(idx[j].data(), val[j].data(), nnz, out, starts[j].data(), rows[j].data(), grouped[j].data());
    by_column[j] = ByColumn{starts[j].data(), rows[j].data(), grouped[j].data()};
    flat[j] = Job{j * kTokens, kTokens, idx[j].data(), val[j].data(), nnz, nullptr};
    pre[j] = Job{j * kTokens, kTokens, nullptr, grouped[j].data(), nnz, nullptr, &by_column[j]};
  }
  std::vector<float> x(kJobs * kTokens * in);
  for (float& v : x) v = u(rng);
  double macs = 0;
  for (const Job& job : flat) macs += static_cast<double>(job.nnz) * kTokens;
  std::vector<float> results[2];
  double best[2] = {1e9, 1e9};
  for (int rep = 0; rep < 5; ++rep) {
    for (int which = 0; which < 2; ++which) {
      const std::vector<Job>& jobs = which == 0 ? flat : pre;
      results[which].assign(kJobs * kTokens * out, 0.0f);
      const Call call{x.data(), in, results[which].data(), out, Path::kAvx2, true};
      const std::vector<Task> tasks = PlanTasks(jobs, in, out, 1);
      Scratch scratch;
      scratch.Reserve(in, out, tasks);
      const auto t0 = std::chrono::steady_clock::now();
      for (const Task& task : tasks) RunTask(call, task, scratch);
      best[which] = std::min(best[which], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  const bool same = std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)) == 0;
  std::printf("| %u → %u | %.2f | %.1f | %.1f | %.2f | %s |\n", in, out, p, best[0] * 1e3, best[1] * 1e3,
              best[1] / best[0], same ? "yes" : "NO");
}

int main() {
  std::printf("| linear | p | as decoded, ms | grouped at load, ms | ratio | same bits |\n|---|---:|---:|---:|---:|---|\n");
  for (double p : {0.9, 0.99}) {
    Compare(768, 3072, p);
    Compare(3072, 768, p);
  }
}
