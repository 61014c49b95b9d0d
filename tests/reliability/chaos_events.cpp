// The events of a run (ChaosRun, chaos_run.h), drawn from the seed alone: kill, stop
// and reset a backend process, re-weight, drain, add and remove backends, switch
// policies, add and remove the third VIP, good and bad reloads, write bursts; and the
// pending events they leave (restart, SIGCONT, heal, settle).
//
// Why this file is long: one function per event kind, each with its pending
// follow-up; the list is the fault model and reads best in one place.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "chaos_common.h"
#include "chaos_procs.h"
#include "chaos_run.h"

namespace ringlb::test::chaos {

using namespace std::chrono_literals;

namespace {

enum class Ev {
  kill,
  stop,
  reset,
  weight,
  state,
  policy_ctl,
  policy_reload,
  add,
  remove,
  vip_toggle,
  reload_good,
  reload_bad,
  burst
};
struct EvWeight {
  Ev ev;
  int weight;
};
constexpr EvWeight kEventWeights[] = {
    {Ev::kill, 10},  {Ev::stop, 8},       {Ev::reset, 7},         {Ev::weight, 10},
    {Ev::state, 8},  {Ev::policy_ctl, 6}, {Ev::policy_reload, 4}, {Ev::add, 5},
    {Ev::remove, 4}, {Ev::vip_toggle, 3}, {Ev::reload_good, 3},   {Ev::reload_bad, 3},
    {Ev::burst, 3}};

}  // namespace

void ChaosRun::random_event(int64_t scheduled) {
  int total = 0;
  for (const auto& w : kEventWeights) {
    total += w.weight;
  }
  int draw = static_cast<int>(rng_() % static_cast<uint64_t>(total));
  Ev ev = Ev::kill;
  for (const auto& w : kEventWeights) {
    if (draw < w.weight) {
      ev = w.ev;
      break;
    }
    draw -= w.weight;
  }
  switch (ev) {
    case Ev::kill:
      return ev_kill(scheduled);
    case Ev::stop:
      return ev_stop(scheduled);
    case Ev::reset:
      return ev_reset();
    case Ev::weight:
      return ev_weight(scheduled);
    case Ev::state:
      return ev_state(scheduled);
    case Ev::policy_ctl:
      return ev_policy_ctl();
    case Ev::policy_reload:
      return ev_policy_reload();
    case Ev::add:
      return ev_add();
    case Ev::remove:
      return ev_remove();
    case Ev::vip_toggle:
      return ev_vip_toggle();
    case Ev::reload_good:
      log_event("reload_good", "reload of an unchanged config");
      reload(config_text(), true, "unchanged");
      return verify_tree("an unchanged reload");
    case Ev::reload_bad:
      return ev_reload_bad();
    case Ev::burst:
      return ev_burst();
  }
}

void ChaosRun::ev_kill(int64_t at) {
  std::vector<Proc*> candidates;
  for (auto& p : procs_) {
    if (p->running()) {
      candidates.push_back(p.get());
    }
  }
  const uint64_t pick = rng_();
  const uint64_t gate = rng_() % 100;
  const int64_t back_after = 200 + static_cast<int64_t>(rng_() % 1300);
  if (candidates.empty()) {
    return;
  }
  Proc& p = *candidates[pick % candidates.size()];
  if (would_empty(p.name, "", "") && gate >= kDisruptEmptyPercent) {
    return;
  }
  p.dying = true;
  snap();
  const int64_t t = now_us();
  const pid_t old = p.pid;
  p.hard_kill();
  disruptions_.push_back({"kill", p.name, "", t, now_us()});  // until it is reaped
  // A stop that was open ends here.
  for (auto& d : disruptions_) {
    if (d.kind == "stop" && d.proc == p.name && d.t1 == INT64_MAX) {
      d.t1 = t;
    }
  }
  log_event("kill", "kill " + p.name + " (pid " + std::to_string(old) + "), restart in " +
                        std::to_string(back_after) + " ms");
  pending_.emplace(at + back_after * 1000, Pending{Pending::restart, p.name, "", ""});
  snap();
}

void ChaosRun::ev_stop(int64_t at) {
  std::vector<Proc*> candidates;
  for (auto& p : procs_) {
    if (p->running() && !p->stopped) {
      candidates.push_back(p.get());
    }
  }
  const uint64_t pick = rng_();
  const uint64_t gate = rng_() % 100;
  const int64_t cont_after = 300 + static_cast<int64_t>(rng_() % 1700);
  if (candidates.empty()) {
    return;
  }
  Proc& p = *candidates[pick % candidates.size()];
  if (would_empty(p.name, "", "") && gate >= kDisruptEmptyPercent) {
    return;
  }
  p.stopped = true;
  snap();
  disruptions_.push_back({"stop", p.name, "", now_us(), INT64_MAX});
  ::kill(p.pid, SIGSTOP);
  log_event("stop", "SIGSTOP " + p.name + ", SIGCONT in " + std::to_string(cont_after) + " ms");
  pending_.emplace(at + cont_after * 1000, Pending{Pending::cont, p.name, "", ""});
}

void ChaosRun::ev_reset() {
  std::vector<Proc*> candidates;
  for (auto& p : procs_) {
    if (!p->nginx && p->running() && !p->stopped) {
      candidates.push_back(p.get());
    }
  }
  const uint64_t pick = rng_();
  if (candidates.empty()) {
    return;
  }
  Proc& p = *candidates[pick % candidates.size()];
  const int64_t t = now_us();
  ::kill(p.pid, SIGUSR1);
  // The reset happens when the backend takes the signal from its signalfd.
  const auto deadline = Clock::now() + 1s;
  while (signal_pending(p.pid, SIGUSR1) && Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  disruptions_.push_back({"reset", p.name, "", t, now_us()});
  log_event("reset", "SIGUSR1 " + p.name + ": resets its connections (taken after " +
                         std::to_string((now_us() - t) / 1000) + " ms)");
}

void ChaosRun::ev_weight(int64_t at) {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const uint64_t pick = rng_();
  const auto w = static_cast<uint32_t>(rng_() % 11);
  const uint64_t gate = rng_() % 100;
  const int64_t heal_after = 300 + static_cast<int64_t>(rng_() % 700);
  Member& m = v.members[pick % v.members.size()];
  const bool empties = w == 0 && would_empty("", v.name, m.name);
  if (empties && gate >= kDisruptEmptyPercent) {
    return;
  }
  const uint32_t old = m.weight;
  if (w == 0) {
    m.weight = 0;
    snap();
  }
  const int error =
      control_write("vips/" + v.name + "/backends/" + m.name + "/weight", std::to_string(w));
  m.weight = error == 0 ? w : old;
  snap();
  log_event("weight", "weight " + v.name + "/" + m.name + " " + std::to_string(old) + " -> " +
                          std::to_string(w) + ": " + errno_name(error));
  if (error != 0) {
    violation("control write weight " + v.name + "/" + m.name + " = " + std::to_string(w) +
              " failed: " + errno_name(error));
  }
  if (empties && error == 0) {
    pending_.emplace(at + heal_after * 1000, Pending{Pending::heal, "", v.name, m.name});
  }
}

void ChaosRun::ev_state(int64_t at) {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const uint64_t pick = rng_();
  const uint64_t s = rng_() % 4;
  const uint64_t gate = rng_() % 100;
  const int64_t heal_after = 300 + static_cast<int64_t>(rng_() % 700);
  const std::string state = s < 2 ? "up" : s == 2 ? "drain" : "down";
  Member& m = v.members[pick % v.members.size()];
  const bool empties = state != "up" && would_empty("", v.name, m.name);
  if (empties && gate >= kDisruptEmptyPercent) {
    return;
  }
  const std::string old = m.state;
  if (state != "up") {
    m.state = state;
    snap();
  }
  const int error = control_write("vips/" + v.name + "/backends/" + m.name + "/state", state);
  m.state = error == 0 ? state : old;
  snap();
  log_event("state", "state " + v.name + "/" + m.name + " " + old + " -> " + state + ": " +
                         errno_name(error));
  if (error != 0) {
    violation("control write state " + v.name + "/" + m.name + " = " + state +
              " failed: " + errno_name(error));
  }
  if (empties && error == 0) {
    pending_.emplace(at + heal_after * 1000, Pending{Pending::heal, "", v.name, m.name});
  }
}

void ChaosRun::ev_policy_ctl() {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const std::string policy = kPolicies[rng_() % 5];
  const int error = control_write("vips/" + v.name + "/policy", policy);
  log_event("policy_ctl", "policy " + v.name + " " + v.policy + " -> " + policy +
                              " (control): " + errno_name(error));
  if (error == 0) {
    v.policy = policy;
  } else {
    violation("control write policy " + v.name + " = " + policy + " failed: " + errno_name(error));
  }
}

void ChaosRun::ev_policy_reload() {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const std::string policy = kPolicies[rng_() % 5];
  log_event("policy_reload", "policy " + v.name + " " + v.policy + " -> " + policy + " (reload)");
  v.policy = policy;
  reload(config_text(), true, "policy " + v.name + " " + policy);
  verify_tree("a policy reload");
}

void ChaosRun::ev_add() {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const uint64_t pick = rng_();
  const auto w = static_cast<uint32_t>(1 + rng_() % 10);
  std::vector<std::string> candidates;
  for (const auto& name : v.pool) {
    if (v.find(name) == nullptr) {
      candidates.push_back(name);
    }
  }
  if (candidates.empty()) {
    return;
  }
  const std::string name = candidates[pick % candidates.size()];
  const std::string base = "vips/" + v.name + "/backends/" + name;
  // Retries first: every backend stays reachable by a retry.
  const auto retries = static_cast<uint32_t>(v.members.size());
  int error = control_write("vips/" + v.name + "/connect_retries", std::to_string(retries));
  if (error == 0) {
    v.retries = retries;
  }
  std::string step = "connect_retries";
  if (error == 0) {
    step = "mkdir";
    error = ::mkdir((lb_->control_dir() + "/" + base).c_str(), 0700) == 0 ? 0 : errno;
  }
  if (error == 0) {
    step = "weight";
    error = control_write(base + "/weight", std::to_string(w));
  }
  if (error == 0) {
    step = "address";
    error = control_write(base + "/address", proc(name).address());
  }
  log_event("add", "add " + v.name + "/" + name + " (" + proc(name).address() + ", weight " +
                       std::to_string(w) +
                       "): " + (error == 0 ? "ok" : step + " " + errno_name(error)));
  if (error == 0) {
    v.members.push_back({name, w});
  } else {
    violation("adding backend " + v.name + "/" + name + " failed at " + step + ": " +
              errno_name(error));
    ::rmdir((lb_->control_dir() + "/" + base).c_str());
  }
  snap();
}

void ChaosRun::ev_remove() {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const uint64_t pick = rng_();
  const uint64_t gate = rng_() % 100;
  Member& m = v.members[pick % v.members.size()];
  const std::string name = m.name;
  const std::string path = lb_->control_dir() + "/vips/" + v.name + "/backends/" + name;
  if (v.members.size() == 1) {
    const int error = ::rmdir(path.c_str()) == 0 ? 0 : errno;
    log_event("remove_last",
              "rmdir the last backend " + v.name + "/" + name + ": " + errno_name(error));
    if (error != EBUSY) {
      violation("rmdir of the last backend " + v.name + "/" + name + " gave " + errno_name(error) +
                ", expected EBUSY");
      if (error == 0) {
        v.members.clear();
      }
    }
    snap();
    return;
  }
  if (would_empty("", v.name, name) && gate >= kDisruptEmptyPercent) {
    return;
  }
  m.removing = true;
  snap();
  const int64_t t0 = now_us();
  heartbeat_us_ = t0;
  const int error = ::rmdir(path.c_str()) == 0 ? 0 : errno;
  const int64_t t1 = now_us();
  disruptions_.push_back({"remove", name, v.name, t0, t1});
  log_event("remove", "rmdir " + v.name + "/" + name + ": " + errno_name(error) + " after " +
                          std::to_string((t1 - t0) / 1000) + " ms");
  if (error == 0) {
    std::erase_if(v.members, [&](const Member& x) { return x.name == name; });
    const auto retries = static_cast<uint32_t>(v.members.size() - 1);
    const int e2 = control_write("vips/" + v.name + "/connect_retries", std::to_string(retries));
    if (e2 == 0) {
      v.retries = retries;
    } else {
      violation("control write connect_retries " + v.name + " failed: " + errno_name(e2));
    }
  } else {
    violation("rmdir " + v.name + "/" + name + " failed: " + errno_name(error));
    // Whatever happened, take the state the tree shows.
    if (Member* still = v.find(name)) {
      still->removing = false;
      still->state = control_read("vips/" + v.name + "/backends/" + name + "/state").value_or("up");
    }
  }
  snap();
}

void ChaosRun::ev_vip_toggle() {
  VipModel& v = vip("extra");
  const std::string policy = kPolicies[rng_() % 5];
  if (v.present) {
    log_event("vip_remove", "remove vip extra (reload)");
    extra_present_ = false;
    v.present = false;
    const int64_t t0 = now_us();
    reload(config_text(), true, "vip extra removed");
    probe_vip(v, false);
    // Until the VIP is added again: a client that chose it before the removal may
    // connect long after (a slow, sanitized run), and is refused, as it must be.
    disruptions_.push_back({"vip_remove", "", "extra", t0, INT64_MAX});
  } else {
    for (auto& d : disruptions_) {
      if (d.kind == "vip_remove" && d.t1 == INT64_MAX) {
        d.t1 = now_us() + 500000;  // and half a second for connects already under way
      }
    }
    v.present = true;
    v.policy = policy;
    v.members.clear();
    for (const auto& name : v.pool) {
      v.members.push_back({name, 1});
    }
    v.retries = static_cast<uint32_t>(v.members.size() - 1);
    log_event("vip_add", "add vip extra (reload, policy " + policy + ")");
    reload(config_text(), true, "vip extra added");
    probe_vip(v, true);
    extra_present_ = true;
  }
  snap();
  verify_tree("a vip add/remove reload");
}

void ChaosRun::ev_reload_bad() {
  const uint64_t variant = rng_() % 5;
  std::string text = config_text();
  std::string what;
  switch (variant) {
    case 0:
      text = "[[vip]]\nname = \"broken\"\n";
      what = "a VIP without listen or backends";
      break;
    case 1:
      text += "[[vip.backend]]\nname = \"bad\"\naddress = \"127.0.0.1:1\"\nweight = 20000\n";
      what = "a weight out of range";
      break;
    case 2:
      text += "\n[[vip]]\nname = \"dup\"\nlisten = \"127.0.0.1:" + std::to_string(vip("tcp").port) +
              "\"\n[[vip.backend]]\nname = \"d\"\naddress = \"127.0.0.1:1\"\n";
      what = "two VIPs on one address";
      break;
    case 3:
      text = "this is = = not [toml\n" + text;
      what = "not TOML";
      break;
    default:
      text.insert(text.find('\n') + 1, "bogus_key = 1\n");
      what = "an unknown key";
      break;
  }
  log_event("reload_bad", "reload of a bad config: " + what);
  reload(text, false, "bad: " + what);
  verify_tree("a bad reload (it must change nothing)");
}

void ChaosRun::ev_burst() {
  auto vips = present_vips();
  VipModel& v = *vips[rng_() % vips.size()];
  const bool policy = rng_() % 2 == 0;
  const uint64_t pick = rng_();
  const std::string value = policy ? kPolicies[rng_() % 5] : std::to_string(1 + rng_() % 10);
  Member& m = v.members[pick % v.members.size()];
  const std::string rel =
      policy ? "vips/" + v.name + "/policy" : "vips/" + v.name + "/backends/" + m.name + "/weight";
  std::vector<int> results(kBurstWriters, -1);
  {
    std::latch go(kBurstWriters);
    std::vector<std::thread> writers;
    for (int i = 0; i < kBurstWriters; ++i) {
      writers.emplace_back([&, i] {
        go.arrive_and_wait();
        results[static_cast<size_t>(i)] = control_write(rel, value);
      });
    }
    for (auto& w : writers) {
      w.join();
    }
  }
  std::map<int, int> by_result;
  for (const int r : results) {
    ++by_result[r];
  }
  std::string summary;
  for (const auto& [r, n] : by_result) {
    summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + errno_name(r);
  }
  log_event("burst", "burst: " + std::to_string(kBurstWriters) + " writers of " + rel + " = " +
                         value + ": " + summary);
  const bool any_ok = by_result.contains(0);
  for (const auto& [r, n] : by_result) {
    // A write fails cleanly with a reason; "busy" or "again" are clean, a short write
    // (EIO here) or an unexpected error is not.
    if (r != 0 && r != EBUSY && r != EAGAIN) {
      violation("burst write " + rel + " = " + value + ": " + std::to_string(n) + " writes gave " +
                errno_name(r));
    }
  }
  if (any_ok) {
    if (policy) {
      v.policy = value;
    } else {
      m.weight = static_cast<uint32_t>(std::stoul(value));
    }
  }
  snap();
  verify_tree("a write burst");
}

void ChaosRun::pending_event(const Pending& p, int64_t scheduled) {
  switch (p.kind) {
    case Pending::restart: {
      Proc& q = proc(p.proc);
      if (q.running()) {
        return;
      }
      const int64_t t0 = now_us();
      const std::string error = q.start();
      q.settled_us = now_us() + (param_.health ? kSettleMs * 1000LL : 0);
      log_event("restart", "restart " + q.name + " on port " + std::to_string(q.port) + ": " +
                               (error.empty() ? "pid " + std::to_string(q.pid) : error) + " (" +
                               std::to_string((now_us() - t0) / 1000) + " ms)");
      if (!error.empty()) {
        violation("test set-up: " + error);
      } else if (param_.health) {
        pending_.emplace(scheduled + kSettleMs * 1000LL, Pending{Pending::settle, q.name, "", ""});
      }
      break;
    }
    case Pending::cont: {
      Proc& q = proc(p.proc);
      if (!q.running() || !q.stopped) {
        return;
      }
      ::kill(q.pid, SIGCONT);
      q.stopped = false;
      q.settled_us = now_us() + (param_.health ? kSettleMs * 1000LL : 0);
      for (auto& d : disruptions_) {
        if (d.kind == "stop" && d.proc == q.name && d.t1 == INT64_MAX) {
          d.t1 = now_us();
        }
      }
      log_event("cont", "SIGCONT " + q.name);
      if (param_.health) {
        pending_.emplace(scheduled + kSettleMs * 1000LL, Pending{Pending::settle, q.name, "", ""});
      }
      break;
    }
    case Pending::heal: {
      VipModel& v = vip(p.vip);
      Member* m = v.present ? v.find(p.member) : nullptr;
      const auto w = static_cast<uint32_t>(1 + rng_() % 10);
      if (m == nullptr || m->removing) {
        return;
      }
      std::string text = "heal " + v.name + "/" + m->name + ":";
      const std::string base = "vips/" + v.name + "/backends/" + m->name + "/";
      if (m->weight == 0) {
        const int error = control_write(base + "weight", std::to_string(w));
        text += " weight " + std::to_string(w) + " " + errno_name(error);
        if (error == 0) {
          m->weight = w;
        } else {
          violation("control write " + base + "weight failed: " + errno_name(error));
        }
      }
      if (m->state != "up") {
        const int error = control_write(base + "state", "up");
        text += " state up " + errno_name(error);
        if (error == 0) {
          m->state = "up";
        } else {
          violation("control write " + base + "state failed: " + errno_name(error));
        }
      }
      log_event("heal", text);
      break;
    }
    case Pending::settle:
      break;
  }
  snap();
}

}  // namespace ringlb::test::chaos
