// Coroutines waiting for a condition to change: a line arrived, an ACK came,
// there is room to write, the link went up or down.
//
// notify_all() resumes every waiter (through asio::post, never inside the
// caller); each re-checks its condition and waits again if it still does not
// hold. An empty list is one pointer, and a wait allocates one small node
// holding the coroutine's completion handler: lighter than an asio timer used
// as a condition variable (120 bytes each, plus a timer-queue entry per wait).
//
// One thread: waits and notifications happen on the io_context's thread.
// A wait honours asio's per-operation cancellation (awaitable operators):
// cancelled, it is resumed and the coroutine's next co_await throws.
#pragma once

#include <asio.hpp>
#include <memory>
#include <utility>

namespace resilink {

class WaitList {
 public:
  WaitList() = default;
  // Waiters still queued are dropped unresumed: their coroutines are
  // destroyed through their executors.
  ~WaitList();
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  // Suspends until the next notify_all() (or cancellation).
  asio::awaitable<void> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
        [this](auto handler) { enqueue(std::move(handler)); }, asio::use_awaitable);
  }

  void notify_all();
  bool empty() const { return newest_ == nullptr; }

 private:
  struct Waiter {
    Waiter* older = nullptr;
    virtual ~Waiter() = default;
    // Posts the completion handler to its executor and deletes the node. The
    // handler clears its cancellation slot when it runs.
    virtual void resume() = 0;
    // Deletes the node without resuming, its cancellation slot cleared.
    virtual void drop() = 0;
  };

  template <class Handler>
  struct HandlerWaiter final : Waiter {
    explicit HandlerWaiter(Handler h) : handler(std::move(h)) {}
    void resume() override {
      Handler ready = std::move(handler);
      delete this;
      asio::post(std::move(ready));
    }
    void drop() override {
      asio::get_associated_cancellation_slot(handler).clear();
      delete this;
    }
    Handler handler;
  };

  // Installed in a waiter's cancellation slot, which asio clears only when
  // the resumed coroutine runs: a signal in between finds the waiter gone
  // from the list and does nothing.
  struct CancelWaiter {
    WaitList* list;
    Waiter* waiter;
    void operator()(asio::cancellation_type) const {
      if (list->remove_if_present(waiter)) waiter->resume();
    }
  };

  template <class Handler>
  void enqueue(Handler handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto* waiter = new HandlerWaiter<Handler>(std::move(handler));
    append(*waiter);
    if (slot.is_connected()) slot.template emplace<CancelWaiter>(CancelWaiter{this, waiter});
  }

  void append(Waiter& waiter);
  // Compares pointers only: `waiter` may already be deleted.
  bool remove_if_present(const Waiter* waiter);

  // Newest first; notify_all() resumes them oldest first.
  Waiter* newest_ = nullptr;
};

}  // namespace resilink
