// The engines' buffer blocks (line buffer, rx queue, window, send buffer:
// core::EngineBase::kBufferBytes, about 58 KB with the Linux capacities),
// shared by the links of one Server.
//
// A Connection borrows a block for each engine call and gives it back as soon
// as its engine holds nothing in it (buffers_idle()): an idle link, which only
// trades keepalives, costs its engine's state alone, and busy links share the
// blocks kept here. One thread, like the Server.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <vector>

#include "resilink/core/engine.h"

namespace resilink {

struct alignas(8) BufferBlock {
  uint8_t bytes[core::EngineBase::kBufferBytes];
};

class BufferPool {
 public:
  // Free blocks kept beyond this are freed: a burst that had many links busy
  // at once does not pin their blocks for the server's life.
  static constexpr size_t kMaxFree = 256;

  BufferPool() { free_.reserve(kMaxFree); }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A free block, or a new one. Its contents are whatever they were.
  std::unique_ptr<BufferBlock> take() {
    ++lent_;
    if (free_.empty()) return std::make_unique_for_overwrite<BufferBlock>();
    std::unique_ptr<BufferBlock> block = std::move(free_.back());
    free_.pop_back();
    return block;
  }

  void give_back(std::unique_ptr<BufferBlock> block) {
    --lent_;
    if (free_.size() < kMaxFree) free_.push_back(std::move(block));  // reserved: no allocation
  }

  size_t lent() const { return lent_; }
  size_t free_blocks() const { return free_.size(); }

 private:
  std::vector<std::unique_ptr<BufferBlock>> free_;
  size_t lent_ = 0;
};

}  // namespace resilink
