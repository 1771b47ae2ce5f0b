// The web page's files, compiled into the binary by cmake/embed_web.cmake (web_assets.cpp is
// generated in the build folder).
#pragma once

#include <cstddef>
#include <string>

namespace semat::serve::web {

struct Asset {
  const char* name;  ///< file name relative to web/, e.g. "app.js"
  const unsigned char* data;
  std::size_t size;
};

/// The embedded file called `name`, or null.
const Asset* find_embedded(const std::string& name);

}  // namespace semat::serve::web
