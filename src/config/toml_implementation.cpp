// toml++'s implementation, compiled once here instead of linked from its shared
// library (every other file includes it with TOML_HEADER_ONLY=0).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
