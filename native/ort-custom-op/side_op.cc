#include "side_op.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../side-kernel/kernel.h"
#include "delta_registry.h"
#include "ort_api.h"

namespace ort_custom_op {
namespace {

using side_kernel::Job;
using side_kernel::Task;

struct SideOp {
  OrtCustomOp op;  // first: ORT hands back this pointer
  int threads;
};

struct Kernel {
  std::string weight;
  std::string bias;
  int threads;
  side_kernel::Path path;
};

struct Failure : std::exception {
  explicit Failure(std::string m) : message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
};

void Check(OrtStatus* status) {
  if (status != nullptr) throw Failure(TakeMessage(status));
}

std::string StringAttribute(const OrtKernelInfo* info, const char* name) {
  size_t size = 0;
  OrtStatus* status = Api()->KernelInfoGetAttribute_string(info, name, nullptr, &size);
  if (status != nullptr) {
    TakeMessage(status);
    return "";
  }
  std::string value(size, '\0');
  Check(Api()->KernelInfoGetAttribute_string(info, name, value.data(), &size));
  value.resize(size > 0 ? size - 1 : 0);  // size counts the terminating NUL
  return value;
}

std::vector<int64_t> DimsOf(const OrtValue* value) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  Check(Api()->GetTensorTypeAndShape(value, &info));
  size_t count = 0;
  std::vector<int64_t> dims;
  OrtStatus* status = Api()->GetDimensionsCount(info, &count);
  if (status == nullptr) {
    dims.resize(count);
    status = Api()->GetDimensions(info, dims.data(), count);
  }
  Api()->ReleaseTensorTypeAndShapeInfo(info);
  Check(status);
  return dims;
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (size_t k = 0; k < dims.size(); ++k) text += (k ? ", " : "") + std::to_string(dims[k]);
  return text + "]";
}

struct ParallelState {
  side_kernel::Call call;
  const std::vector<Task>* tasks;
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string error;
};

void RunOne(void* data, size_t index) {
  auto* state = static_cast<ParallelState*>(data);
  try {
    thread_local side_kernel::Scratch scratch;
    scratch.Reserve(state->call.in_dim, state->call.out_dim, *state->tasks);
    side_kernel::RunTask(state->call, (*state->tasks)[index], scratch);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (!state->failed.exchange(true)) state->error = e.what();
  }
}

void Compute(const Kernel& kernel, OrtKernelContext* context) {
  const OrtApi* api = Api();
  const OrtValue *y0 = nullptr, *x = nullptr, *ids = nullptr;
  Check(api->KernelContext_GetInput(context, 0, &y0));
  Check(api->KernelContext_GetInput(context, 1, &x));
  Check(api->KernelContext_GetInput(context, 2, &ids));
  if (y0 == nullptr || x == nullptr || ids == nullptr) throw Failure("SideAdd needs Y0, X and item_deltas");
  const std::vector<int64_t> y_dims = DimsOf(y0), x_dims = DimsOf(x), id_dims = DimsOf(ids);
  const std::string site = " (SideAdd for " + kernel.weight + ")";
  if (y_dims.size() < 2 || x_dims.size() != y_dims.size())
    throw Failure("Y0 " + DimsText(y_dims) + " and X " + DimsText(x_dims) + " must have the same rank ≥ 2" + site);
  uint64_t rows = 1;
  for (size_t k = 0; k + 1 < y_dims.size(); ++k) {
    if (x_dims[k] != y_dims[k])
      throw Failure("X " + DimsText(x_dims) + " and Y0 " + DimsText(y_dims) + " differ before the last axis" + site);
    rows *= static_cast<uint64_t>(y_dims[k]);
  }
  const int64_t in_dim = x_dims.back(), out_dim = y_dims.back();
  if (id_dims.size() != 1 || id_dims[0] != y_dims[0])
    throw Failure("item_deltas " + DimsText(id_dims) + " must be [" + std::to_string(y_dims[0]) +
                  "], one delta handle per batch item" + site);
  const uint64_t items = static_cast<uint64_t>(y_dims[0]);

  const float* y0_data = nullptr;
  const float* x_data = nullptr;
  const int64_t* handles = nullptr;
  Check(api->GetTensorMutableData(const_cast<OrtValue*>(y0), (void**)&y0_data));
  Check(api->GetTensorMutableData(const_cast<OrtValue*>(x), (void**)&x_data));
  Check(api->GetTensorMutableData(const_cast<OrtValue*>(ids), (void**)&handles));
  OrtValue* y = nullptr;
  Check(api->KernelContext_GetOutput(context, 0, y_dims.data(), y_dims.size(), &y));
  float* y_data = nullptr;
  Check(api->GetTensorMutableData(y, (void**)&y_data));
  // Aliased (GetAliasMap) when Y0 has no other reader; a copy otherwise (e.g. Y is a graph output).
  if (y_data != y0_data && rows * out_dim > 0) std::memcpy(y_data, y0_data, sizeof(float) * rows * out_dim);
  if (items == 0 || rows == 0) return;
  const uint64_t rows_per_item = rows / items;

  std::vector<std::shared_ptr<const DeltaEntry>> held;
  std::vector<Job> jobs;
  jobs.reserve(items);
  for (uint64_t k = 0; k < items;) {
    uint64_t end = k + 1;
    while (end < items && handles[end] == handles[k]) ++end;
    const int64_t handle = handles[k];
    if (handle != 0) {
      std::shared_ptr<const DeltaEntry> entry = handle > 0 ? FindDelta(static_cast<uint64_t>(handle)) : nullptr;
      if (!entry) throw Failure("delta handle " + std::to_string(handle) + " is not registered (released?)" + site);
      const TensorView* w = nullptr;
      const TensorView* b = nullptr;
      if (auto it = entry->tensors.find(kernel.weight); it != entry->tensors.end()) w = &it->second;
      if (!kernel.bias.empty())
        if (auto it = entry->tensors.find(kernel.bias); it != entry->tensors.end()) b = &it->second;
      if (w && (w->shape.size() != 2 || w->shape[0] != in_dim || w->shape[1] != out_dim))
        throw Failure("delta of " + kernel.weight + " has shape " + DimsText(w->shape) + ", the graph multiplies [" +
                      std::to_string(in_dim) + ", " + std::to_string(out_dim) + "]");
      if (b && (b->length != static_cast<uint64_t>(out_dim) || b->dense.empty() && b->indices != nullptr))
        throw Failure("delta of " + kernel.bias + " has " + std::to_string(b->length) + " values, the output has " +
                      std::to_string(out_dim));
      if (w || b) {
        Job job{};
        job.row_start = static_cast<uint32_t>(k * rows_per_item);
        job.row_count = static_cast<uint32_t>((end - k) * rows_per_item);
        job.indices = w ? w->indices : nullptr;
        job.values = w ? w->values : nullptr;
        job.nnz = w ? (w->indices || w->grouped ? w->nnz : w->length) : 0;
        job.by_column = w && w->grouped ? &w->by_column : nullptr;
        if (w && (w->indices != nullptr || w->grouped) && w->nnz == 0) {
          job.values = nullptr;
          job.by_column = nullptr;
        }
        job.bias = b ? (b->indices ? b->dense.data() : b->values) : nullptr;
        jobs.push_back(job);
        held.push_back(std::move(entry));
      }
    }
    k = end;
  }
  if (jobs.empty()) return;
  const std::vector<Task> tasks = side_kernel::PlanTasks(jobs, static_cast<uint32_t>(in_dim),
                                                         static_cast<uint32_t>(out_dim), kernel.threads);
  ParallelState state;
  state.call = side_kernel::Call{x_data, static_cast<uint32_t>(in_dim), y_data, static_cast<uint32_t>(out_dim),
                                 kernel.path, true};
  state.tasks = &tasks;
  if (tasks.size() == 1) {
    RunOne(&state, 0);
  } else if (!tasks.empty()) {
    Check(api->KernelContext_ParallelFor(context, RunOne, tasks.size(), 0, &state));
  }
  if (state.failed) throw Failure(state.error + site);
}

OrtStatusPtr ORT_API_CALL CreateKernelV2(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info,
                                         void** kernel) noexcept {
  try {
    auto created = std::make_unique<Kernel>();
    created->weight = StringAttribute(info, "weight");
    created->bias = StringAttribute(info, "bias");
    if (created->weight.empty()) throw Failure("SideAdd needs a 'weight' attribute");
    created->threads = reinterpret_cast<const SideOp*>(op)->threads;
    created->path = side_kernel::SupportedPaths().front();
    *kernel = created.release();
    return nullptr;
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_INVALID_ARGUMENT, e.what());
  }
}

OrtStatusPtr ORT_API_CALL KernelComputeV2(void* kernel, OrtKernelContext* context) noexcept {
  try {
    Compute(*static_cast<Kernel*>(kernel), context);
    return nullptr;
  } catch (const std::exception& e) {
    return Api()->CreateStatus(ORT_INVALID_ARGUMENT, e.what());
  }
}

void ORT_API_CALL KernelDestroy(void* kernel) noexcept { delete static_cast<Kernel*>(kernel); }

const char* ORT_API_CALL GetName(const OrtCustomOp*) noexcept { return kOpName; }
const char* ORT_API_CALL GetExecutionProviderType(const OrtCustomOp*) noexcept { return nullptr; }
size_t ORT_API_CALL GetInputTypeCount(const OrtCustomOp*) noexcept { return 3; }
ONNXTensorElementDataType ORT_API_CALL GetInputType(const OrtCustomOp*, size_t index) noexcept {
  return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
size_t ORT_API_CALL GetOutputTypeCount(const OrtCustomOp*) noexcept { return 1; }
ONNXTensorElementDataType ORT_API_CALL GetOutputType(const OrtCustomOp*, size_t) noexcept {
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
OrtCustomOpInputOutputCharacteristic ORT_API_CALL Required(const OrtCustomOp*, size_t) noexcept {
  return INPUT_OUTPUT_REQUIRED;
}
OrtMemType ORT_API_CALL GetInputMemoryType(const OrtCustomOp*, size_t) noexcept { return OrtMemTypeDefault; }
int ORT_API_CALL MinArity(const OrtCustomOp*) noexcept { return 1; }
int ORT_API_CALL Homogeneous(const OrtCustomOp*) noexcept { return 1; }
int ORT_API_CALL StartVersion(const OrtCustomOp*) noexcept { return 1; }
int ORT_API_CALL EndVersion(const OrtCustomOp*) noexcept { return INT_MAX; }

// Y has Y0's type and shape, symbolic dimensions kept symbolic (writing -1 let a fusion misfire).
// Y's shape is left unset (unknown) rather than wrong where Y0's is not fully known: ORT hands an
// unknown shape over as rank 0 (Y0 is never a scalar here), and a dimension known neither as a
// value nor by name would be written as -1.
OrtStatusPtr ORT_API_CALL InferOutputShape(const OrtCustomOp*, OrtShapeInferContext* context) noexcept {
  const OrtApi* api = Api();
  OrtTensorTypeAndShapeInfo* info = nullptr;  // owned by the context
  OrtStatus* status = api->ShapeInferContext_GetInputTypeShape(context, 0, &info);
  if (status != nullptr) return status;
  size_t rank = 0;
  if ((status = api->GetDimensionsCount(info, &rank)) != nullptr) return status;
  std::vector<int64_t> dims(rank);
  std::vector<const char*> names(rank, nullptr);
  if ((status = api->GetDimensions(info, dims.data(), rank)) != nullptr) return status;
  if ((status = api->GetSymbolicDimensions(info, names.data(), rank)) != nullptr) return status;
  if (rank < 2) return nullptr;
  for (size_t k = 0; k < rank; ++k)
    if (dims[k] < 0 && (names[k] == nullptr || names[k][0] == '\0')) return nullptr;
  return api->ShapeInferContext_SetOutputTypeShape(context, 0, info);
}

size_t ORT_API_CALL GetAliasMap(int** input_index, int** output_index) noexcept {
  *input_index = new (std::nothrow) int[1]{0};
  *output_index = new (std::nothrow) int[1]{0};
  if (*input_index == nullptr || *output_index == nullptr) {
    delete[] *input_index;
    delete[] *output_index;
    *input_index = *output_index = nullptr;
    return 0;
  }
  return 1;
}
void ORT_API_CALL ReleaseAliasMap(int* input_index, int* output_index) noexcept {
  delete[] input_index;
  delete[] output_index;
}

}  // namespace

OrtCustomOp* NewSideOp(int threads) {
  auto* side = new SideOp{};
  OrtCustomOp& op = side->op;
  op.version = ORT_API_VERSION;
  op.CreateKernel = nullptr;  // the V2 callbacks are used from API 16 on
  op.KernelCompute = nullptr;
  op.CreateKernelV2 = CreateKernelV2;
  op.KernelComputeV2 = KernelComputeV2;
  op.KernelDestroy = KernelDestroy;
  op.GetName = GetName;
  op.GetExecutionProviderType = GetExecutionProviderType;
  op.GetInputType = GetInputType;
  op.GetInputTypeCount = GetInputTypeCount;
  op.GetOutputType = GetOutputType;
  op.GetOutputTypeCount = GetOutputTypeCount;
  op.GetInputCharacteristic = Required;
  op.GetOutputCharacteristic = Required;
  op.GetInputMemoryType = GetInputMemoryType;
  op.GetVariadicInputMinArity = MinArity;
  op.GetVariadicInputHomogeneity = Homogeneous;
  op.GetVariadicOutputMinArity = MinArity;
  op.GetVariadicOutputHomogeneity = Homogeneous;
  op.InferOutputShapeFn = InferOutputShape;
  op.GetStartVersion = StartVersion;
  op.GetEndVersion = EndVersion;
  op.GetMayInplace = nullptr;
  op.ReleaseMayInplace = nullptr;
  op.GetAliasMap = GetAliasMap;
  op.ReleaseAliasMap = ReleaseAliasMap;
  side->threads = std::max(1, threads);
  return &side->op;
}

void DeleteSideOp(OrtCustomOp* op) { delete reinterpret_cast<SideOp*>(op); }

}  // namespace ort_custom_op
