// A logger whose lines tests can search, safely while another thread logs.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace resilink::test {

// Keeps every formatted line. base_sink holds mutex_ around sink_it_, and
// text() takes the same lock, so reading never races the writer.
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // echo: also copy each line to stderr (RESILINK_TEST_LOG=1 forces it).
  explicit CaptureSink(bool echo) : echo_(echo || std::getenv("RESILINK_TEST_LOG") != nullptr) {}

  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    text_.append(formatted.data(), formatted.size());
    if (echo_) std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  }
  void flush_() override {}

 private:
  bool echo_;
  std::string text_;
};

class LogCapture {
 public:
  explicit LogCapture(const std::string& name = "test", bool echo = true)
      : sink_(std::make_shared<CaptureSink>(echo)),
        logger_(std::make_shared<spdlog::logger>(name, sink_)) {
    logger_->set_level(spdlog::level::debug);
  }
  std::shared_ptr<spdlog::logger> logger() const { return logger_; }
  std::string text() { return sink_->text(); }
  bool contains(const std::string& needle) { return text().find(needle) != std::string::npos; }

 private:
  std::shared_ptr<CaptureSink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace resilink::test
