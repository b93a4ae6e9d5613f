// `resilink chaos`: the fault-injecting TCP proxy (lab/chaos_proxy.h) on the
// command line. Fault events go to stdout, one line each; control commands
// come from stdin (and a loopback TCP port), one reply line each.
#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "commands.h"
#include "resilink/lab/chaos_proxy.h"

namespace resilink::apps {

namespace {

struct ChaosArgs {
  std::string listen = "127.0.0.1:0";
  std::string upstream;
  std::vector<std::string> toxics, faults, outages;
  std::string control_port;
  std::string seed = "1";
  std::string port_file;
};

struct UsageError {
  std::string message;
};

template <class T>
T parse_number(const std::string& text, const std::string& what, T max) {
  T value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max)
    throw UsageError{what + " '" + text + "': expected a whole number from 0 to " + std::to_string(max)};
  return value;
}

// "HOST:PORT" (an IPv6 host in brackets: "[::1]:9000").
std::pair<std::string, uint16_t> parse_host_port(const std::string& text, const std::string& what) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw UsageError{what + " '" + text + "': expected HOST:PORT, e.g. 127.0.0.1:9000"};
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto port = parse_number<uint32_t>(text.substr(colon + 1), what + " port", 65535);
  return {host, static_cast<uint16_t>(port)};
}

// Serialises stdout between the io thread (events) and the stdin thread (replies).
class Output {
 public:
  void line(const std::string& text) {
    std::lock_guard lock(mutex_);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  std::mutex mutex_;
};

int run_chaos(const ChaosArgs& args) {
  lab::ChaosOptions options;
  std::vector<std::string> commands;  // the toxics and faults, as control commands
  uint16_t control_port = 0;
  bool control = !args.control_port.empty();
  try {
    std::tie(options.listen_address, options.listen_port) = parse_host_port(args.listen, "--listen");
    if (args.upstream.empty()) throw UsageError{"--upstream HOST:PORT is required"};
    std::tie(options.upstream_host, options.upstream_port) = parse_host_port(args.upstream, "--upstream");
    if (options.upstream_port == 0) throw UsageError{"--upstream '" + args.upstream + "': port 0 is not a server"};
    options.seed = parse_number<uint64_t>(args.seed, "--seed", UINT64_MAX);
    if (control)
      control_port = static_cast<uint16_t>(parse_number<uint32_t>(args.control_port, "--control-port", 65535));
    std::string error;
    for (const auto& spec : args.toxics) {
      if (!lab::parse_toxic(spec, &error)) throw UsageError{"--toxic '" + spec + "': " + error};
      commands.push_back("add " + spec);
    }
    for (const auto& spec : args.faults) {
      if (!lab::parse_schedule(spec, &error)) throw UsageError{"--fault '" + spec + "': " + error};
      commands.push_back("schedule " + spec);
    }
    for (const auto& spec : args.outages) {
      if (!lab::parse_schedule("outage " + spec, &error)) throw UsageError{"--outage '" + spec + "': " + error};
      commands.push_back("schedule outage " + spec);
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "resilink chaos: %s\n", e.message.c_str());
    return 2;
  }

  asio::io_context io;
  lab::ChaosProxy proxy(io, options);
  Output out;
  auto started = std::chrono::steady_clock::now();
  proxy.on_event([&out, started](const lab::FaultEvent& e) {
    double seconds = std::chrono::duration<double>(e.at - started).count();
    char when[32];
    std::snprintf(when, sizeof when, "%.3f", seconds);
    out.line(std::string(when) + (e.active ? " start " : " end ") + e.name + " " + lab::to_string(e.type) + " " +
             lab::to_string(e.stream));
  });
  if (proxy.start()) return 1;  // logged
  for (const auto& c : commands) {
    std::string reply = proxy.command(c);
    if (reply.rfind("ok", 0) != 0) {  // e.g. two toxics with one name
      std::fprintf(stderr, "resilink chaos: %s: %s\n", c.c_str(), reply.c_str());
      return 2;
    }
  }
  if (control && proxy.listen_control(control_port)) return 1;  // logged
  if (!args.port_file.empty()) std::ofstream(args.port_file) << proxy.port() << "\n";

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    proxy.stop();
    io.stop();
  });

  // stdin may be a pipe, a terminal or a file, which epoll cannot watch: a
  // blocking reader thread hands each line to the io thread.
  std::thread reader([&proxy, &out] {
    std::string line;
    while (std::getline(std::cin, line)) out.line(proxy.execute(line));
    spdlog::info("stdin closed; still proxying until SIGINT or SIGTERM");
  });
  reader.detach();  // may be blocked in a read when we stop

  io.run();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);  // the detached stdin reader may still be blocked in read()
}

}  // namespace

void register_chaos(CLI::App& app, int& exit_status) {
  auto args = std::make_shared<ChaosArgs>();
  auto* cmd = app.add_subcommand(
      "chaos", "fault-injecting TCP proxy (Toxiproxy-style toxics, scheduled outages); fault events on "
               "stdout; control commands on stdin (try 'help')");
  // Every value is taken as text and checked by us, so each bad argument gets
  // a message naming it and exit status 2.
  cmd->add_option("--listen", args->listen, "HOST:PORT to accept clients on (port 0: any free port)")
      ->default_val("127.0.0.1:0");
  cmd->add_option("--upstream", args->upstream, "HOST:PORT of the server (required)");
  cmd->add_option("--toxic", args->toxics, "a toxic active from the start, e.g. \"latency latency=20ms\"")
      ->take_all()
      ->expected(1);
  cmd->add_option("--fault", args->faults, "a repeating fault, e.g. \"outage every=20s+-10s for=3s+-2s\"")
      ->take_all()
      ->expected(1);
  cmd->add_option("--outage", args->outages, "shorthand for --fault \"outage ...\", e.g. \"every=20s for=3s\"")
      ->take_all()
      ->expected(1);
  cmd->add_option("--control-port", args->control_port,
                  "also take control commands on TCP 127.0.0.1:PORT (0: any free port)");
  cmd->add_option("--seed", args->seed, "seed of the schedules and jitter (default 1)");
  cmd->add_option("--port-file", args->port_file, "write the bound port to this file");
  cmd->callback([args, &exit_status] { exit_status = run_chaos(*args); });
}

}  // namespace resilink::apps
