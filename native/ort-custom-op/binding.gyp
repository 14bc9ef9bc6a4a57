# The side path as an ONNX Runtime custom operator (native/ort-custom-op), built at install by
# scripts/build-native.mjs when ONNX Runtime's C API headers are at hand (ort_include_dir:
# ORT_INCLUDE_DIR, or Debian's libonnxruntime-dev headers fetched by scripts/ort-headers.sh).
# It never links ONNX Runtime: it dlopens the library onnxruntime-node already loaded.
# Same compute flags as the side kernel (binding.gyp at the root), whose kernel.cc it reuses.
{
  'variables': { 'ort_include_dir%': '' },
  'targets': [
    {
      'target_name': 'deltaserve_ort_custom_op',
      'sources': [
        'binding.cc',
        'ort_api.cc',
        'delta_registry.cc',
        'side_op.cc',
        '../side-kernel/kernel.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")", '<(ort_include_dir)'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8', 'ORT_API_MANUAL_INIT'],
      'libraries': ['-ldl'],
      'cflags!': ['-O2', '-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
      'cflags': ['-O3', '-ffp-contract=off', '-fvisibility=hidden'],
      'cflags_cc': ['-std=c++17', '-fexceptions'],
    },
  ],
}
