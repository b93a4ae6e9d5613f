// The chaos proxy's control protocol: one command per line, one reply line
// each, starting "ok" or "error: ". Served on stdin by `resilink chaos` and
// on a loopback TCP port by listen_control().
#include "chaos_internal.h"

namespace resilink::lab {

namespace {

constexpr size_t kMaxControlLine = 4096;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

std::string join(const std::vector<std::string>& items) {
  if (items.empty()) return "(none)";
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

asio::awaitable<void> control_session(std::shared_ptr<ChaosProxy::Impl> impl, std::shared_ptr<tcp::socket> socket) {
  std::string buffer;
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(*socket, asio::dynamic_buffer(buffer, kMaxControlLine), '\n',
                                                   kAsTuple);
    if (impl->stopped) co_return;
    std::string reply;
    if (ec == asio::error::not_found) {
      reply = "error: command line longer than " + std::to_string(kMaxControlLine) + " bytes; closing\n";
    } else if (ec) {
      co_return;  // the controller went away
    } else {
      std::string line = buffer.substr(0, n);
      buffer.erase(0, n);
      reply = impl->command(line) + "\n";
    }
    auto [write_error, written] = co_await asio::async_write(*socket, asio::buffer(reply), kAsTuple);
    if (write_error || ec || impl->stopped) co_return;
  }
}

asio::awaitable<void> control_accept_loop(std::shared_ptr<ChaosProxy::Impl> impl) {
  while (!impl->stopped) {
    auto [ec, socket] = co_await impl->control_acceptor.async_accept(kAsTuple);
    if (impl->stopped || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      impl->log->warn("chaos: control accept failed: {}", ec.message());
      continue;
    }
    auto shared = std::make_shared<tcp::socket>(std::move(socket));
    std::erase_if(impl->control_sockets, [](const auto& weak) { return weak.expired(); });
    impl->control_sockets.push_back(shared);
    asio::co_spawn(impl->io, control_session(impl, shared), asio::detached);
  }
}

}  // namespace

std::string ChaosProxy::command_help() {
  return "commands: add <toxic>, remove <name>, clear, list, stats, schedule <toxic> every=<t>[+-<t>] "
         "[for=<t>[+-<t>]], help; toxics: outage, half_open [stream=upstream|downstream], "
         "reset_peer [timeout=<t>], slow_close delay=<t>, limit_data bytes=<n>, "
         "slicer average_size=<n> size_variation=<n> delay=<t>, latency latency=<t> jitter=<t>, "
         "bandwidth rate=<bytes/s>; each takes name=<word> and stream=upstream|downstream|both";
}

std::string ChaosProxy::Impl::command(std::string_view line) {
  line = trim(line);
  size_t space = line.find_first_of(" \t");
  std::string_view verb = line.substr(0, space);
  std::string_view rest = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space + 1));
  std::string why;
  if (verb.empty()) return "error: empty command (try help)";
  if (verb == "add") {
    auto toxic = parse_toxic(rest, &why);
    if (!toxic) return "error: " + why;
    if (toxic->name.empty()) toxic->name = to_string(toxic->type);
    if (add_toxic(*toxic, &why)) return "error: " + why;
    return "ok added " + toxic->name + ": " + format_toxic(toxics.back());
  }
  if (verb == "remove") {
    if (rest.empty() || rest.find_first_of(" \t") != std::string_view::npos)
      return "error: remove takes one toxic or schedule name";
    if (cancel_schedule(rest)) return "ok removed schedule " + std::string(rest);
    if (remove_toxic(rest)) return "ok removed " + std::string(rest);
    return "error: no toxic or schedule named '" + std::string(rest) + "'";
  }
  if (verb == "clear") {
    size_t count = clear();
    return "ok cleared " + std::to_string(count) + " toxics and schedules";
  }
  if (verb == "list") {
    std::vector<std::string> active, scheduled;
    for (const Toxic& t : toxics) active.push_back(format_toxic(t));
    for (const auto& s : schedules) {
      FaultSchedule named = s->spec;
      named.toxic.name = s->name;
      scheduled.push_back(format_schedule(named));
    }
    return "ok toxics: " + join(active) + " | schedules: " + join(scheduled);
  }
  if (verb == "stats") {
    const ChaosStats& c = counters;
    return "ok accepted=" + std::to_string(c.accepted) + " active=" + std::to_string(connections.size()) +
           " bytes_upstream=" + std::to_string(c.bytes_upstream) +
           " bytes_downstream=" + std::to_string(c.bytes_downstream) + " resets=" + std::to_string(c.resets) +
           " limit_closes=" + std::to_string(c.limit_closes);
  }
  if (verb == "schedule") {
    auto schedule = parse_schedule(rest, &why);
    if (!schedule) return "error: " + why;
    std::string name;
    if (!add_schedule(*schedule, &why, &name)) return "error: " + why;
    FaultSchedule named = schedules.back()->spec;
    named.toxic.name = name;
    return "ok scheduled " + name + ": " + format_schedule(named);
  }
  if (verb == "help") return "ok " + ChaosProxy::command_help();
  return "error: unknown command '" + std::string(verb) + "' (try help)";
}

std::error_code ChaosProxy::listen_control(uint16_t port, const std::string& address) {
  Impl& s = *impl_;
  if (s.stopped) return make_error_code(ChaosErrc::stopped);
  std::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  tcp::endpoint endpoint(ip, port);
  if (!ec) s.control_acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.control_acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.control_acceptor.bind(endpoint, ec);
  if (!ec) s.control_acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.log->error("chaos: cannot listen for control on {}:{}: {}", address, port, ec.message());
    return ec;
  }
  s.log->info("chaos: control commands on {}:{}", address, control_port());
  asio::co_spawn(io_, control_accept_loop(impl_), asio::detached);
  return {};
}

uint16_t ChaosProxy::control_port() const {
  std::error_code ec;
  auto ep = impl_->control_acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace resilink::lab
