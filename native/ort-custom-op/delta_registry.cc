#include "delta_registry.h"

#include <mutex>

namespace ort_custom_op {
namespace {
std::mutex g_mutex;
uint64_t g_next = 1;
std::unordered_map<uint64_t, std::shared_ptr<const DeltaEntry>>& Entries() {
  static auto* entries = new std::unordered_map<uint64_t, std::shared_ptr<const DeltaEntry>>();
  return *entries;
}
}  // namespace

uint64_t RegisterDelta(std::shared_ptr<const DeltaEntry> entry) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const uint64_t handle = g_next++;
  Entries().emplace(handle, std::move(entry));
  return handle;
}

bool ReleaseDelta(uint64_t handle, const void* owner) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = Entries().find(handle);
  if (it == Entries().end() || it->second->owner != owner) return false;
  Entries().erase(it);
  return true;
}

void ReleaseAllOf(const void* owner) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto it = Entries().begin(); it != Entries().end();) {
    if (it->second->owner == owner) it = Entries().erase(it);
    else ++it;
  }
}

std::shared_ptr<const DeltaEntry> FindDelta(uint64_t handle) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = Entries().find(handle);
  return it == Entries().end() ? nullptr : it->second;
}

}  // namespace ort_custom_op
