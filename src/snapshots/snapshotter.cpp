#include "snapshots/snapshotter.h"

namespace ctrd::snapshots {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "View";
    case Kind::kActive:
      return "Active";
    case Kind::kCommitted:
      return "Committed";
    case Kind::kUnknown:
      break;
  }
  return "Unknown";
}

}  // namespace ctrd::snapshots
