// The control tree as one table of nodes, in the manner of sysfs and configfs
// attributes: a file is a node with a show (read) and a store (write) function, and its
// permissions follow from them (readable with a show, writable with a store). A
// directory holds either fixed nodes or instances the model names now (VIPs, backends,
// workers, verdicts, the pinned maps' VIPs). ControlTree's stat, list, read and write
// all walk this table (tree.cpp); nothing else knows which files exist.
//
// The tables: root_dir() (root_nodes.cpp: stats, metrics, reload, workers/), vips_dir()
// (vip_nodes.cpp: vips/ and backends), xdp_dir() (xdp_nodes.cpp: xdp/). The stores that
// change the running config go through TreeState (edits.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/model/model.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"
#include "ringlb/telemetry/snapshot.h"

namespace ringlb::control {

class TreeState;
struct Ctx;
struct Node;

// A file's show: its content ("value\n"). A file's store: applies `value` (one trailing
// newline already taken off) or fails changing nothing.
using Show = Result<std::string> (*)(const Ctx& ctx, const Node& node);
using Store = Result<void> (*)(Ctx& ctx, const Node& node, std::string_view value);

// A directory's entries: fixed `nodes`, or instances (`names` and `enter` set).
struct Dir {
  std::vector<Node> nodes;
  // The instances' names now.
  Result<std::vector<std::string>> (*names)(const Ctx& ctx) = nullptr;
  // The node of the instance called `name`, with what it names filled into `ctx`;
  // nullptr when there is none.
  Result<const Node*> (*enter)(Ctx& ctx, const std::string& name) = nullptr;
};

struct Node {
  std::string_view name;  // empty for an instance (its name is the path's)
  Show show = nullptr;
  Store store = nullptr;
  const Dir* dir = nullptr;  // set for a directory (which has no show or store)
  // What the node's show and store act on: an index into a field or counter table
  // (sysfs's dev_ext_attribute.var).
  size_t arg = 0;
};

// What a path names, filled in as the walk enters each directory. The snapshots taken
// on the way stay held until the operation ends, so a show reads the objects the
// lookup found. Built per operation; never copied (spec and backend_spec point into it).
struct Ctx {
  explicit Ctx(TreeState& tree) : tree(tree) {}
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;

  TreeState& tree;
  std::string vip;                            // vips/<vip>, xdp/vips/<vip>
  std::string backend;                        // .../backends/<backend>
  size_t worker = 0;                          // workers/<n>
  std::string verdict;                        // xdp/verdicts/<verdict>
  std::shared_ptr<VipRuntime> proxy;          // a proxy VIP,
  std::shared_ptr<const VipState> state;      // and its snapshot
  std::optional<VipSpec> spec_copy;           // a forward VIP (running config), a pinned VIP
  const VipSpec* spec = nullptr;              // the VIP's spec: in `state` or `spec_copy`
  const Backend* live = nullptr;              // a proxy backend, in state's pool
  const BackendSpec* backend_spec = nullptr;  // the backend's spec, in `live` or `spec`
};

// A backend made by mkdir that has no address yet (configfs-style creation).
struct Pending {
  std::string address;  // empty until written
  uint32_t weight = 1;
  AdminState state = AdminState::up;
};

// What the nodes share; ControlTree owns it. Every method may be called from several
// threads.
class TreeState {
 public:
  TreeState(Runtime& runtime, std::function<Result<void>()> reload, std::string pin_root)
      : runtime(runtime), reload(std::move(reload)), pin_root(std::move(pin_root)) {}

  Runtime& runtime;
  const std::function<Result<void>()> reload;
  const std::string pin_root;

  // Changes of the running config (Runtime::edit): `change` runs under the writer lock
  // on the VIP called `vip` (a proxy VIP; ENOENT naming `file` otherwise) or on its
  // backend (ENOENT when there is none).
  Result<void> edit_vip(const std::string& vip, std::string_view file,
                        const std::function<void(VipSpec&)>& change);
  Result<void> edit_backend(
      const std::string& vip, const std::string& backend,
      const std::function<Result<void>(const VipSpec&, BackendSpec&)>& change);

  // Pending backends of `vip`: their names; one's settings; changing them; completing
  // one with its address (it joins the VIP's backends, checked under the writer lock).
  std::vector<std::string> pending_names(const std::string& vip) const;
  std::optional<Pending> pending(const std::string& vip, const std::string& backend) const;
  Result<void> update_pending(const std::string& vip, const std::string& backend,
                              const std::function<void(Pending&)>& change);
  Result<void> complete_pending(const std::string& vip, const std::string& backend,
                                std::string_view address);

  // mkdir and rmdir of vips/<vip>/backends/<name> (tree.h).
  Result<void> make_backend(std::string_view path);
  Result<void> remove_backend(std::string_view path);

 private:
  // Waits until `backend` of proxy VIP `vip` (set to drain) has no connection left, at
  // most drain_timeout_ms, then resets what remains.
  void drain(const std::string& vip, const std::string& backend);

  mutable std::mutex pending_mu_;
  std::map<std::pair<std::string, std::string>, Pending> pending_;
  // (vip, backend) pairs an rmdir is draining: they no longer count as a VIP's
  // remaining backends. Guarded by the Runtime's writer lock: touched only inside
  // Runtime::edit callbacks.
  std::set<std::pair<std::string, std::string>> removing_;
};

// The tables.
const Dir& root_dir();
const Dir& vips_dir();
const Dir& xdp_dir();

// Every counter for the root files: the proxy's and the XDP verdicts' when a program
// has pinned its maps under the pin root.
telemetry::Snapshot counter_snapshot(const TreeState& tree);
// The XDP verdict counters pinned under `pin_root`; nullopt when no program pinned them.
Result<std::optional<std::vector<telemetry::VerdictRow>>> read_verdicts(
    const std::string& pin_root);
// The flow-table events pinned under `pin_root` (flow_stats); empty when none are.
std::vector<telemetry::FlowEventRow> read_flow_events(const std::string& pin_root);

// Files any VIP or backend directory may have (vip_nodes.cpp), shown from ctx.spec and
// ctx.backend_spec; weight and state stores edit the running config's backend.
Result<std::string> show_listen(const Ctx& ctx, const Node& node);
Result<std::string> show_protocol(const Ctx& ctx, const Node& node);
Result<std::string> show_address(const Ctx& ctx, const Node& node);
Result<std::string> show_weight(const Ctx& ctx, const Node& node);
Result<std::string> show_state(const Ctx& ctx, const Node& node);
Result<void> store_weight(Ctx& ctx, const Node& node, std::string_view value);
Result<void> store_state(Ctx& ctx, const Node& node, std::string_view value);

// ---- Helpers of the node functions ----

std::vector<std::string> split(std::string_view path);
Error not_found(std::string_view path);
Error invalid(const std::string& why);
Error read_only(std::string_view file);
// "<what>: <message>", EINVAL: a value the model's rules refuse.
Error refused(std::string_view what, const Error& why);
// A file's content: one value and a newline.
std::string line(std::string_view value);
std::string line(uint64_t value);

}  // namespace ringlb::control
