# The mixed engine's side-path kernel (native/side-kernel), built at install by
# scripts/build-native.mjs. N-API only, so one build serves every Node version. Baseline x86-64
# code; the AVX2 and AVX-512 loops are chosen at run time (native/side-kernel/kernel.cc), never
# -march=native. -ffp-contract=off: no fused multiply-add, so every path gives the same bits.
{
  'targets': [
    {
      'target_name': 'deltaserve_side_kernel',
      'sources': [
        'native/side-kernel/binding.cc',
        'native/side-kernel/kernel.cc',
        'native/side-kernel/thread_pool.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8'],
      # gyp's `!` lists filter the final flags, so they name only what Node's common.gypi adds.
      'cflags!': ['-O2', '-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
      'cflags': ['-O3', '-ffp-contract=off', '-fvisibility=hidden'],
      'cflags_cc': ['-std=c++17', '-fexceptions'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'OTHER_CFLAGS': ['-O3', '-ffp-contract=off'],
      },
    },
  ],
}
