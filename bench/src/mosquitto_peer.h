// The peer reference of the rtt section: Debian's mosquitto broker started on
// a free loopback port, and a minimal MQTT 3.1.1 publisher that times
// PUBLISH (qos 1) -> PUBACK.
//
// The publisher speaks MQTT itself over a blocking TCP_NODELAY socket, the way
// the raw TCP baseline does, rather than through libmosquitto: its network
// loop (select plus a mutex per packet) would be charged to the broker.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace resilink::bench::loopback {

class MosquittoBroker {
 public:
  static constexpr const char* kBinary = "/usr/sbin/mosquitto";
  static bool installed();

  // Starts the broker (listener 127.0.0.1:port, anonymous, no persistence) and
  // waits until it accepts connections. Throws std::runtime_error with the
  // broker's last log line if it does not come up.
  MosquittoBroker();
  ~MosquittoBroker();  // SIGTERM, wait, remove the temporary directory
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  uint16_t port() const { return port_; }
  std::string version() const;  // "mosquitto version 2.0.11", from its log

 private:
  std::string last_log_line() const;
  void stop();

  std::string directory_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

class MqttQos1Publisher {
 public:
  // Connects and completes CONNECT/CONNACK (clean session, no keepalive).
  explicit MqttQos1Publisher(uint16_t port);
  ~MqttQos1Publisher();
  MqttQos1Publisher(const MqttQos1Publisher&) = delete;
  MqttQos1Publisher& operator=(const MqttQos1Publisher&) = delete;

  // PUBLISH at qos 1; returns once the matching PUBACK has arrived. Throws on
  // a socket error or an unexpected packet.
  void publish(std::string_view topic, std::string_view payload);

 private:
  int fd_ = -1;
  uint16_t packet_id_ = 0;
  std::string packet_;
};

}  // namespace resilink::bench::loopback
