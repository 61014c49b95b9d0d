// One run of the chaos test: the ChaosRun class (its state, and which file holds which of
// its parts), the test's model of ringlbd's configuration, and the records of the run
// (snapshots of the good backends, disruptions, pending events).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "../proxy/harness.h"
#include "chaos_common.h"
#include "chaos_procs.h"
#include "chaos_requests.h"

namespace ringlb::test::chaos {

// ---- the model of ringlbd's configuration ----------------------------------------------

struct Member {
  std::string name;
  uint32_t weight = 1;
  std::string state = "up";
  bool removing = false;
};

struct VipModel {
  std::string name;
  uint16_t port = 0;
  bool http = false;
  bool present = true;
  std::string policy = "round_robin";
  uint32_t max_age_ms = 0;
  uint32_t retries = 0;
  std::vector<Member> members;
  std::vector<std::string> pool;  // the processes that may be members
  Member* find(const std::string& n) {
    for (auto& m : members) {
      if (m.name == n) {
        return &m;
      }
    }
    return nullptr;
  }
};

// ---- one run ---------------------------------------------------------------------------

struct Snapshot {
  int64_t us;
  std::map<std::string, std::set<std::string>> good;  // VIP -> its good backends
};

// Something that may end requests of a backend: kill, stop (t0..t1), reset, remove.
struct Disruption {
  std::string kind;
  std::string proc;  // the process (kill, stop, reset) or backend name (remove)
  std::string vip;   // remove, vip_remove
  int64_t t0;
  int64_t t1;
};

struct Pending {
  enum Kind { restart, cont, heal, settle } kind;
  std::string proc;
  std::string vip;
  std::string member;
};

struct CaseParam {
  int workers;
  bool health;
};
void PrintTo(const CaseParam& p, std::ostream* os);

// Thread roles: 0-1 short echoes, 2-3 HTTP GETs, 4 streams, 5 slow readers.
const char* const kRoles[] = {"echo", "echo", "http", "http", "stream", "slow"};

class ChaosRun {
 public:
  ChaosRun(const CaseParam& param, int case_index, std::string test_name)
      : param_(param),
        case_index_(case_index),
        test_name_(std::move(test_name)),
        case_seed_(mix64(g_options.seed * 4 + static_cast<uint64_t>(case_index))),
        rng_(case_seed_) {}

  ~ChaosRun() {
    stop_clients_ = true;
    for (auto& t : clients_) {
      if (t.joinable()) {
        t.join();
      }
    }
    watchdog_stop_ = true;
    if (watchdog_.joinable()) {
      watchdog_.join();
    }
    lb_.reset();
    procs_.clear();
    std::error_code ec;
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_, ec);
    }
  }

  void run();

 private:
  // ---- time, log, violations
  int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  }
  void log_event(const std::string& type, const std::string& text) {
    std::lock_guard lock(log_mu_);
    events_.push_back(stamp(now_us()) + " " + text);
    if (!type.empty()) {
      ++event_counts_[type];
    }
  }
  void violation(const std::string& text) {
    std::lock_guard lock(log_mu_);
    violations_.push_back(stamp(now_us()) + " " + text);
    events_.push_back(stamp(now_us()) + " VIOLATION: " + text);
  }

  // ---- set-up (chaos_run.cpp)
  void set_up();
  std::string nginx_conf(const Proc& p) const;
  std::string config_text() const;
  Proc& proc(const std::string& name) {
    for (auto& p : procs_) {
      if (p->name == name) {
        return *p;
      }
    }
    throw std::runtime_error("no process " + name);
  }
  const std::vector<std::string>& vip_pool(const std::string& name) const {
    for (const auto& v : vips_) {
      if (v.name == name) {
        return v.pool;
      }
    }
    throw std::runtime_error("no vip " + name);
  }
  VipModel& vip(const std::string& name) {
    for (auto& v : vips_) {
      if (v.name == name) {
        return v;
      }
    }
    throw std::runtime_error("no vip " + name);
  }

  // ---- model timeline (had_good_throughout: chaos_checks.cpp)
  std::map<std::string, std::set<std::string>> good_now() {
    const int64_t now = now_us();
    std::map<std::string, std::set<std::string>> out;
    for (auto& v : vips_) {
      auto& set = out[v.name];
      for (const auto& m : v.members) {
        if (!m.removing && m.state == "up" && m.weight > 0 && proc(m.name).good(now)) {
          set.insert(m.name);
        }
      }
    }
    return out;
  }
  void snap() { snapshots_.push_back({now_us(), good_now()}); }
  // Whether some present VIP would be left without a running, up, weighted backend if
  // process `p` stopped, or member `member` of `vip_name` stopped taking connections.
  // (Only for choosing events: it ignores health settling, so that the event sequence
  // depends on the seed alone.)
  bool would_empty(const std::string& p, const std::string& vip_name, const std::string& member) {
    for (auto& v : vips_) {
      if (!v.present) {
        continue;
      }
      size_t n = 0;
      for (const auto& m : v.members) {
        const Proc& q = proc(m.name);
        const bool gone = m.name == p || (v.name == vip_name && m.name == member);
        n += !gone && !m.removing && m.state == "up" && m.weight > 0 && q.running() && !q.stopped
                 ? 1
                 : 0;
      }
      if (n == 0) {
        return true;
      }
    }
    return false;
  }
  bool had_good_throughout(const std::string& vip_name, int64_t s, int64_t e) const;

  // ---- daemon interaction (chaos_run.cpp)
  bool check_alive();
  void sleep_until(int64_t us);
  int control_write(const std::string& rel, const std::string& value) const;
  std::optional<std::string> control_read(const std::string& rel) const;
  std::pair<size_t, size_t> reload_counts() const;
  // Writes `text` and sends SIGHUP; true if ringlbd answered as expected.
  bool reload(const std::string& text, bool expect_ok, const std::string& why);
  void verify_tree(const std::string& context);
  void probe_vip(const VipModel& v, bool expect_listening);

  // ---- events (chaos_events.cpp)
  void random_event(int64_t scheduled);
  void pending_event(const Pending& p, int64_t scheduled);
  void ev_kill(int64_t at);
  void ev_stop(int64_t at);
  void ev_reset();
  void ev_weight(int64_t at);
  void ev_state(int64_t at);
  void ev_policy_ctl();
  void ev_policy_reload();
  void ev_add();
  void ev_remove();
  void ev_vip_toggle();
  void ev_reload_bad();
  void ev_burst();
  std::vector<VipModel*> present_vips() {
    std::vector<VipModel*> out;
    for (auto& v : vips_) {
      if (v.present) {
        out.push_back(&v);
      }
    }
    return out;
  }

  // ---- clients (chaos_clients.cpp)
  // `small`: streams of 1-4 MiB and slow reads of 256 KiB-1 MiB (warm-up, final round).
  Record one_request(int thread, const std::string& role, std::mt19937_64& rng,
                     std::mt19937_64& pace, const std::string& vip_name, uint16_t port,
                     bool small = false);
  void client_loop(int thread);
  std::vector<Record> round(const std::string& label, int per_kind);

  // ---- after (chaos_checks.cpp)
  void restore_everything();
  void check_counters();
  size_t min_fds(int samples);
  std::string judge(const Record& r, bool& violated) const;
  void report(bool failed);

  CaseParam param_;
  int case_index_;
  std::string test_name_;
  uint64_t case_seed_;
  std::mt19937_64 rng_;
  Clock::time_point start_ = Clock::now();
  std::string dir_;
  std::set<uint16_t> ports_;
  std::vector<std::unique_ptr<Proc>> procs_;
  std::vector<VipModel> vips_;
  std::unique_ptr<Ringlbd> lb_;
  pid_t lb_pid_ = -1;
  bool lb_dead_ = false;

  std::mutex log_mu_;
  std::vector<std::string> events_;
  std::map<std::string, int> event_counts_;
  std::vector<std::string> violations_;
  std::vector<Snapshot> snapshots_;
  std::vector<Disruption> disruptions_;
  std::multimap<int64_t, Pending> pending_;

  std::atomic<bool> stop_clients_{false};
  std::atomic<bool> extra_present_{false};
  std::atomic<int64_t> chaos_end_us_{INT64_MAX};
  std::vector<std::thread> clients_;
  std::vector<std::vector<Record>> records_;

  std::atomic<int64_t> heartbeat_us_{0};
  std::atomic<bool> watchdog_armed_{false};
  std::atomic<bool> watchdog_stop_{false};
  std::thread watchdog_;

  size_t fds_before_ = 0;
  size_t fds_after_ = 0;
  uint64_t rss_before_ = 0;
  uint64_t rss_after_ = 0;
  int64_t max_refusal_us_ = 0;
  std::vector<Record> final_records_;
};

}  // namespace ringlb::test::chaos
