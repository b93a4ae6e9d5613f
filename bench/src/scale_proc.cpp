#include "scale_proc.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace resilink::bench::scale {

namespace {

// "Name:   1234 kB" lines (status, meminfo): the number in bytes.
uint64_t kb_field(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + ":");
  if (at == std::string::npos) {
    if (text.compare(0, name.size() + 1, name + ":") != 0) return 0;
    at = 0;
  } else {
    at += 1;
  }
  std::istringstream line(text.substr(at + name.size() + 1, 64));
  uint64_t kb = 0;
  line >> kb;
  return kb * 1024;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ProcessMemory read_process_memory(pid_t pid) {
  std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  ProcessMemory m;
  m.vm_rss = kb_field(status, "VmRSS");
  m.rss_anon = kb_field(status, "RssAnon");
  m.rss_file = kb_field(status, "RssFile");
  return m;
}

double process_cpu_seconds(pid_t pid, bool user_only) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + (user_only ? 0 : stime)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

KernelMemory read_kernel_memory() {
  KernelMemory k;
  k.slab = kb_field(slurp("/proc/meminfo"), "Slab");

  std::istringstream sockstat(slurp("/proc/net/sockstat"));
  std::string line;
  while (std::getline(sockstat, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    std::istringstream words(line.substr(4));
    std::string key;
    uint64_t value;
    while (words >> key >> value) {
      if (key == "mem") k.tcp_buffers = value * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
      if (key == "inuse") k.tcp_sockets = value;
    }
  }

  // Readable by root only; without it the per-cache breakdown stays empty.
  std::istringstream slabinfo(slurp("/proc/slabinfo"));
  while (std::getline(slabinfo, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
    std::istringstream words(line);
    std::string name;
    uint64_t active_objects = 0, objects = 0, object_size = 0;
    if (!(words >> name >> active_objects >> objects >> object_size)) continue;
    k.slab_caches[name] = active_objects * object_size;
    k.slab_object_sizes[name] = object_size;
  }
  return k;
}

PortRange read_local_port_range() {
  PortRange range;
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  in >> range.low >> range.high;
  return range;
}

}  // namespace resilink::bench::scale
