#include "resilink/lab/toxic_pipe.h"

#include <algorithm>

namespace resilink::lab {

ToxicPipe::ToxicPipe(Stream direction, uint64_t seed, size_t capacity)
    : direction_(direction), random_(seed), capacity_(capacity) {}

void ToxicPipe::set_toxics(const std::vector<Toxic>& active) {
  toxics_.clear();
  for (const Toxic& t : active)
    if (affects(t, direction_)) toxics_.push_back(t);

  held_ = false;
  uint64_t latency = 0, jitter = 0;
  rate_ = 0;
  slicer_.reset();
  slow_close_us_ = 0;
  std::vector<Limit> limits;
  for (const Toxic& t : toxics_) {
    switch (t.type) {
      case ToxicType::outage:
      case ToxicType::half_open:
        held_ = true;
        break;
      case ToxicType::latency:
        latency += uint64_t{t.latency_ms} * 1000;
        jitter += uint64_t{t.jitter_ms} * 1000;
        break;
      case ToxicType::bandwidth:
        rate_ = rate_ == 0 ? t.rate_bytes_per_s : std::min(rate_, t.rate_bytes_per_s);
        break;
      case ToxicType::slicer:
        if (!slicer_) slicer_ = t;
        break;
      case ToxicType::slow_close:
        slow_close_us_ = std::max(slow_close_us_, uint64_t{t.delay_ms} * 1000);
        break;
      case ToxicType::limit_data: {
        // A limit keeps its count while it stays; a new one starts at 0.
        auto old = std::find_if(limits_.begin(), limits_.end(),
                                [&](const Limit& l) { return l.name == t.name; });
        limits.push_back({t.name, t.bytes, old == limits_.end() ? 0 : old->count});
        break;
      }
      case ToxicType::reset_peer:
        break;
    }
  }
  limits_ = std::move(limits);
  if (latency != latency_us_ || jitter != jitter_us_) {
    latency_us_ = latency;
    jitter_us_ = jitter;
    ++latency_generation_;  // queued chunks draw their delay again
  }
  if (!slicer_) slice_left_ = 0;
}

size_t ToxicPipe::room() const {
  if (discarded_) return capacity_;  // keep draining the source; it all goes nowhere
  if (held_ || end_ != End::none || queued_ >= capacity_) return 0;
  return capacity_ - queued_;
}

void ToxicPipe::push_data(const uint8_t* data, size_t size, uint64_t now_us) {
  if (discarded_ || size == 0) return;
  Chunk c;
  c.bytes.assign(data, data + size);
  c.arrived_us = now_us;
  queued_ += size;
  chunks_.push_back(std::move(c));
}

void ToxicPipe::push_end(End end, uint64_t now_us) {
  if (end == End::none) return;
  if (end_ == End::none || (end == End::reset && end_ == End::eof)) {
    end_ = end;
    end_passed_ = false;
    end_arrived_us_ = now_us;
    end_latency_generation_ = 0;
  }
}

uint64_t ToxicPipe::draw_latency_us() {
  if (latency_us_ == 0 && jitter_us_ == 0) return 0;
  return random_.around(latency_us_, jitter_us_);
}

ToxicPipe::Action ToxicPipe::next(uint64_t now_us) {
  Action a;
  if (discarded_ || held_) return a;
  for (const Limit& l : limits_) {
    if (l.count >= l.bytes) {
      a.kind = Action::Kind::limit_close;
      a.toxic = l.name;
      return a;
    }
  }
  auto wait_until = [&a](uint64_t until) {
    a.kind = Action::Kind::wait;
    a.until_us = until;
    return a;
  };
  if (!chunks_.empty()) {
    Chunk& c = chunks_.front();
    if (c.latency_generation != latency_generation_) {
      c.release_us = c.arrived_us + draw_latency_us();
      c.latency_generation = latency_generation_;
    }
    if (now_us < c.release_us) return wait_until(c.release_us);
    if (slicer_ && now_us < next_slice_at_us_) return wait_until(next_slice_at_us_);
    if (rate_ && now_us < bandwidth_ready_at_us_) return wait_until(bandwidth_ready_at_us_);
    uint64_t size = c.bytes.size() - c.offset;
    for (const Limit& l : limits_) size = std::min(size, l.bytes - l.count);
    if (slicer_) {
      if (slice_left_ == 0)
        slice_left_ = std::max<uint64_t>(1, random_.around(slicer_->average_size, slicer_->size_variation));
      size = std::min(size, slice_left_);
    }
    if (rate_) size = std::min(size, std::max<uint64_t>(1, rate_ / 20));
    a.kind = Action::Kind::write;
    a.data = c.bytes.data() + c.offset;
    a.size = static_cast<size_t>(size);
    return a;
  }
  if (end_ != End::none && !end_passed_) {
    if (end_latency_generation_ != latency_generation_) {
      end_latency_us_ = draw_latency_us();
      end_latency_generation_ = latency_generation_;
    }
    uint64_t release = end_arrived_us_ + end_latency_us_ + slow_close_us_;
    if (now_us < release) return wait_until(release);
    a.kind = end_ == End::eof ? Action::Kind::shutdown : Action::Kind::reset;
    return a;
  }
  return a;
}

void ToxicPipe::wrote(size_t count, uint64_t now_us) {
  if (chunks_.empty() || count == 0) return;
  Chunk& c = chunks_.front();
  count = std::min(count, c.bytes.size() - c.offset);
  c.offset += count;
  crossed_ += count;
  for (Limit& l : limits_) l.count += count;
  if (slicer_) {
    slice_left_ = slice_left_ > count ? slice_left_ - count : 0;
    if (slice_left_ == 0 && slicer_->delay_us > 0) next_slice_at_us_ = now_us + slicer_->delay_us;
  }
  if (rate_) bandwidth_ready_at_us_ = std::max(bandwidth_ready_at_us_, now_us) + count * 1000000 / rate_;
  if (c.offset == c.bytes.size()) {
    queued_ -= c.bytes.size();
    chunks_.pop_front();
  }
}

void ToxicPipe::discard() {
  discarded_ = true;
  chunks_.clear();
  queued_ = 0;
}

bool ToxicPipe::finished() const {
  if (discarded_) return end_ != End::none;
  return end_ == End::eof && end_passed_;
}

}  // namespace resilink::lab
