#include "ringlb/model/fields.h"

#include <algorithm>
#include <charconv>

namespace ringlb {

namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

template <class S>
S* find_named(std::span<S> items, std::string_view name) {
  for (auto& item : items) {
    if (item.name == name) {
      return &item;
    }
  }
  return nullptr;
}

}  // namespace

const UintField<VipSpec>* vip_uint_field(std::string_view name) {
  for (const auto& field : kVipUintFields) {
    if (field.name == name) {
      return &field;
    }
  }
  return nullptr;
}

std::string uint_error(UintRange range, std::string_view got) {
  return "expected an integer in " + std::to_string(range.min) + ".." + std::to_string(range.max) +
         ", got " + std::string(got);
}

Result<uint32_t> parse_uint(std::string_view text, UintRange range) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool number = all_digits(text) && ec == std::errc{} && end == text.data() + text.size();
  if (!number || !range.contains(value)) {
    return Error{uint_error(range, number ? text : quoted(text)), EINVAL};
  }
  return static_cast<uint32_t>(value);
}

std::string choice_error(std::string_view words, std::string_view got) {
  return "expected one of " + std::string(words) + ", got " + quoted(got);
}

std::string name_error(std::string_view got) {
  return "expected 1..64 characters of [A-Za-z0-9_.-], got " + quoted(got);
}

std::string listen_error(std::string_view got) {
  return "expected ip:port (\"192.0.2.1:80\" or \"[2001:db8::1]:80\"), got " + quoted(got);
}

Result<SocketAddress> parse_listen(std::string_view text) {
  if (auto address = SocketAddress::parse(text)) {
    return *address;
  }
  return Error{listen_error(text), EINVAL};
}

std::string backend_address_error(Mode mode, std::string_view got) {
  return mode == Mode::proxy
             ? listen_error(got)
             : "expected an IP address without port (forward mode), got " + quoted(got);
}

Result<SocketAddress> parse_backend_address(std::string_view text, Mode mode) {
  if (mode == Mode::proxy) {
    if (auto address = SocketAddress::parse(text)) {
      return *address;
    }
  } else if (auto ip = IpAddress::parse(text)) {
    return SocketAddress{.ip = *ip, .port = 0};
  }
  return Error{backend_address_error(mode, text), EINVAL};
}

VipSpec* find_vip(std::vector<VipSpec>& vips, std::string_view name) {
  return find_named(std::span(vips), name);
}
const VipSpec* find_vip(const std::vector<VipSpec>& vips, std::string_view name) {
  return find_named(std::span(vips), name);
}
BackendSpec* find_backend(VipSpec& vip, std::string_view name) {
  return find_named(std::span<BackendSpec>(vip.backends), name);
}
const BackendSpec* find_backend(const VipSpec& vip, std::string_view name) {
  return find_named(std::span<const BackendSpec>(vip.backends), name);
}

}  // namespace ringlb
