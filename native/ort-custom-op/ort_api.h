// ONNX Runtime's C API, reached through the libonnxruntime.so.1 that onnxruntime-node already
// loaded (dlopen by path, dlsym("OrtGetApiBase")), never linked: linking would record the
// release's symbol version tag (OrtGetApiBase@VERS_1.x). GetApi asks for the headers' version,
// which any newer library also serves.
#pragma once
#include <onnxruntime_c_api.h>

#include <string>

namespace ort_custom_op {

/** The API table, or null before LoadOrt succeeded. */
const OrtApi* Api();

/**
 * Loads the API from `library_path`, which must already be mapped into the process (a second
 * copy of ORT must never be loaded). Returns an empty string on success, else why not.
 */
std::string LoadOrt(const std::string& library_path, std::string* version);

/** The status's message; releases the status. Empty for a null (success) status. */
std::string TakeMessage(OrtStatus* status);

}  // namespace ort_custom_op
