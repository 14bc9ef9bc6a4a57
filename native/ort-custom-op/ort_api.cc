#include "ort_api.h"

#include <dlfcn.h>

namespace ort_custom_op {
namespace {
const OrtApi* g_api = nullptr;
std::string g_version;
}

const OrtApi* Api() { return g_api; }

std::string LoadOrt(const std::string& library_path, std::string* version) {
  if (g_api != nullptr) {
    *version = g_version;
    return "";
  }
  // RTLD_NOLOAD: only a library already in the process (onnxruntime-node's), never a new copy.
  void* handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (handle == nullptr) {
    const char* error = dlerror();
    return "onnxruntime-node has not loaded " + library_path + (error ? std::string(" (") + error + ")" : "");
  }
  using GetApiBase = const OrtApiBase* (*)();
  auto get_api_base = reinterpret_cast<GetApiBase>(dlsym(handle, "OrtGetApiBase"));
  if (get_api_base == nullptr) return library_path + " has no OrtGetApiBase";
  const OrtApiBase* base = get_api_base();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  if (api == nullptr)
    return std::string("ONNX Runtime ") + base->GetVersionString() + " does not serve API version " +
           std::to_string(ORT_API_VERSION);
  g_api = api;
  g_version = base->GetVersionString();
  *version = g_version;
  return "";
}

std::string TakeMessage(OrtStatus* status) {
  if (status == nullptr) return "";
  std::string message = g_api->GetErrorMessage(status);
  g_api->ReleaseStatus(status);
  return message;
}

}  // namespace ort_custom_op
