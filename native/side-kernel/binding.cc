// N-API surface of the side-path kernel. The TypeScript wrapper (src/engine/runtime/mixed/kernel/
// native-kernel.ts) is the only caller and checks shapes first with readable messages; this file
// checks again whatever guards memory (lengths, row ranges, every index), because a typed array
// can change between the two, and scans the indices, which the wrapper leaves to native speed.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "kernel.h"
#include "thread_pool.h"

namespace {

using side_kernel::Call;
using side_kernel::Job;
using side_kernel::Path;
using side_kernel::Task;

struct Instance {
  side_kernel::ThreadPool pool;
  std::vector<side_kernel::Scratch> scratch;  // one per participant
};

Instance& GetInstance(Napi::Env env) {
  Instance* instance = env.GetInstanceData<Instance>();
  if (instance == nullptr) {
    instance = new Instance();
    env.SetInstanceData(instance);  // deleted (threads joined) when the environment ends
  }
  return *instance;
}

[[noreturn]] void Fail(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, "side kernel: " + message);
}

template <typename T>
T ArrayOf(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type)
    Fail(env, std::string(what) + (type == napi_float32_array ? " must be a Float32Array" : " must be a Uint32Array"));
  return value.As<T>();
}
Napi::Float32Array Floats(Napi::Env env, const Napi::Value& value, const char* what) {
  return ArrayOf<Napi::Float32Array>(env, value, napi_float32_array, what);
}
Napi::Uint32Array Uints(Napi::Env env, const Napi::Value& value, const char* what) {
  return ArrayOf<Napi::Uint32Array>(env, value, napi_uint32_array, what);
}

uint32_t Dim(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) Fail(env, std::string(what) + " must be a number");
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    Fail(env, std::string(what) + " must be a positive integer");
  return static_cast<uint32_t>(d);
}

Napi::Value Paths(const Napi::CallbackInfo& info) {
  const auto paths = side_kernel::SupportedPaths();
  Napi::Array result = Napi::Array::New(info.Env(), paths.size());
  for (uint32_t k = 0; k < paths.size(); ++k) result.Set(k, side_kernel::PathName(paths[k]));
  return result;
}

// sideProduct(x, inDim, out, outDim, rowStarts, rowCounts, indices[], values[], biases[], threads, path)
Napi::Value SideProduct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 11) Fail(env, "expected 11 arguments");
  auto x = Floats(env, info[0], "x");
  const uint32_t in_dim = Dim(env, info[1], "inDim");
  auto out = Floats(env, info[2], "out");
  const uint32_t out_dim = Dim(env, info[3], "outDim");
  auto row_starts = Uints(env, info[4], "rowStarts");
  auto row_counts = Uints(env, info[5], "rowCounts");
  if (!info[6].IsArray() || !info[7].IsArray() || !info[8].IsArray()) Fail(env, "indices, values, biases must be arrays");
  auto indices_list = info[6].As<Napi::Array>();
  auto values_list = info[7].As<Napi::Array>();
  auto bias_list = info[8].As<Napi::Array>();
  const uint32_t threads = Dim(env, info[9], "threads");
  if (!info[10].IsString()) Fail(env, "path must be a string");
  const std::string path_name = info[10].As<Napi::String>().Utf8Value();

  Path path = Path::kBaseline;
  bool path_ok = false;
  for (Path p : side_kernel::SupportedPaths()) {
    if (path_name == side_kernel::PathName(p)) {
      path = p;
      path_ok = true;
    }
  }
  if (!path_ok) Fail(env, "path '" + path_name + "' is not supported on this CPU");

  if (x.ElementLength() % in_dim != 0) Fail(env, "x length is not a multiple of inDim");
  const uint64_t rows = x.ElementLength() / in_dim;
  if (out.ElementLength() != rows * out_dim) Fail(env, "out length is not rows * outDim");
  const size_t job_count = row_starts.ElementLength();
  if (row_counts.ElementLength() != job_count || indices_list.Length() != job_count ||
      values_list.Length() != job_count || bias_list.Length() != job_count)
    Fail(env, "job arrays differ in length");
  const uint64_t positions = static_cast<uint64_t>(in_dim) * out_dim;

  std::vector<Job> jobs(job_count);
  for (uint32_t k = 0; k < job_count; ++k) {
    const std::string at = "job " + std::to_string(k) + ": ";
    Job& job = jobs[k];
    job.row_start = row_starts[k];
    job.row_count = row_counts[k];
    if (static_cast<uint64_t>(job.row_start) + job.row_count > rows) Fail(env, at + "rows out of range");
    Napi::Value indices_value = indices_list.Get(k), values_value = values_list.Get(k), bias_value = bias_list.Get(k);
    job.indices = nullptr;
    job.values = nullptr;
    job.nnz = 0;
    job.bias = nullptr;
    if (!values_value.IsNull() && !values_value.IsUndefined()) {
      auto values = Floats(env, values_value, "values");
      if (indices_value.IsNull() || indices_value.IsUndefined()) {
        if (values.ElementLength() != positions) Fail(env, at + "dense values length is not inDim * outDim");
        job.values = values.Data();
        job.nnz = values.ElementLength();
      } else {
        auto indices = Uints(env, indices_value, "indices");
        if (indices.ElementLength() != values.ElementLength()) Fail(env, at + "indices and values differ in length");
        const size_t nnz = indices.ElementLength();
        const uint32_t* data = indices.Data();
        uint32_t max = 0;
        for (size_t e = 0; e < nnz; ++e) max = std::max(max, data[e]);
        if (nnz > 0 && max >= positions) {
          size_t e = 0;
          while (data[e] < positions) ++e;
          Fail(env, at + "weight index " + std::to_string(data[e]) + " at position " + std::to_string(e) +
                        " is out of range for [" + std::to_string(in_dim) + ", " + std::to_string(out_dim) +
                        "] (must be < " + std::to_string(positions) + ")");
        }
        if (nnz > 0) {
          job.indices = data;
          job.values = values.Data();
          job.nnz = nnz;
        }
      }
    }
    if (!bias_value.IsNull() && !bias_value.IsUndefined()) {
      auto bias = Floats(env, bias_value, "bias");
      if (bias.ElementLength() != out_dim) Fail(env, at + "bias length is not outDim");
      job.bias = bias.Data();
    }
  }

  Call call{x.Data(), in_dim, out.Data(), out_dim, path};
  // Rows no job covers are zero.
  std::vector<const Job*> by_row(job_count);
  for (size_t k = 0; k < job_count; ++k) by_row[k] = &jobs[k];
  std::sort(by_row.begin(), by_row.end(), [](const Job* a, const Job* b) { return a->row_start < b->row_start; });
  uint64_t next = 0;
  for (const Job* job : by_row) {
    if (job->row_start > next)
      std::memset(call.out + next * out_dim, 0, sizeof(float) * (job->row_start - next) * out_dim);
    next = std::max<uint64_t>(next, static_cast<uint64_t>(job->row_start) + job->row_count);
  }
  if (rows > next) std::memset(call.out + next * out_dim, 0, sizeof(float) * (rows - next) * out_dim);

  const std::vector<Task> tasks = side_kernel::PlanTasks(jobs, in_dim, out_dim, threads);
  if (tasks.empty()) return env.Undefined();
  const uint32_t participants = static_cast<uint32_t>(std::min<size_t>(threads, tasks.size()));
  Instance& instance = GetInstance(env);
  if (instance.scratch.size() < participants) instance.scratch.resize(participants);
  // Sized here, where a failed allocation can still throw to JS rather than end the process.
  for (uint32_t p = 0; p < participants; ++p) instance.scratch[p].Reserve(in_dim, out_dim, tasks);
  std::atomic<size_t> next_task{0};
  instance.pool.Run(participants - 1, [&](uint32_t participant) {
    auto& scratch = instance.scratch[participant];
    for (size_t t = next_task.fetch_add(1); t < tasks.size(); t = next_task.fetch_add(1))
      side_kernel::RunTask(call, tasks[t], scratch);
  });
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("paths", Napi::Function::New(env, Paths, "paths"));
  exports.Set("sideProduct", Napi::Function::New(env, SideProduct, "sideProduct"));
  return exports;
}

}  // namespace

NODE_API_MODULE(deltaserve_side_kernel, Init)
