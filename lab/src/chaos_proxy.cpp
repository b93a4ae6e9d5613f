// The chaos proxy: the listener, the active toxics, the schedules and the
// stats. Connections are in chaos_connection.cpp, the control protocol in
// chaos_control.cpp.
#include "resilink/lab/chaos_proxy.h"

#include <algorithm>
#include <future>

#include "chaos_internal.h"

namespace resilink::lab {

namespace {

class ChaosCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "resilink.chaos"; }
  std::string message(int value) const override {
    switch (static_cast<ChaosErrc>(value)) {
      case ChaosErrc::bad_toxic: return "bad toxic attribute";
      case ChaosErrc::duplicate_name: return "a toxic or schedule with that name is active";
      case ChaosErrc::stopped: return "the proxy was stopped";
    }
    return "unknown chaos error";
  }
};

asio::awaitable<void> accept_loop(std::shared_ptr<ChaosProxy::Impl> impl) {
  while (!impl->stopped) {
    auto [ec, socket] = co_await impl->acceptor.async_accept(kAsTuple);
    if (impl->stopped) co_return;
    if (ec) {
      impl->log->warn("chaos: accept failed: {}", ec.message());
      // Out of descriptors: pause instead of spinning.
      asio::steady_timer pause(impl->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    uint64_t id = impl->next_connection_id++;
    ++impl->counters.accepted;
    auto conn = std::make_shared<ChaosConnection>(impl, id, std::move(socket));
    impl->connections[id] = conn;
    impl->log->debug("chaos #{}: accepted a connection from {}", id, conn->peer());
    conn->start();
  }
}

asio::awaitable<void> schedule_loop(std::shared_ptr<ChaosProxy::Impl> impl, std::shared_ptr<ScheduleState> s) {
  for (;;) {
    FaultPlan::Occurrence o = s->plan.next();
    s->timer.expires_at(s->base + std::chrono::milliseconds(o.start_ms));
    co_await s->timer.async_wait(kAsTuple);
    if (s->cancelled || impl->stopped) co_return;
    Toxic toxic = s->spec.toxic;
    toxic.name = s->name;
    std::string why;
    if (impl->add_toxic(toxic, &why, /*from_schedule=*/true)) {
      impl->log->warn("chaos: schedule '{}': fault skipped: {}", s->name, why);
    } else {
      s->fault_active = true;
    }
    if (o.duration_ms > 0) {
      s->timer.expires_at(s->base + std::chrono::milliseconds(o.start_ms + o.duration_ms));
      co_await s->timer.async_wait(kAsTuple);
      if (s->cancelled || impl->stopped) co_return;
    }
    if (s->fault_active) {
      s->fault_active = false;
      impl->remove_toxic(s->name);
    }
  }
}

}  // namespace

const std::error_category& chaos_category() {
  static const ChaosCategory category;
  return category;
}

std::error_code make_error_code(ChaosErrc e) { return {static_cast<int>(e), chaos_category()}; }

// ---------------------------------------------------------------- Impl

ChaosProxy::Impl::Impl(asio::io_context& io_, ChaosOptions options_)
    : io(io_),
      options(std::move(options_)),
      log(options.logger ? options.logger : spdlog::default_logger()),
      acceptor(io_),
      control_acceptor(io_) {}

std::error_code ChaosProxy::Impl::add_toxic(Toxic toxic, std::string* why, bool from_schedule) {
  if (stopped) {
    if (why) *why = "the proxy was stopped";
    return make_error_code(ChaosErrc::stopped);
  }
  if (toxic.name.empty()) toxic.name = to_string(toxic.type);
  if (toxic.type == ToxicType::half_open && toxic.stream == Stream::both) toxic.stream = Stream::upstream;
  std::string problem = validate_toxic(toxic);
  std::error_code ec;
  if (!problem.empty()) {
    ec = make_error_code(ChaosErrc::bad_toxic);
  } else if (std::any_of(toxics.begin(), toxics.end(), [&](const Toxic& t) { return t.name == toxic.name; })) {
    problem = "a toxic named '" + toxic.name + "' is already active";
    ec = make_error_code(ChaosErrc::duplicate_name);
  } else if (!from_schedule && std::any_of(schedules.begin(), schedules.end(), [&](const auto& s) {
               return s->name == toxic.name;
             })) {
    problem = "a schedule is named '" + toxic.name + "'";
    ec = make_error_code(ChaosErrc::duplicate_name);
  }
  if (ec) {
    log->error("chaos: cannot add toxic '{}': {}", format_toxic(toxic), problem);
    if (why) *why = problem;
    return ec;
  }
  auto at = std::chrono::steady_clock::now();  // before it acts: it may reset connections
  toxics.push_back(toxic);
  log->info("chaos: toxic start: {}", format_toxic(toxic));
  toxics_changed();
  emit(toxic, true, at);
  return {};
}

bool ChaosProxy::Impl::remove_toxic(std::string_view name) {
  auto it = std::find_if(toxics.begin(), toxics.end(), [&](const Toxic& t) { return t.name == name; });
  if (it == toxics.end()) return false;
  Toxic toxic = *it;
  auto at = std::chrono::steady_clock::now();
  toxics.erase(it);
  log->info("chaos: toxic end: {}", format_toxic(toxic));
  toxics_changed();
  emit(toxic, false, at);
  return true;
}

bool ChaosProxy::Impl::cancel_schedule(std::string_view name) {
  auto it = std::find_if(schedules.begin(), schedules.end(), [&](const auto& s) { return s->name == name; });
  if (it == schedules.end()) return false;
  std::shared_ptr<ScheduleState> s = *it;
  schedules.erase(it);
  s->cancelled = true;
  s->timer.cancel();
  log->info("chaos: schedule '{}' cancelled", s->name);
  if (s->fault_active) {
    s->fault_active = false;
    remove_toxic(s->name);
  }
  return true;
}

bool ChaosProxy::Impl::add_schedule(FaultSchedule schedule, std::string* why, std::string* name_out) {
  std::string problem = stopped ? "the proxy was stopped" : validate_schedule(schedule);
  uint64_t number = schedules_created + 1;
  std::string name = schedule.toxic.name.empty()
                         ? std::string(to_string(schedule.toxic.type)) + "-s" + std::to_string(number)
                         : schedule.toxic.name;
  if (problem.empty()) {
    bool taken = std::any_of(schedules.begin(), schedules.end(), [&](const auto& s) { return s->name == name; }) ||
                 std::any_of(toxics.begin(), toxics.end(), [&](const Toxic& t) { return t.name == name; });
    if (taken) problem = "a toxic or schedule named '" + name + "' is active";
  }
  if (!problem.empty()) {
    log->error("chaos: cannot schedule '{}': {}", format_schedule(schedule), problem);
    if (why) *why = problem;
    return false;
  }
  ++schedules_created;
  if (schedule.toxic.type == ToxicType::half_open && schedule.toxic.stream == Stream::both)
    schedule.toxic.stream = Stream::upstream;
  auto state = std::make_shared<ScheduleState>(io, schedule, name, derive_seed(options.seed, number));
  schedules.push_back(state);
  log->info("chaos: schedule '{}': {} (seed {})", name, format_schedule(schedule), options.seed);
  if (name_out) *name_out = name;
  asio::co_spawn(io, schedule_loop(self.lock(), state), asio::detached);
  return true;
}

size_t ChaosProxy::Impl::clear() {
  size_t count = toxics.size() + schedules.size();
  while (!schedules.empty()) cancel_schedule(std::string(schedules.front()->name));
  while (!toxics.empty()) remove_toxic(std::string(toxics.front().name));
  return count;
}

bool ChaosProxy::Impl::blocking() const {
  return std::any_of(toxics.begin(), toxics.end(), [](const Toxic& t) { return is_blocking(t.type); });
}

void ChaosProxy::Impl::toxics_changed() {
  // A connection may close (reset_peer) and leave the map while we go.
  std::vector<std::shared_ptr<ChaosConnection>> all;
  all.reserve(connections.size());
  for (auto& [id, conn] : connections) all.push_back(conn);
  for (auto& conn : all) conn->toxics_changed();
}

void ChaosProxy::Impl::emit(const Toxic& toxic, bool active, std::chrono::steady_clock::time_point at) {
  if (!event_callback) return;
  FaultEvent event{toxic.name, toxic.type, toxic.stream, active, at};
  event_callback(event);
}

void ChaosProxy::Impl::connection_closed(uint64_t id) { connections.erase(id); }

void ChaosProxy::Impl::stop() {
  if (stopped) return;
  stopped = true;
  std::error_code ignored;
  acceptor.close(ignored);
  control_acceptor.close(ignored);
  for (auto& weak : control_sockets)
    if (auto socket = weak.lock()) socket->close(ignored);
  control_sockets.clear();
  // Connections first, so that ending an outage below does not connect the
  // held ones upstream.
  std::vector<std::shared_ptr<ChaosConnection>> all;
  for (auto& [id, conn] : connections) all.push_back(conn);
  for (auto& conn : all) conn->stop();
  connections.clear();
  clear();  // every active toxic reports its end
  log->info("chaos: stopped");
}

// ---------------------------------------------------------------- ChaosProxy

ChaosProxy::ChaosProxy(asio::io_context& io, ChaosOptions options)
    : io_(io), impl_(std::make_shared<Impl>(io, std::move(options))) {
  impl_->self = impl_;
}

ChaosProxy::~ChaosProxy() { impl_->stop(); }

std::error_code ChaosProxy::start() {
  Impl& s = *impl_;
  if (s.stopped) return make_error_code(ChaosErrc::stopped);
  std::error_code ec;
  auto address = asio::ip::make_address(s.options.listen_address, ec);
  tcp::endpoint endpoint(address, s.options.listen_port);
  if (!ec) s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.log->error("chaos: cannot listen on {}:{}: {}", s.options.listen_address, s.options.listen_port,
                 ec.message());
    return ec;
  }
  s.log->info("chaos: listening on {}:{}, upstream {}:{}, seed {}", s.options.listen_address, port(),
              s.options.upstream_host, s.options.upstream_port, s.options.seed);
  asio::co_spawn(io_, accept_loop(impl_), asio::detached);
  return {};
}

uint16_t ChaosProxy::port() const {
  std::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

std::error_code ChaosProxy::add(Toxic toxic) { return impl_->add_toxic(std::move(toxic), nullptr); }

bool ChaosProxy::remove(std::string_view name) {
  return impl_->cancel_schedule(name) || impl_->remove_toxic(name);
}

void ChaosProxy::clear() { impl_->clear(); }

void ChaosProxy::schedule(FaultSchedule schedule) { impl_->add_schedule(std::move(schedule), nullptr); }

std::vector<Toxic> ChaosProxy::toxics() const { return impl_->toxics; }

std::vector<FaultSchedule> ChaosProxy::schedules() const {
  std::vector<FaultSchedule> out;
  for (const auto& s : impl_->schedules) {
    out.push_back(s->spec);
    out.back().toxic.name = s->name;
  }
  return out;
}

ChaosStats ChaosProxy::stats() const {
  ChaosStats stats = impl_->counters;
  stats.active = impl_->connections.size();
  return stats;
}

std::string ChaosProxy::command(std::string_view line) { return impl_->command(line); }

std::string ChaosProxy::execute(std::string_view line) {
  if (io_.get_executor().running_in_this_thread()) return impl_->command(line);
  auto promise = std::make_shared<std::promise<std::string>>();
  auto future = promise->get_future();
  asio::post(io_, [impl = impl_, promise, text = std::string(line)] { promise->set_value(impl->command(text)); });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    return "error: the proxy's io_context did not run the command within 5 s (not running?)";
  return future.get();
}

void ChaosProxy::on_event(std::function<void(const FaultEvent&)> callback) {
  impl_->event_callback = std::move(callback);
}

void ChaosProxy::stop() { impl_->stop(); }

}  // namespace resilink::lab
