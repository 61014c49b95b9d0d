// ControlTree: every operation walks the node table (node.h).
#include "ringlb/control/tree.h"

#include <cerrno>

#include "node.h"

namespace ringlb::control {

namespace {

const Node& root_node() {
  static const Node root{.name = "", .dir = &root_dir()};
  return root;
}

// The node `path` names, with `ctx` filled on the way; ENOENT naming the path when
// nothing is there.
Result<const Node*> walk(Ctx& ctx, std::string_view path) {
  const Node* node = &root_node();
  for (const std::string& part : split(path)) {
    if (node->dir == nullptr) {
      return not_found(path);
    }
    const Dir& dir = *node->dir;
    const Node* child = nullptr;
    if (dir.enter != nullptr) {
      auto entered = dir.enter(ctx, part);
      if (!entered) {
        return entered.error();
      }
      child = *entered;
    } else {
      for (const Node& n : dir.nodes) {
        if (n.name == part) {
          child = &n;
          break;
        }
      }
    }
    if (child == nullptr) {
      return not_found(path);
    }
    node = child;
  }
  return node;
}

std::string_view trim_newline(std::string_view value) {
  if (!value.empty() && value.back() == '\n') {
    value.remove_suffix(1);
  }
  return value;
}

Error is_a_directory(std::string_view path) {
  return Error{std::string(path) + " is a directory", EISDIR};
}

// The file `path` names: walk()'s errors, or EISDIR for a directory.
Result<const Node*> walk_file(Ctx& ctx, std::string_view path) {
  auto node = walk(ctx, path);
  if (node && (*node)->dir != nullptr) {
    return is_a_directory(path);
  }
  return node;
}

}  // namespace

ControlTree::ControlTree(Runtime& runtime, std::function<Result<void>()> reload,
                         std::string pin_root)
    : state_(std::make_unique<TreeState>(runtime, std::move(reload), std::move(pin_root))) {}

ControlTree::~ControlTree() = default;

Result<NodeInfo> ControlTree::stat(std::string_view path) const {
  Ctx ctx(*state_);
  auto node = walk(ctx, path);
  if (!node) {
    return node.error();
  }
  if ((*node)->dir != nullptr) {
    return NodeInfo{NodeKind::directory, true, false};
  }
  return NodeInfo{NodeKind::file, (*node)->show != nullptr, (*node)->store != nullptr};
}

Result<std::vector<std::string>> ControlTree::list(std::string_view path) const {
  Ctx ctx(*state_);
  auto node = walk(ctx, path);
  if (!node) {
    return node.error();
  }
  const Dir* dir = (*node)->dir;
  if (dir == nullptr) {
    return Error{std::string(path) + " is not a directory", ENOTDIR};
  }
  if (dir->names != nullptr) {
    return dir->names(ctx);
  }
  std::vector<std::string> names;
  for (const Node& n : dir->nodes) {
    names.emplace_back(n.name);
  }
  return names;
}

Result<std::string> ControlTree::read(std::string_view path) const {
  Ctx ctx(*state_);
  auto node = walk_file(ctx, path);
  if (!node) {
    return node.error();
  }
  if ((*node)->show == nullptr) {
    return Error{std::string(path) + " is write-only", EACCES};
  }
  return (*node)->show(ctx, **node);
}

Result<void> ControlTree::write(std::string_view path, std::string_view value) {
  Ctx ctx(*state_);
  auto node = walk_file(ctx, path);
  if (!node) {
    return node.error();
  }
  if ((*node)->store == nullptr) {
    return read_only(split(path).back());
  }
  return (*node)->store(ctx, **node, trim_newline(value));
}

Result<void> ControlTree::make_directory(std::string_view path) {
  return state_->make_backend(path);
}

Result<void> ControlTree::remove_directory(std::string_view path) {
  return state_->remove_backend(path);
}

// ---- Helpers of the node functions (node.h) ----

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (end > start) {
      parts.emplace_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

Error not_found(std::string_view path) {
  return Error{"no such file: " + std::string(path), ENOENT};
}

Error invalid(const std::string& why) {
  return Error{why, EINVAL};
}

Error read_only(std::string_view file) {
  return Error{std::string(file) + " is read-only", EACCES};
}

Error refused(std::string_view what, const Error& why) {
  return invalid(std::string(what) + ": " + why.message);
}

std::string line(std::string_view value) {
  return std::string(value) + "\n";
}

std::string line(uint64_t value) {
  return std::to_string(value) + "\n";
}

}  // namespace ringlb::control
