// What the scale section reads from /proc: a process's resident memory and
// CPU time, and the kernel's memory for sockets (system-wide).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace resilink::bench::scale {

// /proc/PID/status, in bytes. rss_anon is the process's own (user-space)
// memory: heap, stacks, anonymous mappings. rss_file is mapped files (the
// binary and libraries), which grows as code first runs, not per connection.
struct ProcessMemory {
  uint64_t vm_rss = 0;
  uint64_t rss_anon = 0;
  uint64_t rss_file = 0;
};
ProcessMemory read_process_memory(pid_t pid);

// utime + stime of /proc/PID/stat, in seconds (user_only: utime alone).
double process_cpu_seconds(pid_t pid, bool user_only = false);
// This process's user + system CPU time (getrusage), in seconds.
double self_cpu_seconds();

// Kernel memory that grows with TCP connections, system-wide, in bytes.
struct KernelMemory {
  uint64_t slab = 0;             // Slab of /proc/meminfo: socket, inode, file, epoll objects
  uint64_t tcp_buffers = 0;      // "TCP: mem" of /proc/net/sockstat (pages) x page size
  uint64_t tcp_sockets = 0;      // "TCP: inuse"
  std::map<std::string, uint64_t> slab_caches;  // /proc/slabinfo: cache -> active objects x size
  std::map<std::string, uint64_t> slab_object_sizes;  // /proc/slabinfo: cache -> object size
};
KernelMemory read_kernel_memory();

// The ephemeral port range, net.ipv4.ip_local_port_range (inclusive).
struct PortRange {
  uint32_t low = 32768;
  uint32_t high = 60999;
  uint32_t size() const { return high >= low ? high - low + 1 : 0; }
};
PortRange read_local_port_range();

}  // namespace resilink::bench::scale
