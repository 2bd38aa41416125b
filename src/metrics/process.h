// metrics/process: the standard process_* metrics every Prometheus client
// exports (resident and virtual memory, CPU time, open and max fds, start
// time), read from /proc/self at scrape time.
#pragma once

#include <memory>

#include "metrics/metrics.h"

namespace ctrd::metrics {

std::shared_ptr<Collector> process_collector();

}  // namespace ctrd::metrics
