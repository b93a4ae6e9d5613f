#include "client_bridge.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <spdlog/spdlog.h>
#include <string_view>

#include "resilink/client/client.h"

namespace resilink {

namespace {

// Splits the input descriptor into message lines, holding at most max_queued
// of them and one partial line of at most Client::kMaxPayload bytes.
class InputLines {
 public:
  struct Line {
    std::string text;
    uint64_t number;  // 1-based line number in the input
  };

  InputLines(int fd, size_t max_queued, spdlog::logger& log)
      : fd_(fd), max_queued_(max_queued), log_(log) {}

  // Poll the descriptor only when everything read so far is split and there
  // is room for more lines.
  bool wants_input() const {
    return !eof_ && chunk_pos_ == chunk_len_ && lines_.size() < max_queued_;
  }
  bool eof() const { return eof_ && chunk_pos_ == chunk_len_; }
  bool empty() const { return lines_.empty(); }
  const Line& front() const { return lines_.front(); }
  void pop() {
    lines_.pop_front();
    split();  // room again: take lines from what was already read
  }
  uint64_t lines_read() const { return line_number_; }

  // One read(2): poll said it will not block (a regular file always reads).
  void read_some() {
    ssize_t n = ::read(fd_, chunk_, sizeof chunk_);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
      log_.error("reading stdin: {}; treating it as end of input", std::strerror(errno));
      n = 0;
    }
    if (n == 0) {
      eof_ = true;
      if (!partial_.empty() || oversize_length_ > 0) end_line();  // last line had no '\n'
      return;
    }
    chunk_pos_ = 0;
    chunk_len_ = static_cast<size_t>(n);
    split();
  }

 private:
  void split() {
    while (chunk_pos_ < chunk_len_ && lines_.size() < max_queued_) {
      std::string_view rest(chunk_ + chunk_pos_, chunk_len_ - chunk_pos_);
      size_t newline = rest.find('\n');
      std::string_view piece = rest.substr(0, newline);
      chunk_pos_ += piece.size();
      if (oversize_length_ > 0 || partial_.size() + piece.size() > Client::kMaxPayload) {
        oversize_length_ += partial_.size() + piece.size();
        partial_.clear();
      } else {
        partial_.append(piece);
      }
      if (newline == std::string_view::npos) return;
      ++chunk_pos_;
      end_line();
    }
  }

  void end_line() {
    ++line_number_;
    if (oversize_length_ > 0) {
      log_.error("stdin line {}: {} bytes is longer than the longest message ({} bytes); "
                 "line skipped",
                 line_number_, oversize_length_, Client::kMaxPayload);
    } else if (partial_.empty()) {
      log_.warn("stdin line {} is empty; a message cannot be empty, line skipped", line_number_);
    } else {
      lines_.push_back({std::move(partial_), line_number_});
    }
    partial_.clear();
    oversize_length_ = 0;
  }

  int fd_;
  size_t max_queued_;
  spdlog::logger& log_;
  char chunk_[4096];
  size_t chunk_pos_ = 0;
  size_t chunk_len_ = 0;
  std::string partial_;
  uint64_t oversize_length_ = 0;  // > 0 while skipping a line that is too long
  uint64_t line_number_ = 0;
  bool eof_ = false;
  std::deque<Line> lines_;
};

// Writes one received message at a time, only when the descriptor is ready.
class Output {
 public:
  explicit Output(int fd) : fd_(fd) {}
  bool empty() const { return pos_ == text_.size(); }
  void set(std::string line) {
    text_ = std::move(line);
    text_.push_back('\n');
    pos_ = 0;
  }
  // False when the descriptor failed for good.
  bool write_some() {
    while (!empty()) {
      ssize_t n = ::write(fd_, text_.data() + pos_, text_.size() - pos_);
      if (n > 0) {
        pos_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string text_;
  size_t pos_ = 0;
};

}  // namespace

int run_client_bridge(const ClientBridgeOptions& options) {
  // The command line points spdlog's default logger at stderr and sets its
  // level and pattern; stdout carries only messages.
  auto log = options.logger ? options.logger : spdlog::default_logger();
  ClientOptions client_options;
  client_options.id = options.id;
  client_options.host = options.host;
  client_options.port = options.port;
  client_options.timeout_ms = options.timeout_ms;
  client_options.logger = log;
  Client client(std::move(client_options));
  if (client.start() != core::Error::ok) return 2;  // the client logged why
  log->info("[{}] bridging stdin/stdout to {}:{}", options.id, options.host, options.port);

  InputLines input(options.input_fd, kBridgeMaxQueuedLines, *log);
  Output output(options.output_fd);
  bool in_flight = false;  // one qos message at a time: wait=true semantics
  uint32_t ticket = 0;
  uint64_t in_flight_line = 0;
  uint64_t delivered = 0;
  bool reported_eof = false;

  for (;;) {
    if (in_flight && !client.is_pending(ticket)) {
      in_flight = false;
      ++delivered;
      log->debug("[{}] stdin line {} acknowledged", options.id, in_flight_line);
    }
    while (!in_flight && !input.empty()) {
      const InputLines::Line& line = input.front();
      core::Error e = client.try_write(line.text, true, &ticket);
      if (e == core::Error::would_block) break;
      if (e == core::Error::ok) {
        in_flight = true;
        in_flight_line = line.number;
      } else {  // lines are checked when read, so this is not expected
        log->error("[{}] stdin line {} not sent: {} ({})", options.id, line.number,
                   core::error_name(e), core::error_description(e));
      }
      input.pop();
    }
    if (output.empty()) {
      if (auto message = client.try_readline()) output.set(std::move(*message));
    }
    if (input.eof() && !reported_eof) {
      reported_eof = true;
      log->info("[{}] end of stdin after {} lines; delivering what is queued", options.id,
                input.lines_read());
    }
    if (input.eof() && input.empty() && !in_flight) break;

    pollfd fds[2] = {
        {input.wants_input() ? options.input_fd : -1, POLLIN, 0},
        {output.empty() ? -1 : output.fd(), POLLOUT, 0},
    };
    client.run_once(-1, fds);
    if (fds[0].revents) input.read_some();  // POLLHUP or POLLERR: read() reports it
    if (fds[1].revents && !output.write_some()) {
      log->error("[{}] writing stdout: {}", options.id, std::strerror(errno));
      client.close();
      return 1;
    }
  }

  // Everything is acknowledged. Hand over what already arrived, then leave.
  for (;;) {
    if (output.empty()) {
      auto message = client.try_readline();
      if (!message) break;
      output.set(std::move(*message));
    }
    pollfd out = {output.fd(), POLLOUT, 0};
    int ready = ::poll(&out, 1, -1);
    if ((ready < 0 && errno != EINTR) || (ready > 0 && !output.write_some())) {
      log->error("[{}] writing stdout: {}", options.id, std::strerror(errno));
      client.close();
      return 1;
    }
  }
  client.close();
  log->info("[{}] {} messages delivered; exiting", options.id, delivered);
  return 0;
}

}  // namespace resilink
