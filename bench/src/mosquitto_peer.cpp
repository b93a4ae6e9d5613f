#include "mosquitto_peer.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "bench_util.h"

extern char** environ;

namespace resilink::bench::loopback {

// ---------------------------------------------------------------- broker

bool MosquittoBroker::installed() { return ::access(kBinary, X_OK) == 0; }

MosquittoBroker::MosquittoBroker() {
  char directory[] = "/tmp/resilink-bench-mosquitto-XXXXXX";
  if (!::mkdtemp(directory)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  directory_ = directory;
  // The broker drops root for its own user, which must read the config.
  std::filesystem::permissions(directory_, std::filesystem::perms::owner_all |
                                               std::filesystem::perms::group_read |
                                               std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_read |
                                               std::filesystem::perms::others_exec);
  // A port the kernel just handed out and released: free unless another
  // process takes it in the next milliseconds (then the broker fails to bind
  // and we say so).
  Listener probe = listen_loopback();
  port_ = probe.port;
  ::close(probe.fd);

  std::string config = directory_ + "/mosquitto.conf";
  std::ofstream(config) << "listener " << port_ << " 127.0.0.1\n"
                        << "allow_anonymous true\n"
                        << "persistence false\n"
                        << "log_dest stderr\n";
  std::string log = directory_ + "/mosquitto.log";

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string binary = kBinary, flag = "-c";
  char* argv[] = {binary.data(), flag.data(), config.data(), nullptr};
  int rc = ::posix_spawn(&pid_, kBinary, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    std::filesystem::remove_all(directory_);
    throw std::system_error(rc, std::generic_category(), "spawn " + binary);
  }

  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::string why = "mosquitto exited at start: " + last_log_line();
      std::filesystem::remove_all(directory_);
      throw std::runtime_error(why);
    }
    try {
      ::close(connect_loopback(port_));
      return;
    } catch (const std::system_error&) {
    }
    if (std::chrono::steady_clock::now() > give_up) {
      std::string why = "mosquitto did not accept connections within 5 s: " + last_log_line();
      stop();
      throw std::runtime_error(why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

MosquittoBroker::~MosquittoBroker() { stop(); }

void MosquittoBroker::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }
  if (!directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    directory_.clear();
  }
}

std::string MosquittoBroker::last_log_line() const {
  std::ifstream in(directory_ + "/mosquitto.log");
  std::string line, last = "(no log)";
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::string MosquittoBroker::version() const {
  std::ifstream in(directory_ + "/mosquitto.log");
  std::string line;
  while (std::getline(in, line)) {
    size_t at = line.find("mosquitto version ");
    if (at == std::string::npos) continue;
    std::string version = line.substr(at);
    size_t end = version.find(' ', sizeof "mosquitto version");
    return end == std::string::npos ? version : version.substr(0, end);
  }
  return "mosquitto";
}

// ---------------------------------------------------------------- publisher

namespace {

// MQTT's variable-length "remaining length" (7 bits per byte, high bit: more).
void append_remaining_length(std::string& out, size_t length) {
  do {
    auto byte = static_cast<uint8_t>(length % 128);
    length /= 128;
    if (length > 0) byte |= 0x80;
    out += static_cast<char>(byte);
  } while (length > 0);
}

void append_u16(std::string& out, size_t value) {
  out += static_cast<char>((value >> 8) & 0xff);
  out += static_cast<char>(value & 0xff);
}

void append_string(std::string& out, std::string_view text) {
  append_u16(out, text.size());
  out += text;
}

}  // namespace

MqttQos1Publisher::MqttQos1Publisher(uint16_t port) : fd_(connect_loopback(port)) {
  std::string body;
  append_string(body, "MQTT");
  body += '\x04';  // protocol level: 3.1.1
  body += '\x02';  // clean session
  append_u16(body, 0);  // keepalive 0: off (the link idles between repetitions)
  append_string(body, "resilink-bench");
  std::string connect = "\x10";  // CONNECT
  append_remaining_length(connect, body.size());
  connect += body;
  send_all(fd_, connect.data(), connect.size());

  uint8_t connack[4];
  receive_exactly(fd_, connack, sizeof connack);
  if (connack[0] != 0x20 || connack[1] != 2 || connack[3] != 0) {
    ::close(fd_);
    throw std::runtime_error("mosquitto refused the MQTT connection (CONNACK return code " +
                             std::to_string(connack[3]) + ")");
  }
}

MqttQos1Publisher::~MqttQos1Publisher() {
  if (fd_ < 0) return;
  const uint8_t disconnect[] = {0xe0, 0};
  try {
    send_all(fd_, disconnect, sizeof disconnect);
  } catch (const std::system_error&) {
  }
  ::close(fd_);
}

void MqttQos1Publisher::publish(std::string_view topic, std::string_view payload) {
  packet_id_ = packet_id_ == 0xffff ? 1 : packet_id_ + 1;  // 0 is not a valid id
  packet_.clear();
  packet_ += '\x32';  // PUBLISH, qos 1
  append_remaining_length(packet_, 2 + topic.size() + 2 + payload.size());
  append_string(packet_, topic);
  append_u16(packet_, packet_id_);
  packet_ += payload;
  send_all(fd_, packet_.data(), packet_.size());

  uint8_t puback[4];
  receive_exactly(fd_, puback, sizeof puback);
  uint16_t acked = static_cast<uint16_t>(puback[2] << 8 | puback[3]);
  if (puback[0] != 0x40 || puback[1] != 2 || acked != packet_id_)
    throw std::runtime_error("mosquitto: expected PUBACK for packet " + std::to_string(packet_id_));
}

}  // namespace resilink::bench::loopback
