// Options of a write, shared by the server's Connection and the POSIX Client.
#pragma once

namespace resilink {

struct WriteOptions {
  bool qos = true;   // keep until acknowledged, retransmit, deliver exactly once
  bool wait = true;  // qos: wait until nothing else is in flight (keeps order)
};

}  // namespace resilink
