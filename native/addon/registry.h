#pragma once
// Each addon file registers its exports with a static AddonRegistration, so that adding a
// binding never means editing a central list.
#include <napi.h>

#include <functional>
#include <vector>

namespace vl::addon {

using ExportInit = std::function<void(Napi::Env, Napi::Object exports)>;

std::vector<ExportInit>& export_inits();

struct AddonRegistration {
  explicit AddonRegistration(ExportInit init) { export_inits().push_back(std::move(init)); }
};

}  // namespace vl::addon
