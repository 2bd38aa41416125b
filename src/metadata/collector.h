// collector: the metadata store's garbage collection (see gc.h for what it
// keeps and removes). Internal to src/metadata; DB::garbage_collect calls it.
#pragma once

#include "errdefs/errdefs.h"
#include "metadata/gc.h"

namespace ctrd::metadata {

class Storage;

// Marks, sweeps and cleans up once; serialized by Storage::gc_lock().
errdefs::StatusOr<GcStats> collect_garbage(const Storage& storage);

}  // namespace ctrd::metadata
