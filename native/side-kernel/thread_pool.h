// Threads the addon owns, kept between calls (starting threads per call costs ~50 µs each).
// One pool per Node environment (main thread or worker), so calls into it are already serial.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace side_kernel {

class ThreadPool {
 public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  /**
   * Runs `work(participant)` on the calling thread (participant 0) and on `helpers` pool threads
   * (1..helpers) and returns when all have returned. `work` must not throw.
   */
  void Run(uint32_t helpers, const std::function<void(uint32_t)>& work);

 private:
  void Loop(uint32_t id, uint64_t seen);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void(uint32_t)>* work_ = nullptr;
  uint64_t generation_ = 0;
  uint32_t active_ = 0;   // helpers asked to take part in this generation
  uint32_t pending_ = 0;  // helpers that have not finished it yet
  bool stop_ = false;
};

}  // namespace side_kernel
