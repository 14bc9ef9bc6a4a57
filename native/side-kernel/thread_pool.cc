#include "thread_pool.h"

namespace side_kernel {

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void ThreadPool::Run(uint32_t helpers, const std::function<void(uint32_t)>& work) {
  if (helpers > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (threads_.size() < helpers) {
      const uint32_t id = static_cast<uint32_t>(threads_.size()) + 1;
      // The generation it starts from is the one before this call's, so it takes part in it.
      threads_.emplace_back([this, id, seen = generation_] { Loop(id, seen); });
    }
    work_ = &work;
    active_ = helpers;
    pending_ = helpers;
    ++generation_;
  }
  if (helpers > 0) wake_.notify_all();
  work(0);
  if (helpers > 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    work_ = nullptr;
  }
}

void ThreadPool::Loop(uint32_t id, uint64_t seen) {
  for (;;) {
    const std::function<void(uint32_t)>* work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id > active_) continue;
      work = work_;
    }
    (*work)(id);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

}  // namespace side_kernel
