// The client threads of a run (ChaosRun, chaos_run.h): what each role asks of which
// VIP, request by request, and the rounds outside the chaos (warm-up, final).
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "chaos_common.h"
#include "chaos_requests.h"
#include "chaos_run.h"

namespace ringlb::test::chaos {

using namespace std::chrono_literals;

Record ChaosRun::one_request(int thread, const std::string& role, std::mt19937_64& rng,
                             std::mt19937_64& pace, const std::string& vip_name, uint16_t port,
                             bool small) {
  Record r;
  r.thread = thread;
  r.vip = vip_name;
  const std::string source =
      "127.0." + std::to_string(rng() % 4) + "." + std::to_string(1 + rng() % 250);
  const uint64_t seed = rng();
  Result res;
  r.start_us = now_us();
  if (role == "http") {
    const HttpFile& f = http_files()[rng() % http_files().size()];
    r.kind = "http";
    r.size = f.size;
    res = http_get(port, source, f);
  } else {
    TcpSpec spec;
    if (role == "echo") {
      r.kind = "echo";
      r.size = 1 + rng() % 2000;
      spec.line = "E\n";
      spec.send_len = spec.expect_len = r.size;
      spec.send_seed = spec.expect_seed = seed;
    } else if (role == "slow") {
      r.kind = "slow";
      r.size = small ? (256 << 10) + rng() % (768 << 10) : (1 << 20) + rng() % (3 << 20);
      spec.line = "S " + std::to_string(r.size) + " " + std::to_string(seed) + "\n";
      spec.expect_len = r.size;
      spec.expect_seed = seed;
      spec.half_close = false;
      spec.slow = true;
    } else {
      const uint64_t k = rng() % 3;
      r.size = (1 << 20) + rng() % (small ? 3 << 20 : 15 << 20);
      if (k == 0) {
        r.kind = "stream_echo";
        spec.line = "E\n";
        spec.send_len = spec.expect_len = r.size;
        spec.send_seed = spec.expect_seed = seed;
      } else if (k == 1) {
        r.kind = "stream_source";
        spec.line = "S " + std::to_string(r.size) + " " + std::to_string(seed) + "\n";
        spec.expect_len = r.size;
        spec.expect_seed = seed;
        spec.half_close = false;
      } else {
        r.kind = "stream_sink";
        spec.line = "K " + std::to_string(r.size) + "\n";
        spec.send_len = r.size;
        spec.send_seed = seed;
        uint64_t sum = chaos::kChecksumStart;
        std::vector<uint8_t> buf(kChunk);
        for (uint64_t at = 0; at < r.size; at += kChunk) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, r.size - at));
          fast_fill(seed, at, buf.data(), n);
          sum = chaos::checksum(sum, buf.data(), n);
        }
        char text[64];
        std::snprintf(text, sizeof(text), "%" PRIu64 " %016" PRIx64 "\n", r.size, sum);
        spec.text = true;
        spec.expect_text = text;
        r.start_us = now_us();  // the checksum took a while
      }
    }
    res = tcp_exchange(port, source, spec, pace);
  }
  r.end_us = now_us();
  r.backend = res.backend;
  r.outcome = res.outcome;
  r.detail = res.detail;
  r.checked = res.checked;
  r.received = res.received;
  return r;
}

void ChaosRun::client_loop(int thread) {
  std::mt19937_64 rng(mix64(case_seed_ ^ (0xC11E47ULL + static_cast<uint64_t>(thread))));
  std::mt19937_64 pace(rng());
  const std::string role = kRoles[thread];
  auto& out = records_[static_cast<size_t>(thread)];
  const VipModel& tcp = vips_[0];
  const VipModel& http = vips_[1];
  const VipModel& extra = vips_[2];
  // Long requests start only until shortly before the end, so that stopping waits little.
  const bool long_requests = role == "stream" || role == "slow";
  for (int n = 0; n < 1000000 && !stop_clients_; ++n) {
    if (long_requests && now_us() > chaos_end_us_ - 3'000'000) {
      std::this_thread::sleep_for(20ms);
      continue;
    }
    const bool use_extra = role != "http" && role != "slow" && extra_present_ && rng() % 4 == 0;
    const VipModel& v = role == "http" ? http : use_extra ? extra : tcp;
    out.push_back(one_request(thread, role, rng, pace, v.name, v.port));
    if (out.back().outcome != Outcome::ok) {
      std::this_thread::sleep_for(10ms);  // a VIP without backends fails fast: do not spin
    }
  }
}

// A round outside the chaos (warm-up, final): `per_kind` requests of each kind, from
// as many threads as there are kinds.
std::vector<Record> ChaosRun::round(const std::string& label, int per_kind) {
  const std::vector<std::string> roles = {"echo", "http", "stream", "slow"};
  std::vector<std::vector<Record>> out(roles.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < roles.size(); ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(mix64(case_seed_ ^ std::hash<std::string>{}(label) ^ i));
      std::mt19937_64 pace(rng());
      const int n = roles[i] == "echo" || roles[i] == "http" ? 4 * per_kind : per_kind;
      for (int k = 0; k < n; ++k) {
        const VipModel& v = roles[i] == "http" ? vips_[1] : vips_[0];
        out[i].push_back(
            one_request(100 + static_cast<int>(i), roles[i], rng, pace, v.name, v.port, true));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::vector<Record> all;
  for (auto& o : out) {
    all.insert(all.end(), o.begin(), o.end());
  }
  return all;
}

}  // namespace ringlb::test::chaos
