// A loadable plugin for loader_test, compiled into several shared objects that
// differ by macros: a good one, one stamped otherwise, one without an entry
// point, one without a stamp, and ones whose registrations are refused.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "plugin/loadable.h"

namespace {

// Runs at dlopen. A file refused for its stamp must never get that far, which
// the tests see by the marker file this leaves behind.
struct Marker {
  Marker() {
    const char* dir = std::getenv("CTRD_TEST_PLUGIN_MARKER_DIR");
    if (dir == nullptr) return;
    if (FILE* f = std::fopen((std::string(dir) + "/" + CTRD_TEST_PLUGIN_ID).c_str(), "w")) std::fclose(f);
  }
} marker;

struct Greeter {
  std::string greeting = "hello from " CTRD_TEST_PLUGIN_ID;
};

[[maybe_unused]] void register_test_plugin(ctrd::plugin::Registry& registry) {
  registry.register_plugin({
      .type = std::string(ctrd::plugin::type::kInternal),
      .id = CTRD_TEST_PLUGIN_REGISTERED_ID,
      .init = [](ctrd::plugin::InitContext& ic) -> ctrd::errdefs::StatusOr<ctrd::plugin::Instance> {
        auto greeter = std::make_shared<Greeter>();
        ic.meta().exports["greeting"] = greeter->greeting;
        return ctrd::plugin::Instance::of<Greeter>(greeter);
      },
  });
}

}  // namespace

#if defined(CTRD_TEST_PLUGIN_NO_ENTRY)
CTRD_PLUGIN_ABI_STAMP_DEFINITION;
#elif defined(CTRD_TEST_PLUGIN_NO_STAMP)
extern "C" CTRD_PLUGIN_EXPORT void ctrd_register_plugins(ctrd::plugin::Registry& registry) {
  register_test_plugin(registry);
}
#else
CTRD_PLUGIN_ENTRY(registry) { register_test_plugin(registry); }
#endif
