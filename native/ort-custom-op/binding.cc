// N-API surface of the custom-op addon. The TypeScript wrapper
// (src/engine/runtime/mixed/one-session/ort-addon.ts) is the only caller; this file still checks
// whatever guards memory (types, lengths, index ranges, handles), and turns every ORT status into
// a JS error. Runs are synchronous on the calling thread (the engine worker, never the main thread).
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delta_registry.h"
#include "ort_api.h"
#include "side_op.h"

namespace {

using namespace ort_custom_op;

[[noreturn]] void Fail(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, "ort custom op: " + message);
}

void CheckOrt(Napi::Env env, OrtStatus* status, const char* what) {
  if (status != nullptr) Fail(env, std::string(what) + ": " + TakeMessage(status));
}

void RequireApi(Napi::Env env) {
  if (Api() == nullptr) Fail(env, "init() has not loaded ONNX Runtime");
}

/** Per environment: the JS arrays each of its registered deltas views. */
struct Instance {
  std::unordered_map<uint64_t, std::vector<Napi::Reference<Napi::Value>>> held;
};

Instance& GetInstance(Napi::Env env) {
  Instance* instance = env.GetInstanceData<Instance>();
  if (instance == nullptr) {
    instance = new Instance();
    env.SetInstanceData(instance);
    napi_add_env_cleanup_hook(
        env, [](void* owner) { ReleaseAllOf(owner); }, static_cast<void*>(static_cast<napi_env>(env)));
  }
  return *instance;
}

const void* OwnerOf(Napi::Env env) { return static_cast<napi_env>(env); }

OrtEnv* SharedEnv(Napi::Env env) {
  // A second CreateEnv in the process returns onnxruntime-node's environment (ORT keeps one).
  static OrtEnv* ort_env = nullptr;
  if (ort_env == nullptr) CheckOrt(env, Api()->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "deltaserve", &ort_env), "CreateEnv");
  return ort_env;
}

// init(libraryPath) → ONNX Runtime's version string
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) Fail(env, "init(libraryPath) takes a string");
  std::string version;
  const std::string error = LoadOrt(info[0].As<Napi::String>().Utf8Value(), &version);
  if (!error.empty()) Fail(env, error);
  return Napi::String::New(env, version);
}

Napi::Value ApiVersion(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ORT_API_VERSION); }

std::vector<int64_t> ShapeOf(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) Fail(env, what + " must be an array of dimensions");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> dims(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    Napi::Value d = array.Get(k);
    if (!d.IsNumber()) Fail(env, what + " must hold numbers");
    const double v = d.As<Napi::Number>().DoubleValue();
    if (!(v >= 0 && v <= 9007199254740991.0) || v != static_cast<double>(static_cast<int64_t>(v)))
      Fail(env, what + " must hold non-negative integers");
    dims[k] = static_cast<int64_t>(v);
  }
  return dims;
}

template <typename T>
T TypedArrayOf(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const std::string& what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) Fail(env, what);
  return value.As<T>();
}

// Starts of a grouped tensor: one per column plus the end, from 0 to `entries`, never decreasing.
const uint32_t* CheckedStarts(Napi::Env env, const Napi::Uint32Array& starts, uint64_t out_dim, size_t entries,
                              const std::string& at) {
  if (starts.ElementLength() != out_dim + 1) Fail(env, at + "byColumn.starts must hold one start per column plus the end");
  const uint32_t* s = starts.Data();
  if (s[0] != 0 || s[out_dim] != entries) Fail(env, at + "byColumn.starts must run from 0 to the number of entries");
  for (uint64_t j = 0; j < out_dim; ++j)
    if (s[j + 1] < s[j]) Fail(env, at + "byColumn.starts must not decrease (column " + std::to_string(j) + ")");
  return s;
}

// The int4 form (PackI4ByColumn's): every column's rows stay below in_dim, every group holds
// entries and the last ends with them, every scale is finite; the kernel then reads no further.
void ViewPackedI4(Napi::Env env, const Napi::Object& grouped, const std::string& at, TensorView& view,
                  std::vector<Napi::Reference<Napi::Value>>& refs, uint64_t in_dim, uint64_t out_dim) {
  Napi::Value starts_value = grouped.Get("starts"), entries_value = grouped.Get("entries"),
              scales_value = grouped.Get("scales"), ends_value = grouped.Get("groupEnds");
  auto starts = TypedArrayOf<Napi::Uint32Array>(env, starts_value, napi_uint32_array, at + "byColumn.starts must be a Uint32Array");
  auto entries = TypedArrayOf<Napi::Uint8Array>(env, entries_value, napi_uint8_array, at + "byColumn.entries must be a Uint8Array");
  auto scales = TypedArrayOf<Napi::Uint16Array>(env, scales_value, napi_uint16_array,
                                                at + "byColumn.scales must be a Uint16Array of fp16 bit patterns");
  auto ends = TypedArrayOf<Napi::Uint32Array>(env, ends_value, napi_uint32_array, at + "byColumn.groupEnds must be a Uint32Array");
  const size_t count = entries.ElementLength();
  const uint32_t* s = CheckedStarts(env, starts, out_dim, count, at);
  const size_t groups = ends.ElementLength();
  if (scales.ElementLength() != groups) Fail(env, at + "byColumn.scales must hold one scale per group");
  if (groups == 0 && count > 0) Fail(env, at + "byColumn.groupEnds must hold a group when there are entries");
  const uint32_t* e = ends.Data();
  for (size_t g = 1; g < groups; ++g)
    if (e[g] < e[g - 1]) Fail(env, at + "byColumn.groupEnds must not decrease");
  if (groups > 0 && e[groups - 1] != count) Fail(env, at + "byColumn.groupEnds must end at the number of entries");
  const uint16_t* h = scales.Data();
  for (size_t g = 0; g < groups; ++g)
    if ((h[g] & 0x7c00u) == 0x7c00u) Fail(env, at + "byColumn.scales holds an fp16 infinity or NaN");
  const uint8_t* b = entries.Data();
  for (uint64_t j = 0; j < out_dim; ++j) {
    uint64_t rows = 0;  // the column's last row + 1
    for (uint32_t k = s[j]; k < s[j + 1]; ++k) rows += ((b[k] & 15u) + 1u) << ((b[k] < 16u) << 2);
    if (rows > in_dim)
      Fail(env, at + "byColumn.entries of column " + std::to_string(j) + " run past row " + std::to_string(in_dim - 1));
  }
  view.grouped = true;
  view.nnz = count;
  view.values = nullptr;
  view.by_column = side_kernel::ByColumn{s, nullptr, nullptr, nullptr, nullptr, b, h, e, static_cast<uint32_t>(groups)};
  refs.push_back(Napi::Persistent(starts_value));
  refs.push_back(Napi::Persistent(entries_value));
  refs.push_back(Napi::Persistent(scales_value));
  refs.push_back(Napi::Persistent(ends_value));
}

// A sparse weight grouped by column (GroupByColumnJs's or PackI4ByColumnJs's result): checked whole,
// since the kernel reads its entries and xt[row] without further checks.
void ViewByColumn(Napi::Env env, const Napi::Object& grouped, const std::string& at, TensorView& view,
                  std::vector<Napi::Reference<Napi::Value>>& refs) {
  if (view.shape.size() != 2) Fail(env, at + "a tensor grouped by column must be 2-D");
  const uint64_t in_dim = static_cast<uint64_t>(view.shape[0]), out_dim = static_cast<uint64_t>(view.shape[1]);
  if (in_dim > 65536) Fail(env, at + "a tensor grouped by column has at most 65536 rows");
  if (grouped.Has("entries")) return ViewPackedI4(env, grouped, at, view, refs, in_dim, out_dim);
  Napi::Value starts_value = grouped.Get("starts"), rows_value = grouped.Get("rows"), values_value = grouped.Get("values");
  auto starts = TypedArrayOf<Napi::Uint32Array>(env, starts_value, napi_uint32_array, at + "byColumn.starts must be a Uint32Array");
  const bool gaps = rows_value.IsTypedArray() && rows_value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  if (!gaps)
    TypedArrayOf<Napi::Uint16Array>(env, rows_value, napi_uint16_array,
                                    at + "byColumn.rows must be a Uint16Array of rows or a Uint8Array of row gaps");
  const Napi::TypedArray rows = rows_value.As<Napi::TypedArray>();
  const bool halves = values_value.IsTypedArray() && values_value.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  if (!halves)
    TypedArrayOf<Napi::Float32Array>(env, values_value, napi_float32_array,
                                     at + "byColumn.values must be a Float32Array or a Uint16Array of fp16 bit patterns");
  const Napi::TypedArray values = values_value.As<Napi::TypedArray>();
  const size_t nnz = rows.ElementLength();
  if (values.ElementLength() != nnz) Fail(env, at + "byColumn.rows and byColumn.values differ in length");
  const uint16_t* values_f16 = halves ? values.As<Napi::Uint16Array>().Data() : nullptr;
  const float* values_f32 = halves ? nullptr : values.As<Napi::Float32Array>().Data();
  // HalfToFloat reads finite patterns only.
  if (halves)
    for (size_t k = 0; k < nnz; ++k)
      if ((values_f16[k] & 0x7c00u) == 0x7c00u) Fail(env, at + "byColumn.values holds an fp16 infinity or NaN");
  // Every start first, so the row scan below never reads past `rows`.
  const uint32_t* s = CheckedStarts(env, starts, out_dim, nnz, at);
  const uint16_t* r = gaps ? nullptr : rows.As<Napi::Uint16Array>().Data();
  const uint8_t* g = gaps ? rows.As<Napi::Uint8Array>().Data() : nullptr;
  for (uint64_t j = 0; j < out_dim; ++j) {
    int64_t row = -1;
    for (uint32_t k = s[j]; k < s[j + 1]; ++k) {
      const int64_t next = g ? row + g[k] : r[k];
      if (next >= static_cast<int64_t>(in_dim) || next <= row)
        Fail(env, at + "byColumn.rows of column " + std::to_string(j) + " must increase and stay below " +
                      std::to_string(in_dim));
      row = next;
    }
  }
  view.grouped = true;
  view.nnz = nnz;
  view.values = values_f32;
  view.by_column = side_kernel::ByColumn{s, r, values_f32, values_f16, g};
  refs.push_back(Napi::Persistent(starts_value));
  refs.push_back(Napi::Persistent(rows_value));
  refs.push_back(Napi::Persistent(values_value));
}

// An integer argument in [min, max], or a JS error naming it.
uint32_t IntegerArg(Napi::Env env, const Napi::Value& value, double min, double max, const std::string& what) {
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max && d == static_cast<double>(static_cast<uint32_t>(d)))) Fail(env, what);
  return static_cast<uint32_t>(d);
}

// Flat positions in a [in_dim, out_dim] weight (row-major indices, or column-major positions): each
// below in_dim * out_dim, strictly increasing.
void CheckIncreasingPositions(Napi::Env env, const uint32_t* idx, size_t nnz, uint32_t in_dim, uint32_t out_dim,
                              const std::string& what) {
  const uint64_t numel = static_cast<uint64_t>(in_dim) * out_dim;
  for (size_t k = 0; k < nnz; ++k) {
    if (idx[k] >= numel || (k > 0 && idx[k] <= idx[k - 1]))
      Fail(env, what + " " + std::to_string(idx[k]) + " at position " + std::to_string(k) +
                    " is out of range or out of order");
  }
}

// groupByColumn(indices: Uint32Array, values: Float32Array, inDim, outDim) → { starts, rows, values }
// (rows: a Uint8Array of row gaps when every gap fits a byte, else a Uint16Array of rows; values: a
// Uint16Array of fp16 bit patterns when every value is exactly an fp16, else a Float32Array):
// a [inDim, outDim] weight's sparse delta (flat row-major indices, strictly increasing) regrouped by
// output column, as the side op reads it; made once per delta load instead of once per run.
Napi::Value GroupByColumnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[2].IsNumber() || !info[3].IsNumber())
    Fail(env, "groupByColumn(indices, values, inDim, outDim) takes two typed arrays and two numbers");
  auto indices = TypedArrayOf<Napi::Uint32Array>(env, info[0], napi_uint32_array, "groupByColumn: indices must be a Uint32Array");
  auto values = TypedArrayOf<Napi::Float32Array>(env, info[1], napi_float32_array, "groupByColumn: values must be a Float32Array");
  const uint32_t in_dim = IntegerArg(env, info[2], 1, 65536, "groupByColumn: inDim must be an integer in [1, 65536]");
  const uint32_t out_dim = IntegerArg(env, info[3], 1, 4294967294.0, "groupByColumn: outDim must be a positive integer");
  const size_t nnz = indices.ElementLength();
  if (values.ElementLength() != nnz) Fail(env, "groupByColumn: indices and values differ in length");
  const uint32_t* idx = indices.Data();
  CheckIncreasingPositions(env, idx, nnz, in_dim, out_dim, "groupByColumn: index");
  auto starts = Napi::Uint32Array::New(env, static_cast<size_t>(out_dim) + 1);
  auto rows = Napi::Uint16Array::New(env, nnz);
  auto grouped = Napi::Float32Array::New(env, nnz);
  side_kernel::GroupByColumn16(idx, values.Data(), nnz, out_dim, starts.Data(), rows.Data(), grouped.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("starts", starts);
  // Rows as one-byte gaps where every gap fits one (densities above ~1 %): 2 bytes less per entry.
  auto gaps = Napi::Uint8Array::New(env, nnz);
  if (side_kernel::ToRowGaps(starts.Data(), out_dim, rows.Data(), gaps.Data()))
    out.Set("rows", gaps);
  else
    out.Set("rows", rows);
  // Values that are all exactly fp16 (an fp16 file's) are kept as fp16: half the bytes, same bits.
  auto halves = Napi::Uint16Array::New(env, nnz);
  if (side_kernel::ToExactHalves(grouped.Data(), nnz, halves.Data()))
    out.Set("values", halves);
  else
    out.Set("values", grouped);
  return out;
}

// packI4ByColumn(positions: Uint32Array, codes: Uint8Array, group, inDim, outDim) → { starts, entries,
// groupEnds }: a [inDim, outDim] weight's I4 codes that list its entries column by column (format v2
// `order: column`; positions j * inDim + i, strictly increasing) as the side op reads them
// (side_kernel::PackI4ByColumn). The caller adds the scales as the file has them.
Napi::Value PackI4ByColumnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber())
    Fail(env, "packI4ByColumn(positions, codes, group, inDim, outDim) takes two typed arrays and three numbers");
  auto positions = TypedArrayOf<Napi::Uint32Array>(env, info[0], napi_uint32_array, "packI4ByColumn: positions must be a Uint32Array");
  auto codes = TypedArrayOf<Napi::Uint8Array>(env, info[1], napi_uint8_array, "packI4ByColumn: codes must be a Uint8Array");
  const uint32_t group = IntegerArg(env, info[2], 1, 65536, "packI4ByColumn: group must be an integer in [1, 65536]");
  const uint32_t in_dim = IntegerArg(env, info[3], 1, 65536, "packI4ByColumn: inDim must be an integer in [1, 65536]");
  const uint32_t out_dim = IntegerArg(env, info[4], 1, 4294967294.0, "packI4ByColumn: outDim must be a positive integer");
  const size_t nnz = positions.ElementLength();
  if (codes.ElementLength() != (nnz + 1) / 2) Fail(env, "packI4ByColumn: codes must hold two codes per byte for every position");
  const uint32_t* idx = positions.Data();
  CheckIncreasingPositions(env, idx, nnz, in_dim, out_dim, "packI4ByColumn: position");
  side_kernel::PackedI4 packed =
      side_kernel::PackI4ByColumn(idx, nnz, codes.Data(), group, in_dim, out_dim);
  auto starts = Napi::Uint32Array::New(env, packed.starts.size());
  std::copy(packed.starts.begin(), packed.starts.end(), starts.Data());
  auto entries = Napi::Uint8Array::New(env, packed.entries.size());
  std::copy(packed.entries.begin(), packed.entries.end(), entries.Data());
  auto ends = Napi::Uint32Array::New(env, packed.group_ends.size());
  std::copy(packed.group_ends.begin(), packed.group_ends.end(), ends.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("starts", starts);
  out.Set("entries", entries);
  out.Set("groupEnds", ends);
  return out;
}

// registerDelta([{ name, shape, indices: Uint32Array | null, values: Float32Array }
//                | { name, shape, byColumn: { starts, rows, values } | { starts, entries, scales, groupEnds } }]) → handle
Napi::Value RegisterDeltaJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArray()) Fail(env, "registerDelta(tensors) takes an array");
  auto list = info[0].As<Napi::Array>();
  auto entry = std::make_shared<DeltaEntry>();
  entry->owner = OwnerOf(env);
  std::vector<Napi::Reference<Napi::Value>> refs;
  for (uint32_t k = 0; k < list.Length(); ++k) {
    Napi::Value item = list.Get(k);
    if (!item.IsObject()) Fail(env, "each tensor must be an object");
    auto tensor = item.As<Napi::Object>();
    Napi::Value name = tensor.Get("name"), values = tensor.Get("values"), indices = tensor.Get("indices");
    if (!name.IsString()) Fail(env, "tensor name must be a string");
    const std::string tensor_name = name.As<Napi::String>().Utf8Value();
    const std::string at = "tensor " + tensor_name + ": ";
    TensorView view;
    view.shape = ShapeOf(env, tensor.Get("shape"), at + "shape");
    view.length = 1;
    for (int64_t d : view.shape) view.length *= static_cast<uint64_t>(d);
    if (Napi::Value by_column = tensor.Get("byColumn"); by_column.IsObject()) {
      ViewByColumn(env, by_column.As<Napi::Object>(), at, view, refs);
      entry->tensors[tensor_name] = std::move(view);
      continue;
    }
    auto floats = TypedArrayOf<Napi::Float32Array>(env, values, napi_float32_array, at + "values must be a Float32Array");
    view.values = floats.Data();
    if (indices.IsNull() || indices.IsUndefined()) {
      if (floats.ElementLength() != view.length) Fail(env, at + "dense values must hold every element of the shape");
      view.nnz = view.length;
    } else {
      auto uints = TypedArrayOf<Napi::Uint32Array>(env, indices, napi_uint32_array, at + "indices must be a Uint32Array");
      if (uints.ElementLength() != floats.ElementLength()) Fail(env, at + "indices and values differ in length");
      view.indices = uints.Data();
      view.nnz = uints.ElementLength();
      for (size_t e = 0; e < view.nnz; ++e) {
        if (view.indices[e] >= view.length)
          Fail(env, at + "index " + std::to_string(view.indices[e]) + " at position " + std::to_string(e) +
                        " is out of range (must be < " + std::to_string(view.length) + ")");
      }
      refs.push_back(Napi::Persistent(indices));
      if (view.shape.size() == 1) {
        view.dense.assign(view.length, 0.0f);
        for (size_t e = 0; e < view.nnz; ++e) view.dense[view.indices[e]] += view.values[e];
      }
    }
    refs.push_back(Napi::Persistent(values));
    entry->tensors[tensor_name] = std::move(view);
  }
  const uint64_t handle = RegisterDelta(entry);
  GetInstance(env).held.emplace(handle, std::move(refs));
  return Napi::Number::New(env, static_cast<double>(handle));
}

uint64_t HandleOf(Napi::Env env, const Napi::Value& value) {
  if (!value.IsNumber()) Fail(env, "a delta handle must be a number");
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    Fail(env, "a delta handle must be a positive integer");
  return static_cast<uint64_t>(d);
}

// releaseDelta(handle) → whether it was registered (by this environment)
Napi::Value ReleaseDeltaJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) Fail(env, "releaseDelta(handle) takes one argument");
  const uint64_t handle = HandleOf(env, info[0]);
  const bool released = ReleaseDelta(handle, OwnerOf(env));
  if (released) GetInstance(env).held.erase(handle);
  return Napi::Boolean::New(env, released);
}

struct ElementType {
  const char* name;
  ONNXTensorElementDataType onnx;
  napi_typedarray_type js;
  size_t bytes;
};
constexpr ElementType kTypes[] = {
    {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, napi_float32_array, 4},
    {"float64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, napi_float64_array, 8},
    {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, napi_bigint64_array, 8},
    {"uint64", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, napi_biguint64_array, 8},
    {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, napi_int32_array, 4},
    {"uint32", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, napi_uint32_array, 4},
    {"int16", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, napi_int16_array, 2},
    {"uint16", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, napi_uint16_array, 2},
    {"int8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, napi_int8_array, 1},
    {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, napi_uint8_array, 1},
    {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, napi_uint8_array, 1},
};

const ElementType* TypeByName(const std::string& name) {
  for (const auto& t : kTypes)
    if (name == t.name) return &t;
  return nullptr;
}
const ElementType* TypeByOnnx(ONNXTensorElementDataType onnx) {
  for (const auto& t : kTypes)
    if (onnx == t.onnx) return &t;
  return nullptr;
}

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "OrtCustomOpSession",
                       {InstanceMethod("run", &Session::Run), InstanceMethod("release", &Session::Release)});
  }

  // new Session(modelBytes: Uint8Array, { threads, spinning, optimizedModelPath, itemDeltasInput })
  explicit Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
    Napi::Env env = info.Env();
    RequireApi(env);
    if (info.Length() != 2 || !info[0].IsTypedArray() || !info[1].IsObject())
      Fail(env, "new Session(modelBytes, options)");
    auto bytes = info[0].As<Napi::TypedArray>();
    auto options = info[1].As<Napi::Object>();
    const OrtApi* api = Api();
    int threads = 0;
    if (options.Get("threads").IsNumber()) threads = options.Get("threads").As<Napi::Number>().Int32Value();
    if (threads < 0) Fail(env, "threads must be ≥ 0");
    const bool spinning = options.Get("spinning").ToBoolean();
    Napi::Value item_input = options.Get("itemDeltasInput");
    if (item_input.IsString()) item_deltas_input_ = item_input.As<Napi::String>().Utf8Value();

    OrtSessionOptions* so = nullptr;
    CheckOrt(env, api->CreateSessionOptions(&so), "CreateSessionOptions");
    auto cleanup = [&]() { api->ReleaseSessionOptions(so); };
    try {
      CheckOrt(env, api->SetIntraOpNumThreads(so, threads), "SetIntraOpNumThreads");
      CheckOrt(env, api->SetInterOpNumThreads(so, 1), "SetInterOpNumThreads");
      CheckOrt(env, api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel");
      CheckOrt(env, api->SetSessionExecutionMode(so, ORT_SEQUENTIAL), "SetSessionExecutionMode");
      CheckOrt(env, api->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", spinning ? "1" : "0"),
               "AddSessionConfigEntry");
      Napi::Value optimized = options.Get("optimizedModelPath");
      if (optimized.IsString())
        CheckOrt(env, api->SetOptimizedModelFilePath(so, optimized.As<Napi::String>().Utf8Value().c_str()),
                 "SetOptimizedModelFilePath");
      const int kernel_threads =
          threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      op_ = NewSideOp(kernel_threads);
      CheckOrt(env, api->CreateCustomOpDomain(kDomain, &domain_), "CreateCustomOpDomain");
      CheckOrt(env, api->CustomOpDomain_Add(domain_, op_), "CustomOpDomain_Add");
      CheckOrt(env, api->AddCustomOpDomain(so, domain_), "AddCustomOpDomain");
      // ByteOffset: the array may view part of a larger buffer.
      const void* model = static_cast<const uint8_t*>(bytes.ArrayBuffer().Data()) + bytes.ByteOffset();
      CheckOrt(env, api->CreateSessionFromArray(SharedEnv(env), model, bytes.ByteLength(), so, &session_),
               "CreateSession");
    } catch (...) {
      cleanup();
      FreeOp();
      throw;
    }
    cleanup();
    CheckOrt(env, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory_), "CreateCpuMemoryInfo");
  }

  ~Session() override { Free(); }

 private:
  void FreeOp() {
    if (domain_ != nullptr) Api()->ReleaseCustomOpDomain(domain_);
    domain_ = nullptr;
    if (op_ != nullptr) DeleteSideOp(op_);
    op_ = nullptr;
  }
  void Free() {
    if (session_ != nullptr) Api()->ReleaseSession(session_);
    session_ = nullptr;
    if (memory_ != nullptr) Api()->ReleaseMemoryInfo(memory_);
    memory_ = nullptr;
    FreeOp();
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  // run([{ name, type, dims, data }], outputNames) → [{ type, dims, data }]
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (session_ == nullptr) Fail(env, "the session was released");
    if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsArray()) Fail(env, "run(feeds, outputNames)");
    const OrtApi* api = Api();
    auto feeds = info[0].As<Napi::Array>();
    auto wanted = info[1].As<Napi::Array>();
    std::vector<std::string> input_names(feeds.Length()), output_names(wanted.Length());
    std::vector<OrtValue*> inputs(feeds.Length(), nullptr);
    std::vector<OrtValue*> outputs(wanted.Length(), nullptr);
    auto release_all = [&]() {
      for (OrtValue* v : inputs)
        if (v) api->ReleaseValue(v);
      for (OrtValue* v : outputs)
        if (v) api->ReleaseValue(v);
    };
    try {
      for (uint32_t k = 0; k < feeds.Length(); ++k) {
        Napi::Value feed_value = feeds.Get(k);
        if (!feed_value.IsObject()) Fail(env, "each feed must be an object");
        auto feed = feed_value.As<Napi::Object>();
        Napi::Value name = feed.Get("name"), type = feed.Get("type"), data = feed.Get("data");
        if (!name.IsString() || !type.IsString()) Fail(env, "a feed needs a name and a type");
        input_names[k] = name.As<Napi::String>().Utf8Value();
        const std::string at = "input " + input_names[k] + ": ";
        const ElementType* element = TypeByName(type.As<Napi::String>().Utf8Value());
        if (element == nullptr) Fail(env, at + "unsupported type " + type.As<Napi::String>().Utf8Value());
        auto array = TypedArrayOf<Napi::TypedArray>(env, data, element->js,
                                                    at + "data is not the typed array of type " + element->name);
        const std::vector<int64_t> dims = ShapeOf(env, feed.Get("dims"), at + "dims");
        uint64_t count = 1;
        for (int64_t d : dims) count *= static_cast<uint64_t>(d);
        if (count != array.ElementLength())
          Fail(env, at + "dims hold " + std::to_string(count) + " elements, data " +
                        std::to_string(array.ElementLength()));
        void* base = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
        if (input_names[k] == item_deltas_input_) CheckHandles(env, static_cast<const int64_t*>(base), count);
        CheckOrt(env,
                 api->CreateTensorWithDataAsOrtValue(memory_, base, array.ByteLength(), dims.data(), dims.size(),
                                                     element->onnx, &inputs[k]),
                 "CreateTensor");
      }
      for (uint32_t k = 0; k < wanted.Length(); ++k) {
        Napi::Value name = wanted.Get(k);
        if (!name.IsString()) Fail(env, "output names must be strings");
        output_names[k] = name.As<Napi::String>().Utf8Value();
      }
      std::vector<const char*> in_ptrs, out_ptrs;
      for (auto& n : input_names) in_ptrs.push_back(n.c_str());
      for (auto& n : output_names) out_ptrs.push_back(n.c_str());
      CheckOrt(env,
               api->Run(session_, nullptr, in_ptrs.data(), inputs.data(), inputs.size(), out_ptrs.data(),
                        out_ptrs.size(), outputs.data()),
               "Run");
      Napi::Array result = Napi::Array::New(env, outputs.size());
      for (uint32_t k = 0; k < outputs.size(); ++k) result.Set(k, ToJs(env, outputs[k], output_names[k]));
      release_all();
      return result;
    } catch (...) {
      release_all();
      throw;
    }
  }

  void CheckHandles(Napi::Env env, const int64_t* handles, uint64_t count) {
    for (uint64_t k = 0; k < count; ++k) {
      if (handles[k] == 0) continue;
      auto entry = handles[k] > 0 ? FindDelta(static_cast<uint64_t>(handles[k])) : nullptr;
      if (!entry || entry->owner != OwnerOf(env))
        Fail(env, "item " + std::to_string(k) + " names delta handle " + std::to_string(handles[k]) +
                      ", which is not registered (released?)");
    }
  }

  Napi::Value ToJs(Napi::Env env, OrtValue* value, const std::string& name) {
    const OrtApi* api = Api();
    OrtTensorTypeAndShapeInfo* shape = nullptr;
    CheckOrt(env, api->GetTensorTypeAndShape(value, &shape), "GetTensorTypeAndShape");
    ONNXTensorElementDataType onnx;
    size_t rank = 0, count = 0;
    std::vector<int64_t> dims;
    OrtStatus* status = api->GetTensorElementType(shape, &onnx);
    if (!status) status = api->GetDimensionsCount(shape, &rank);
    if (!status) {
      dims.resize(rank);
      status = api->GetDimensions(shape, dims.data(), rank);
    }
    if (!status) status = api->GetTensorShapeElementCount(shape, &count);
    api->ReleaseTensorTypeAndShapeInfo(shape);
    CheckOrt(env, status, "output shape");
    const ElementType* element = TypeByOnnx(onnx);
    if (element == nullptr) Fail(env, "output " + name + " has an unsupported element type");
    void* data = nullptr;
    CheckOrt(env, api->GetTensorMutableData(value, &data), "GetTensorMutableData");
    auto buffer = Napi::ArrayBuffer::New(env, count * element->bytes);
    if (count > 0) std::memcpy(buffer.Data(), data, count * element->bytes);
    Napi::Value array;
    switch (element->js) {
      case napi_float32_array: array = Napi::Float32Array::New(env, count, buffer, 0); break;
      case napi_float64_array: array = Napi::Float64Array::New(env, count, buffer, 0); break;
      case napi_bigint64_array: array = Napi::BigInt64Array::New(env, count, buffer, 0); break;
      case napi_biguint64_array: array = Napi::BigUint64Array::New(env, count, buffer, 0); break;
      case napi_int32_array: array = Napi::Int32Array::New(env, count, buffer, 0); break;
      case napi_uint32_array: array = Napi::Uint32Array::New(env, count, buffer, 0); break;
      case napi_int16_array: array = Napi::Int16Array::New(env, count, buffer, 0); break;
      case napi_uint16_array: array = Napi::Uint16Array::New(env, count, buffer, 0); break;
      case napi_int8_array: array = Napi::Int8Array::New(env, count, buffer, 0); break;
      default: array = Napi::Uint8Array::New(env, count, buffer, 0); break;
    }
    Napi::Array js_dims = Napi::Array::New(env, dims.size());
    for (uint32_t k = 0; k < dims.size(); ++k) js_dims.Set(k, Napi::Number::New(env, static_cast<double>(dims[k])));
    Napi::Object out = Napi::Object::New(env);
    out.Set("type", element->name);
    out.Set("dims", js_dims);
    out.Set("data", array);
    return out;
  }

  OrtSession* session_ = nullptr;
  OrtMemoryInfo* memory_ = nullptr;
  OrtCustomOpDomain* domain_ = nullptr;
  OrtCustomOp* op_ = nullptr;
  std::string item_deltas_input_;
};

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  GetInstance(env);
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("apiVersion", Napi::Function::New(env, ApiVersion, "apiVersion"));
  exports.Set("registerDelta", Napi::Function::New(env, RegisterDeltaJs, "registerDelta"));
  exports.Set("releaseDelta", Napi::Function::New(env, ReleaseDeltaJs, "releaseDelta"));
  exports.Set("groupByColumn", Napi::Function::New(env, GroupByColumnJs, "groupByColumn"));
  exports.Set("packI4ByColumn", Napi::Function::New(env, PackI4ByColumnJs, "packI4ByColumn"));
  exports.Set("Session", Session::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(deltaserve_ort_custom_op, InitModule)
