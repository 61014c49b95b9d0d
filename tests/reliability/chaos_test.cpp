// The chaos test: ringlbd as an operator meets it, under faults and live changes at once,
// with invariants checked during and after the run.
//
// Set-up of one run: ringlbd (the build's, through the harness's Ringlbd class, with its
// own control mount) in front of real backend processes that are SIGKILLed, SIGSTOPped
// and reset for real: a TCP VIP over four chaos_backend processes (chaos_backend.cpp)
// plus a spare, an HTTP VIP over three nginx processes plus a spare, and a third TCP VIP
// that comes and goes through SIGHUP reloads. Client threads run short echoes, HTTP GETs,
// 1-16 MiB streams (echo with half-close, source, sink) and slow readers, and check every
// byte. Events drawn from the seed alone (type, target, timing) kill, stop, reset,
// re-weight, drain, add and remove backends, switch policies (control tree and reload),
// add and remove the third VIP, reload good and bad files, and burst concurrent writes.
//
// Invariants: (1) ringlbd stays alive; (2) no corrupt byte and no clean early EOF;
// (3) every request to a VIP that had a good backend (running, not stopped, up, weight
// above zero, and in health runs settled: checked up again and out of ejection)
// throughout succeeds, unless its own backend (named by chaos_backend's first bytes or
// nginx's X-Backend header) was killed, stopped, reset or removed meanwhile, or, its
// backend unknown, some backend of its VIP was killed, stopped or reset (or the VIP was
// removed); a reset of a stream older than 90% of max_connection_age_ms is the age limit;
// (4) counters add up when idle; (5) descriptors return to the baseline and RSS stays
// within 32 MiB of it; (6) no sanitizer report (the harness); (7) a final round with every
// backend healthy is clean. Also: a removed VIP refuses connects within 500 ms, an added
// one accepts, a bad reload changes nothing, good reloads apply, control writes succeed,
// and the control tree always shows the model.
//
// A backend that dies must look like one to the client (a reset, never a clean EOF), or
// an early EOF could not be blamed on ringlbd: the kernel ends a dead process's
// connections with a FIN unless data is left unread in them. chaos_backend holds
// SO_LINGER 0 until a connection ends well; an HTTP request is followed by 4 KiB of
// padding that nginx (lingering_close always) reads only after its response, so an nginx
// killed mid-response resets too. One FIN remains that is not ringlbd's: an nginx killed
// after accepting a connection but before the request reached it. An early EOF on the
// HTTP VIP without a single response byte, while an nginx of the VIP was killed, is
// excused as that; every other early EOF is a violation.
//
// Four cases (1 and 2 workers, with and without [vip.health]), 25 s of chaos each by
// default (about 30 s with set-up and checks):
//   build-chaos/tests/reliability/chaos_tests [--seed=N] [--minutes=M | --seconds=S]
// or RINGLB_CHAOS_SEED / RINGLB_CHAOS_SECONDS. A failure prints the event log, the
// failing requests with the events around them and a command that replays the same event
// sequence (RINGLB_CHAOS_VERBOSE=1 prints them for a passing run too).
//
// The files: chaos_test.cpp (this one) the test cases and main(); chaos_common.h the
// options, fixed parameters and small helpers; chaos_procs.h/.cpp the backend processes;
// chaos_requests.h/.cpp the checked requests; chaos_run.h the ChaosRun class, with its
// parts in chaos_run.cpp (set-up, daemon interaction, run()), chaos_events.cpp (events),
// chaos_clients.cpp (client threads) and chaos_checks.cpp (checks after, judgement,
// report); chaos_proto.h and chaos_backend.cpp the backend program and its protocol.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "../proxy/harness.h"
#include "chaos_common.h"
#include "chaos_run.h"

namespace ringlb::test::chaos {

Options g_options;

void PrintTo(const CaseParam& p, std::ostream* os) {
  *os << p.workers << " workers, health " << (p.health ? "on" : "off");
}

namespace {

// ---- the test cases --------------------------------------------------------------------

class Chaos : public testing::TestWithParam<CaseParam> {};

TEST(ChaosSelfTest, FastFillMatchesTheHarnessStream) {
  std::vector<uint8_t> a(1000);
  std::vector<uint8_t> b(1000);
  for (const uint64_t offset : {0ULL, 1ULL, 7ULL, 8ULL, 12345ULL, (1ULL << 33) + 5}) {
    fast_fill(42 + offset, offset, a.data(), a.size());
    fill_stream(42 + offset, offset, b.data(), b.size());
    ASSERT_EQ(a, b) << "offset " << offset;
  }
  EXPECT_EQ(chaos::parse_header(chaos::make_header("t3")), "t3");
  EXPECT_EQ(chaos::parse_header("Xt3_____"), "");
}

TEST_P(Chaos, FaultsAndLiveChangesKeepEveryInvariant) {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  const int index = (GetParam().workers - 1) * 2 + (GetParam().health ? 1 : 0);
  ChaosRun run(GetParam(), index, name);
  run.run();
}

INSTANTIATE_TEST_SUITE_P(Cases, Chaos,
                         testing::Values(CaseParam{1, false}, CaseParam{1, true},
                                         CaseParam{2, false}, CaseParam{2, true}),
                         [](const testing::TestParamInfo<CaseParam>& p) {
                           return "W" + std::to_string(p.param.workers) +
                                  (p.param.health ? "_Health" : "_NoHealth");
                         });

}  // namespace
}  // namespace ringlb::test::chaos

int main(int argc, char** argv) {
  using ringlb::test::chaos::g_options;
  if (const char* s = std::getenv("RINGLB_CHAOS_SEED"); s != nullptr && *s != '\0') {
    g_options.seed = std::strtoull(s, nullptr, 0);
  }
  if (const char* s = std::getenv("RINGLB_CHAOS_SECONDS"); s != nullptr && *s != '\0') {
    g_options.seconds = std::strtod(s, nullptr);
  }
  g_options.argv0 = argv[0];
  // Our flags first; the rest is GoogleTest's.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--seed=")) {
      g_options.seed = std::strtoull(arg.c_str() + 7, nullptr, 0);
    } else if (arg.starts_with("--minutes=")) {
      g_options.seconds = 60 * std::strtod(arg.c_str() + 10, nullptr);
    } else if (arg.starts_with("--seconds=")) {
      g_options.seconds = std::strtod(arg.c_str() + 10, nullptr);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (!(g_options.seconds > 0)) {
    g_options.seconds = ringlb::test::chaos::kDefaultSeconds;
  }
  // In an ASan build of ringlbd, freed memory waits in ASan's quarantine (256 MiB by
  // default) and RSS would measure that instead of the daemon. A small quarantine keeps
  // the RSS invariant meaningful; options given in ASAN_OPTIONS come later and win. Set
  // before any thread starts; every child inherits it.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string options = std::string("quarantine_size_mb=8") +
                              (asan != nullptr && *asan != '\0' ? ":" : "") +
                              (asan != nullptr ? asan : "");
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
