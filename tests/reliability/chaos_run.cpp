// A run of the chaos test, start to end (chaos_run.h): set-up of the backends and the
// config, ringlbd's control tree and reloads as the run drives and checks them, and
// run() itself: warm-up and baselines, the event loop while the clients run, the final
// round and the checks after.
//
// Why this file is long: a run's set-up, event loop and final checks share
// ChaosRun's state; the parts are split by job into chaos_*.cpp around it.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../proxy/harness.h"
#include "chaos_common.h"
#include "chaos_procs.h"
#include "chaos_requests.h"
#include "chaos_run.h"
#include "proc.h"

namespace ringlb::test::chaos {

using namespace std::chrono_literals;

void ChaosRun::set_up() {
  char tmpl[] = "/tmp/ringlb-chaos-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = tmpl;
  // nginx's document root, shared: an index for the health check and the test files.
  std::filesystem::create_directories(dir_ + "/www");
  { std::ofstream(dir_ + "/www/index.html") << "ok\n"; }
  for (const auto& f : http_files()) {
    std::vector<uint8_t> data(f.size);
    fast_fill(f.seed, 0, data.data(), data.size());
    std::ofstream out(dir_ + "/www" + f.path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
  }
  const auto add_proc = [&](const std::string& name, bool nginx) {
    auto p = std::make_unique<Proc>();
    p->name = name;
    p->nginx = nginx;
    p->port = pick_port(ports_);
    p->dir = dir_ + "/" + name;
    std::filesystem::create_directories(p->dir + "/tmp");
    if (nginx) {
      std::ofstream(p->dir + "/nginx.conf") << nginx_conf(*p);
    }
    if (const std::string error = p->start(); !error.empty()) {
      throw std::runtime_error(error);
    }
    procs_.push_back(std::move(p));
  };
  for (int i = 0; i < 5; ++i) {
    add_proc("t" + std::to_string(i), false);  // t4: the spare
  }
  for (int i = 0; i < 4; ++i) {
    add_proc("h" + std::to_string(i), true);  // h3: the spare
  }
  VipModel tcp;
  tcp.name = "tcp";
  tcp.port = pick_port(ports_);
  tcp.policy = kPolicies[rng_() % 5];
  // Half of the default cases have an age limit on the TCP VIP: long streams meet it.
  if ((g_options.seed + static_cast<uint64_t>(case_index_)) % 4 == 1 ||
      (g_options.seed + static_cast<uint64_t>(case_index_)) % 4 == 2) {
    tcp.max_age_ms = static_cast<uint32_t>(2000 + rng_() % 3001);
  }
  tcp.pool = {"t0", "t1", "t2", "t3", "t4"};
  for (int i = 0; i < 4; ++i) {
    tcp.members.push_back({"t" + std::to_string(i), static_cast<uint32_t>(1 + rng_() % 10)});
  }
  tcp.retries = 3;
  VipModel http;
  http.name = "http";
  http.http = true;
  http.port = pick_port(ports_);
  http.policy = kPolicies[rng_() % 5];
  http.pool = {"h0", "h1", "h2", "h3"};
  for (int i = 0; i < 3; ++i) {
    http.members.push_back({"h" + std::to_string(i), static_cast<uint32_t>(1 + rng_() % 10)});
  }
  http.retries = 2;
  VipModel extra;
  extra.name = "extra";
  extra.port = pick_port(ports_);
  extra.present = false;
  extra.pool = {"t0", "t1", "t2", "t3"};
  vips_ = {tcp, http, extra};
}

std::string ChaosRun::nginx_conf(const Proc& p) const {
  const std::string d = p.dir;
  std::ostringstream c;
  c << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << d << "/nginx.pid;\n"
    << "error_log " << d << "/error.log;\n"
    << "events { worker_connections 1024; }\n"
    << "http {\n  access_log off;\n"
    << "  client_body_temp_path " << d << "/tmp/body;\n"
    << "  proxy_temp_path " << d << "/tmp/proxy;\n"
    << "  fastcgi_temp_path " << d << "/tmp/fastcgi;\n"
    << "  uwsgi_temp_path " << d << "/tmp/uwsgi;\n"
    << "  scgi_temp_path " << d << "/tmp/scgi;\n"
    << "  server {\n    listen 127.0.0.1:" << p.port << " backlog=8 reuseport;\n"
    << "    root " << dir_ << "/www;\n"
    << "    add_header X-Backend " << p.name << " always;\n"
    << "    lingering_close always;\n  }\n}\n";
  return c.str();
}

std::string ChaosRun::config_text() const {
  std::ostringstream c;
  c << "[daemon]\nworkers = " << param_.workers << "\ndrain_timeout_ms = " << kDrainTimeoutMs
    << "\n";
  for (const auto& v : vips_) {
    if (!v.present) {
      continue;
    }
    c << "\n[[vip]]\nname = \"" << v.name << "\"\nlisten = \"127.0.0.1:" << v.port
      << "\"\npolicy = \"" << v.policy << "\"\nconnect_timeout_ms = " << kConnectTimeoutMs
      << "\nconnect_retries = " << v.retries << "\nidle_timeout_ms = " << kIdleTimeoutMs
      << "\nmax_connection_age_ms = " << v.max_age_ms << "\n";
    if (param_.health) {
      c << "[vip.health]\ntype = \"tcp\"\ninterval_ms = " << kHealthIntervalMs
        << "\ntimeout_ms = " << kHealthTimeoutMs << "\nrise = " << kHealthRise
        << "\nfall = 2\nejection_ms = " << kEjectionMs << "\nmax_ejection_ms = " << kMaxEjectionMs
        << "\n";
      if (v.http) {
        c << "send = \"HEAD / HTTP/1.0\\r\\n\\r\\n\"\nexpect = \"HTTP/1.1 200\"\n";
      }
    }
    for (const auto& m : v.members) {
      const Proc* p = nullptr;
      for (const auto& q : procs_) {
        p = q->name == m.name ? q.get() : p;
      }
      c << "[[vip.backend]]\nname = \"" << m.name << "\"\naddress = \"" << p->address()
        << "\"\nweight = " << m.weight << "\nstate = \"" << m.state << "\"\n";
    }
  }
  return c.str();
}

// ---- daemon interaction ----------------------------------------------------------------

bool ChaosRun::check_alive() {
  if (lb_dead_) {
    return false;
  }
  const int status = lb_->wait_exit(0);
  if (status == -1) {
    return true;
  }
  lb_dead_ = true;
  violation("ringlbd exited (status " + std::to_string(status) + ")\n--- ringlbd log ---\n" +
            tail(lb_->log(), 20000));
  return false;
}

void ChaosRun::sleep_until(int64_t us) {
  while (!lb_dead_) {
    heartbeat_us_ = now_us();
    const int64_t left = us - now_us();
    if (!check_alive() || left <= 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(left, 50000)));
  }
}

int ChaosRun::control_write(const std::string& rel, const std::string& value) const {
  const std::string path = lb_->control_dir() + "/" + rel;
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  const std::string text = value + "\n";
  const ssize_t w = ::write(fd, text.data(), text.size());
  const int error = w == static_cast<ssize_t>(text.size()) ? 0 : w < 0 ? errno : EIO;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  return error != 0 ? error : closed;
}

std::optional<std::string> ChaosRun::control_read(const std::string& rel) const {
  std::ifstream in(lb_->control_dir() + "/" + rel);
  if (!in) {
    return std::nullopt;
  }
  std::string value;
  std::getline(in, value);
  return value;
}

std::pair<size_t, size_t> ChaosRun::reload_counts() const {
  const std::string text = lb_->log();
  std::pair<size_t, size_t> counts{0, 0};
  for (size_t at = 0; (at = text.find("ringlbd: reloaded ", at)) != std::string::npos; ++at) {
    ++counts.first;
  }
  for (size_t at = 0; (at = text.find("ringlbd: reload failed", at)) != std::string::npos; ++at) {
    ++counts.second;
  }
  return counts;
}

bool ChaosRun::reload(const std::string& text, bool expect_ok, const std::string& why) {
  const auto before = reload_counts();
  lb_->write_config(text);
  const int64_t t0 = now_us();
  lb_->signal(SIGHUP);
  const auto deadline = Clock::now() + std::chrono::milliseconds(kReloadAckMs);
  auto after = before;
  while (after == before && Clock::now() < deadline && check_alive()) {
    std::this_thread::sleep_for(5ms);
    heartbeat_us_ = now_us();
    after = reload_counts();
  }
  const bool ok = after.first > before.first;
  const bool failed = after.second > before.second;
  const std::string took = std::to_string((now_us() - t0) / 1000) + " ms";
  if (lb_dead_) {
    return false;
  }
  bool as_expected = true;
  if (!ok && !failed) {
    violation("reload (" + why + ") not answered within " + std::to_string(kReloadAckMs) + " ms");
    as_expected = false;
  } else if (ok != expect_ok) {
    violation(std::string("reload (") + why + ") " + (ok ? "accepted" : "refused") + ", expected " +
              (expect_ok ? "accepted" : "refused") + "\n" + tail(lb_->log(), 1500) +
              "\n--- config ---\n" + text);
    as_expected = false;
  }
  log_event("", "  reload (" + why + "): " +
                    (ok       ? "reloaded"
                     : failed ? "reload failed"
                              : "?") +
                    " after " + took);
  if (!expect_ok) {
    lb_->write_config(config_text());  // the file on disk matches the model again
  }
  return as_expected;
}

// The control tree must show the model: the VIPs, their policies, retries and age
// limits, their backends with weight and state.
void ChaosRun::verify_tree(const std::string& context) {
  if (lb_dead_) {
    return;
  }
  std::vector<std::string> diffs;
  std::set<std::string> listed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(lb_->control_dir() + "/vips", ec)) {
    listed.insert(entry.path().filename().string());
  }
  std::set<std::string> expected;
  for (const auto& v : vips_) {
    if (v.present) {
      expected.insert(v.name);
    }
  }
  const auto join = [](const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) {
      out += (out.empty() ? "" : ",") + x;
    }
    return "{" + out + "}";
  };
  if (listed != expected) {
    diffs.push_back("vips/ lists " + join(listed) + ", model " + join(expected));
  }
  const auto expect = [&](const std::string& rel, const std::string& want) {
    const auto got = control_read(rel);
    if (got != want) {
      diffs.push_back(rel + " is \"" + got.value_or("<unreadable>") + "\", model \"" + want + "\"");
    }
  };
  for (const auto& v : vips_) {
    if (!v.present || !listed.contains(v.name)) {
      continue;
    }
    const std::string base = "vips/" + v.name + "/";
    expect(base + "policy", v.policy);
    expect(base + "connect_retries", std::to_string(v.retries));
    expect(base + "max_connection_age_ms", std::to_string(v.max_age_ms));
    std::set<std::string> backends;
    std::set<std::string> model_backends;
    for (const auto& entry :
         std::filesystem::directory_iterator(lb_->control_dir() + "/" + base + "backends", ec)) {
      backends.insert(entry.path().filename().string());
    }
    for (const auto& m : v.members) {
      model_backends.insert(m.name);
      expect(base + "backends/" + m.name + "/weight", std::to_string(m.weight));
      expect(base + "backends/" + m.name + "/state", m.state);
    }
    if (backends != model_backends) {
      diffs.push_back(base + "backends lists " + join(backends) + ", model " +
                      join(model_backends));
    }
  }
  if (!diffs.empty()) {
    std::string text = "control tree differs from the model after " + context + ":";
    for (const auto& d : diffs) {
      text += "\n    " + d;
    }
    violation(text);
  }
}

// After a reload added (removed) a VIP: a connect to it must succeed (be refused)
// within kRemovedVipRefusalMs.
void ChaosRun::probe_vip(const VipModel& v, bool expect_listening) {
  const int64_t t0 = now_us();
  const auto deadline = Clock::now() + std::chrono::milliseconds(kRemovedVipRefusalMs);
  int accepted = 0;
  int timeouts = 0;
  std::string last;
  while (Clock::now() < deadline) {
    Result res;
    const auto attempt_deadline = std::min(deadline, Clock::now() + 200ms);
    UniqueFd fd = open_connection(v.port, "127.0.0.1", 0, attempt_deadline, res);
    if (fd.valid()) {
      if (expect_listening) {
        log_event("", "  vip " + v.name + " accepts after " +
                          std::to_string((now_us() - t0) / 1000) + " ms");
        return;
      }
      ++accepted;
      last = "accepted";
    } else if (res.outcome == Outcome::refused) {
      if (!expect_listening) {
        const int64_t took = now_us() - t0;
        max_refusal_us_ = std::max(max_refusal_us_, took);
        log_event("", "  vip " + v.name + " refuses after " + std::to_string(took / 1000) + " ms");
        return;
      }
      last = "refused";
    } else {
      ++timeouts;
      last = res.detail;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (expect_listening) {
    violation("added vip " + v.name + " (127.0.0.1:" + std::to_string(v.port) +
              ") does not accept within " + std::to_string(kRemovedVipRefusalMs) +
              " ms of the reload (last: " + last + ")");
  } else {
    violation("removed vip " + v.name + " (127.0.0.1:" + std::to_string(v.port) +
              ") not refused within " + std::to_string(kRemovedVipRefusalMs) +
              " ms of the reload: " + std::to_string(accepted) + " connects accepted, " +
              std::to_string(timeouts) + " hung (last: " + last + ")");
  }
}

void ChaosRun::run() {
  std::cout << "chaos " << test_name_ << ": seed " << g_options.seed << ", " << g_options.seconds
            << " s (replay: RINGLB_CHAOS_SEED=" << g_options.seed
            << " RINGLB_CHAOS_SECONDS=" << g_options.seconds << " " << g_options.argv0
            << " --gtest_filter='" << test_name_ << "')\n"
            << std::flush;
  raise_fd_limit();
  set_up();
  lb_ = std::make_unique<Ringlbd>(config_text());
  lb_pid_ = lb_->pid();
  start_ = Clock::now();
  snap();
  log_event("", "ringlbd pid " + std::to_string(lb_pid_) +
                    "; tcp vip :" + std::to_string(vips_[0].port) + " policy " + vips_[0].policy +
                    ", http vip :" + std::to_string(vips_[1].port) + " policy " + vips_[1].policy +
                    ", extra vip :" + std::to_string(vips_[2].port));
  verify_tree("start");

  // Warm-up (per-worker state, pipes), then the baselines.
  for (const auto& r : round("warm-up", 1)) {
    if (r.outcome != Outcome::ok) {
      violation("warm-up request failed: " + r.describe());
    }
  }
  std::this_thread::sleep_for(300ms);
  fds_before_ = min_fds(5);
  rss_before_ = rss_kib(lb_pid_);

  // The watchdog: a control call that hangs (FUSE) would stall the event loop for ever;
  // then ringlbd is killed, which frees the call, and the run fails.
  heartbeat_us_ = now_us();
  watchdog_armed_ = true;
  watchdog_ = std::thread([this] {
    while (!watchdog_stop_) {
      std::this_thread::sleep_for(200ms);
      if (watchdog_armed_ && now_us() - heartbeat_us_ > 60'000'000) {
        {
          std::lock_guard lock(log_mu_);
          violations_.push_back(stamp(now_us()) +
                                " the event loop hung for 60 s (a control call or reload did not "
                                "return); ringlbd killed");
        }
        ::kill(lb_pid_, SIGKILL);
        watchdog_armed_ = false;
      }
    }
  });

  // Event times count from here (after the warm-up), so that they replay.
  const int64_t base = now_us();
  const int64_t end = base + static_cast<int64_t>(g_options.seconds * 1e6);
  chaos_end_us_ = end;
  records_.resize(std::size(kRoles));
  for (int t = 0; t < static_cast<int>(std::size(kRoles)); ++t) {
    clients_.emplace_back([this, t] { client_loop(t); });
  }
  int64_t next_random = base + 200000 + static_cast<int64_t>(rng_() % 400000);
  // Random events until the end; what they left pending (restarts, SIGCONTs, heals)
  // still runs on time after it.
  for (int n = 0; n < 100000 && !lb_dead_; ++n) {
    const bool randoms_left = next_random < end;
    if (!randoms_left && pending_.empty()) {
      break;
    }
    const bool take_pending =
        !pending_.empty() && (!randoms_left || pending_.begin()->first <= next_random);
    const int64_t at = take_pending ? pending_.begin()->first : next_random;
    sleep_until(at);
    if (!check_alive()) {
      break;
    }
    heartbeat_us_ = now_us();
    if (take_pending) {
      const Pending p = pending_.begin()->second;
      pending_.erase(pending_.begin());
      pending_event(p, at);
    } else {
      random_event(at);
      next_random = at + 100000 + static_cast<int64_t>(rng_() % 500000);
    }
  }
  sleep_until(end);
  watchdog_armed_ = false;
  stop_clients_ = true;
  for (auto& t : clients_) {
    t.join();
  }
  log_event("", "clients stopped");
  const auto phase = [&](const std::string& what) { log_event("", what); };
  if (check_alive()) {
    restore_everything();
    phase("final round");
    final_records_ = round("final", 3);
    phase("final round done");
    for (const auto& r : final_records_) {
      if (r.outcome != Outcome::ok) {
        violation("final round (every backend healthy): " + r.describe());
      }
    }
  }
  if (check_alive()) {
    check_counters();
    phase("counters checked");
    const auto deadline = Clock::now() + 10s;
    do {
      fds_after_ = min_fds(3);
    } while (fds_after_ > fds_before_ && Clock::now() < deadline);
    rss_after_ = rss_kib(lb_pid_);
    phase("descriptors and RSS measured");
    if (fds_after_ > fds_before_) {
      violation("descriptors did not return to the baseline: " + std::to_string(fds_after_) +
                ", baseline " + std::to_string(fds_before_));
    }
    if (rss_after_ > rss_before_ + kRssBoundKib) {
      violation("RSS grew by more than " + std::to_string(kRssBoundKib / 1024) +
                " MiB: " + std::to_string(rss_before_) + " -> " + std::to_string(rss_after_) +
                " KiB" + (kTsan ? " (TSan build: bound 32 MiB x 5 for the shadow memory)" : ""));
    }
    check_alive();
  }
  report(false);
  for (const auto& v : violations_) {
    ADD_FAILURE() << v.substr(0, 3000);
  }
}

}  // namespace ringlb::test::chaos
