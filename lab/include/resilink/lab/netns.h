// Real-kernel outages: two network namespaces joined by a veth pair, and a
// switch that sets the client-side veth down and up.
//
//   <prefix>-srv namespace            <prefix>-cli namespace
//   lo, <prefix>-s  subnet.1/24 <---> <prefix>-c  subnet.2/24, lo
//
// Setting a veth down stalls TCP silently, as a WiFi drop does: no FIN, no
// RST, sends are buffered, reads just wait. When it comes back up the kernel
// re-adds the connected /24 route and retransmission delivers what was held.
//
// Linux only, and it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN). The `ip`
// binary (iproute2) builds the namespaces; link down/up is an ioctl on a socket
// that lives in the client namespace, so it is fast and safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

namespace resilink::lab {

struct NetnsOptions {
  // Names the namespaces ("<prefix>-srv", "<prefix>-cli") and the veths
  // ("<prefix>-s", "<prefix>-c"): letters, digits, '-' and '_', at most 13
  // characters (an interface name has at most 15). Empty: "rl<pid>" for the
  // first lab of this process, "rl<pid>-<n>" after it, so neither parallel
  // processes nor successive labs in one process collide.
  std::string prefix;
  // The first three octets of the /24 between the namespaces: the server is
  // subnet + ".1", the client subnet + ".2". Namespaces are private, so
  // labs with the same subnet do not collide.
  std::string subnet = "10.213.0";
};

class NetnsLab {
 public:
  // Whether this process can build the lab: CAP_SYS_ADMIN and CAP_NET_ADMIN
  // (root has both), /var/run/netns usable, the `ip` binary present. When not,
  // *why (if given) says what is missing.
  static bool can_run(std::string* why);

  // Creates namespaces "<prefix>-srv" and "<prefix>-cli", a veth pair between
  // them, the addresses, and brings lo and both veths up. Removes leftovers
  // of the same names first (a crashed earlier run). On failure returns nullptr
  // and sets *error (if given) to the failing step and ip's stderr; whatever
  // was built is removed again.
  static std::unique_ptr<NetnsLab> create(NetnsOptions options, std::string* error);

  // Deletes both namespaces, which deletes the veths once nothing else holds
  // them (a socket or thread still inside keeps its namespace alive). Never
  // throws.
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  const std::string& server_address() const { return server_address_; }
  const std::string& client_address() const { return client_address_; }
  const std::string& server_namespace() const { return server_namespace_; }
  const std::string& client_namespace() const { return client_namespace_; }
  const std::string& server_interface() const { return server_interface_; }
  const std::string& client_interface() const { return client_interface_; }

  // Moves the calling thread (only it, for good) into that namespace with
  // setns(2); sockets it creates afterwards live there. A socket keeps its
  // namespace, so once created it may be used from any thread.
  std::error_code enter_server() const;
  std::error_code enter_client() const;

  // Runs fn on a new thread inside that namespace and waits for it: the way
  // to create sockets there without moving the calling thread. Returns the
  // setns error (fn then does not run).
  std::error_code run_in_server(const std::function<void()>& fn) const;
  std::error_code run_in_client(const std::function<void()>& fn) const;

  // Outage control: sets the client-side veth down (false) or up (true).
  // Safe to call from any thread; setting the state it already has is a no-op.
  std::error_code set_link(bool up);
  bool link_up() const { return link_up_.load(); }
  // Times set_link(false) took the link down.
  uint32_t outages() const { return outages_.load(); }

 private:
  NetnsLab() = default;
  std::error_code run_in(int namespace_fd, const std::function<void()>& fn) const;

  std::string server_namespace_;
  std::string client_namespace_;
  std::string server_interface_;
  std::string client_interface_;
  std::string server_address_;
  std::string client_address_;
  std::string ip_binary_;
  int server_fd_ = -1;   // /var/run/netns/<prefix>-srv, for setns
  int client_fd_ = -1;   // /var/run/netns/<prefix>-cli, for setns
  int control_fd_ = -1;  // a datagram socket in the client namespace, for SIOCSIFFLAGS
  std::mutex link_mutex_;
  std::atomic<bool> link_up_{false};
  std::atomic<uint32_t> outages_{0};
};

}  // namespace resilink::lab
