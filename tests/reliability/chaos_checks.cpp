// The checks of a run (ChaosRun, chaos_run.h): the restore before the final round, the
// counters when idle, descriptors, the judgement of every failed request (excused or a
// violation, against the model's timeline) and the report.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chaos_common.h"
#include "chaos_procs.h"
#include "chaos_requests.h"
#include "chaos_run.h"

namespace ringlb::test::chaos {

using namespace std::chrono_literals;

bool ChaosRun::had_good_throughout(const std::string& vip_name, int64_t s, int64_t e) const {
  // The snapshot in force at s, and every one taken until e.
  auto it = std::upper_bound(snapshots_.begin(), snapshots_.end(), s,
                             [](int64_t t, const Snapshot& snap) { return t < snap.us; });
  if (it != snapshots_.begin()) {
    --it;
  }
  std::set<std::string> good = it->good.at(vip_name);
  for (++it; it != snapshots_.end() && it->us <= e && !good.empty(); ++it) {
    std::set<std::string> keep;
    for (const auto& b : it->good.at(vip_name)) {
      if (good.contains(b)) {
        keep.insert(b);
      }
    }
    good = std::move(keep);
  }
  return !good.empty();
}

// Every process running, every member up with a weight, no third VIP: one reload.
void ChaosRun::restore_everything() {
  for (auto& p : procs_) {
    if (p->stopped) {
      ::kill(p->pid, SIGCONT);
      p->stopped = false;
      for (auto& d : disruptions_) {
        if (d.kind == "stop" && d.proc == p->name && d.t1 == INT64_MAX) {
          d.t1 = now_us();
        }
      }
      log_event("cont", "SIGCONT " + p->name + " (restore)");
    }
    if (!p->running()) {
      const std::string error = p->start();
      log_event("restart", "restart " + p->name + " (restore): " +
                               (error.empty() ? "pid " + std::to_string(p->pid) : error));
      if (!error.empty()) {
        violation("test set-up: " + error);
      }
    }
    p->settled_us = now_us() + (param_.health ? kSettleMs * 1000LL : 0);
  }
  pending_.clear();
  for (auto& v : vips_) {
    for (auto& m : v.members) {
      m.weight = std::max<uint32_t>(m.weight, 1);
      m.state = "up";
    }
  }
  extra_present_ = false;
  vip("extra").present = false;
  log_event("", "restore: every backend running, up and weighted; no vip extra");
  reload(config_text(), true, "restore");
  verify_tree("the restoring reload");
  if (param_.health) {
    // Every member's checks must see it up again.
    const auto deadline = Clock::now() + 10s;
    std::string down;
    do {
      down.clear();
      for (const auto& v : vips_) {
        for (const auto& m : v.members) {
          if (v.present) {
            const auto h = control_read("vips/" + v.name + "/backends/" + m.name + "/health");
            if (h != "up") {
              down += " " + v.name + "/" + m.name + "=" + h.value_or("?");
            }
          }
        }
      }
      if (!down.empty()) {
        std::this_thread::sleep_for(50ms);
      }
    } while (!down.empty() && Clock::now() < deadline && check_alive());
    if (!down.empty()) {
      violation("health did not come back up within 10 s of the restore:" + down);
    }
    // Ejections run out too.
    std::this_thread::sleep_for(std::chrono::milliseconds(kMaxEjectionMs));
  }
  snap();
}

void ChaosRun::check_counters() {
  // Idle: every worker has closed what it accepted.
  std::map<std::string, uint64_t> stats;
  const auto deadline = Clock::now() + 10s;
  std::string busy;
  do {
    stats = lb_->stats();
    busy.clear();
    for (int w = 0; w < param_.workers; ++w) {
      const std::string p = "worker." + std::to_string(w) + ".";
      if (!stats.contains(p + "accepted")) {
        busy += " " + p + "accepted missing";
      } else if (stats[p + "accepted"] != stats[p + "closed"] || stats[p + "active"] != 0) {
        busy += " " + p + "accepted=" + std::to_string(stats[p + "accepted"]) +
                " closed=" + std::to_string(stats[p + "closed"]) +
                " active=" + std::to_string(stats[p + "active"]);
      }
    }
    if (!busy.empty()) {
      std::this_thread::sleep_for(200ms);
    }
  } while (!busy.empty() && Clock::now() < deadline);
  if (!busy.empty()) {
    violation("counters when idle (10 s after the last request):" + busy);
  }
  for (const std::string counter :
       {"bytes_in", "bytes_out", "connect_refused", "connect_timeouts", "connect_errors"}) {
    uint64_t workers = 0;
    uint64_t backends = 0;
    std::string parts;
    for (const auto& [name, value] : stats) {
      if (name.starts_with("worker.") && name.ends_with("." + counter)) {
        workers += value;
      } else if ((name.starts_with("vip.") && name.find(".backend.") != std::string::npos &&
                  name.ends_with("." + counter)) ||
                 name == "proxy.removed_backends." + counter) {
        backends += value;
        if (value != 0) {
          parts += " " + name + "=" + std::to_string(value);
        }
      }
    }
    if (workers != backends) {
      violation("counter " + counter + ": workers sum " + std::to_string(workers) +
                ", backends sum " + std::to_string(backends) + " (" +
                (stats.contains("proxy.removed_backends." + counter)
                     ? "with"
                     : "no proxy.removed_backends." + counter + " line; without") +
                " removed backends):" + parts);
    }
  }
}

size_t ChaosRun::min_fds(int samples) {
  size_t best = SIZE_MAX;
  for (int i = 0; i < samples; ++i) {
    best = std::min(best, lb_->open_fds());
    if (i + 1 < samples) {
      std::this_thread::sleep_for(100ms);
    }
  }
  return best;
}

// "ok", an excuse, or (violated) what is wrong with a failed request.
std::string ChaosRun::judge(const Record& r, bool& violated) const {
  violated = false;
  if (r.outcome == Outcome::ok) {
    return "ok";
  }
  const int64_t s = r.start_us;
  const int64_t e = r.end_us;
  const auto own = [&](const std::string& kind) {
    for (const auto& d : disruptions_) {
      if (d.kind == kind && d.proc == r.backend && (kind != "remove" || d.vip == r.vip) &&
          d.t0 <= e && d.t1 >= s) {
        return true;
      }
    }
    return false;
  };
  if (r.outcome == Outcome::corrupt) {
    violated = true;
    return "corrupt";
  }
  if (r.outcome == Outcome::early_eof) {
    // nginx killed after it accepted a connection but before the request reached it: no
    // byte unread, so the kernel ends the connection with a FIN, which a layer-4 proxy
    // passes on. Only then (no response byte yet, an nginx of the VIP killed meanwhile).
    if (r.vip == "http" && r.received == 0) {
      for (const auto& d : disruptions_) {
        if (d.kind == "kill" && d.t0 <= e && d.t1 >= s &&
            std::find(vip_pool(r.vip).begin(), vip_pool(r.vip).end(), d.proc) !=
                vip_pool(r.vip).end()) {
          return "nginx_killed_before_request";
        }
      }
    }
    violated = true;
    return "early_eof";
  }
  const VipModel* v = nullptr;
  for (const auto& x : vips_) {
    v = x.name == r.vip ? &x : v;
  }
  if (r.backend.empty()) {
    for (const auto& d : disruptions_) {
      if (d.kind == "vip_remove" && d.vip == r.vip && d.t0 <= e && d.t1 >= s) {
        return "vip_removed";
      }
    }
  }
  if (!r.backend.empty()) {
    for (const std::string kind : {"kill", "stop", "reset", "remove"}) {
      if (own(kind)) {
        return "own_backend_" + kind;
      }
    }
  } else {
    for (const auto& d : disruptions_) {
      if ((d.kind == "kill" || d.kind == "stop" || d.kind == "reset") &&
          std::find(v->pool.begin(), v->pool.end(), d.proc) != v->pool.end() && d.t0 <= e &&
          d.t1 >= s) {
        return "unknown_backend_vip_disrupted";
      }
    }
  }
  if (v->max_age_ms != 0 && r.outcome == Outcome::reset &&
      e - s >= static_cast<int64_t>(v->max_age_ms) * 900 - 50000) {
    return "age_limit_reset";
  }
  if (!had_good_throughout(r.vip, s, e)) {
    return "no_good_backend";
  }
  violated = true;
  return std::string("unexcused_") + outcome_name(r.outcome);
}

void ChaosRun::report(bool failed) {
  // Requests by kind and outcome, failures by cause, bytes checked.
  std::map<std::string, int> kinds;
  std::map<std::string, int> causes;
  uint64_t bytes = 0;
  size_t total = 0;
  std::vector<const Record*> bad;
  std::vector<std::string> bad_causes;
  for (const auto& per_thread : records_) {
    for (const auto& r : per_thread) {
      ++total;
      ++kinds[r.kind];
      bytes += r.checked;
      bool violated = false;
      const std::string cause = judge(r, violated);
      ++causes[cause == "ok" ? cause : cause + "[" + r.vip + "/" + outcome_name(r.outcome) + "]"];
      if (violated) {
        bad.push_back(&r);
        bad_causes.push_back(cause);
      }
    }
  }
  for (const auto& r : final_records_) {
    bytes += r.checked;
  }
  std::map<std::string, int> violation_counts;
  for (size_t i = 0; i < bad.size(); ++i) {
    ++violation_counts[bad_causes[i]];
  }
  for (const auto& [cause, n] : violation_counts) {
    violation(std::to_string(n) + " requests " + cause + " (list below)");
  }
  const auto join = [](const std::map<std::string, int>& m) {
    std::string out;
    for (const auto& [k, n] : m) {
      out += (out.empty() ? "" : " ") + k + "=" + std::to_string(n);
    }
    return out;
  };
  std::ostringstream line;
  line << "chaos " << test_name_ << " seed " << g_options.seed << " (" << g_options.seconds
       << " s, workers " << param_.workers << ", health " << (param_.health ? "on" : "off")
       << ", tcp max_connection_age_ms " << vips_[0].max_age_ms << "): events {"
       << join(event_counts_) << "}; requests " << total << " {" << join(kinds) << "}; "
       << bytes / (1 << 20) << " MiB checked; outcomes {" << join(causes) << "}; violations "
       << violations_.size() << "; fds " << fds_before_ << " -> " << fds_after_ << "; RSS "
       << rss_before_ << " -> " << rss_after_ << " KiB (bound +" << kRssBoundKib / 1024
       << " MiB); removed VIP refused after max " << max_refusal_us_ / 1000 << " ms";
  std::cout << line.str() << "\n";
  testing::Test::RecordProperty("seed", std::to_string(g_options.seed));
  testing::Test::RecordProperty("events", join(event_counts_));
  testing::Test::RecordProperty("requests", join(kinds));
  testing::Test::RecordProperty("outcomes", join(causes));
  testing::Test::RecordProperty("bytes_checked", std::to_string(bytes));
  testing::Test::RecordProperty("violations", std::to_string(violations_.size()));
  testing::Test::RecordProperty("fds",
                                std::to_string(fds_before_) + "->" + std::to_string(fds_after_));
  testing::Test::RecordProperty("rss_kib",
                                std::to_string(rss_before_) + "->" + std::to_string(rss_after_));
  const char* verbose = std::getenv("RINGLB_CHAOS_VERBOSE");
  if (!failed && violations_.empty() && (verbose == nullptr || *verbose == '\0')) {
    return;
  }
  std::ostringstream out;
  out << "\n==== chaos " << test_name_ << ": " << violations_.size() << " violations ====\n";
  for (const auto& v : violations_) {
    out << "  " << v << "\n";
  }
  out << "---- failing requests (" << bad.size() << ") ----\n";
  for (size_t i = 0; i < bad.size() && i < 100; ++i) {
    const Record& r = *bad[i];
    out << "  [" << bad_causes[i] << "] " << r.describe() << " [" << r.start_us << ".." << r.end_us
        << " us]\n";
    for (const auto& d : disruptions_) {
      if (d.t0 <= r.end_us + 1'000'000 && d.t1 >= r.start_us - 1'000'000) {
        out << "        disruption " << d.kind << " " << (d.vip.empty() ? "" : d.vip + "/")
            << d.proc << " [" << d.t0 << ".." << (d.t1 == INT64_MAX ? -1 : d.t1) << " us]\n";
      }
    }
    for (const auto& e : events_) {
      // Events near the request: the stamp is "+S.mmms".
      const double t = std::strtod(e.c_str() + 1, nullptr) * 1e6;
      if (t >= static_cast<double>(r.start_us) - 1e6 && t <= static_cast<double>(r.end_us) + 2e5 &&
          e.find("VIOLATION") == std::string::npos) {
        out << "        " << e << "\n";
      }
    }
  }
  if (bad.size() > 100) {
    out << "  ... and " << bad.size() - 100 << " more\n";
  }
  out << "---- event log ----\n";
  for (const auto& e : events_) {
    out << "  " << e << "\n";
  }
  out << "---- replay ----\n  RINGLB_CHAOS_SEED=" << g_options.seed
      << " RINGLB_CHAOS_SECONDS=" << g_options.seconds << " " << g_options.argv0
      << " --gtest_filter='" << test_name_ << "'\n";
  if (lb_ && !lb_dead_) {
    out << "---- ringlbd log (tail) ----\n" << tail(lb_->log(), 4000) << "\n";
  }
  std::cout << out.str() << std::flush;
}

}  // namespace ringlb::test::chaos
