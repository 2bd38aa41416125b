// proxy/content: a content store served by another process — a
// content::Store that forwards each call over
// containerd.services.content.v1.Content (reads and writes as streams).
#pragma once

#include <memory>

#include "content/content.h"
#include "proxy/channel.h"

namespace ctrd::proxy {

std::shared_ptr<content::Store> new_content_store(std::shared_ptr<Connection> connection);

}  // namespace ctrd::proxy
