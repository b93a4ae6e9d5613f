#include "resilink/server/wait_list.h"

namespace resilink {

WaitList::~WaitList() {
  while (Waiter* waiter = newest_) {
    newest_ = waiter->older;
    waiter->drop();
  }
}

void WaitList::append(Waiter& waiter) {
  waiter.older = newest_;
  newest_ = &waiter;
}

bool WaitList::remove_if_present(const Waiter* waiter) {
  for (Waiter** link = &newest_; *link; link = &(*link)->older) {
    if (*link != waiter) continue;
    *link = (*link)->older;
    return true;
  }
  return false;
}

void WaitList::notify_all() {
  // Detach first: a resumed waiter runs later, but resume() deletes its node.
  // Reversed, so waiters resume in the order they began to wait.
  Waiter* oldest = nullptr;
  while (Waiter* waiter = newest_) {
    newest_ = waiter->older;
    waiter->older = oldest;
    oldest = waiter;
  }
  while (Waiter* waiter = oldest) {
    oldest = waiter->older;
    waiter->resume();
  }
}

}  // namespace resilink
