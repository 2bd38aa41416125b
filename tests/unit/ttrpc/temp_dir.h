// A temporary directory for the ttRPC tests' sockets, removed on destruction.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "support/temp_dir.h"

namespace ctrd::ttrpc {

using TempDir = ::ctrd::testing::TempDir;

}  // namespace ctrd::ttrpc
