// Every error semat raises derives from semat::Error. Only program boundaries (CLI main, the HTTP
// layer) turn them into exit codes or responses; everything else throws or adds context.
#pragma once

#include <stdexcept>
#include <string>

namespace semat {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad user configuration, flags or arguments that are not tied to one input value.
class ConfigError : public Error {
 public:
  using Error::Error;
};
/// A file that cannot be read, decoded or written.
class IoError : public Error {
 public:
  using Error::Error;
};
/// Input data that is well-formed on disk but unusable (empty mask, trimap without unknowns...).
class DataError : public Error {
 public:
  using Error::Error;
};
/// Checkpoint format, version, key or shape problems.
class CheckpointError : public Error {
 public:
  using Error::Error;
};
/// A bad value given to an API (a box outside the image, a negative size...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};
/// An API used in the wrong order.
class StateError : public Error {
 public:
  using Error::Error;
};

/// Process exit code for an error: 2 usage/config/argument, 3 I/O, data or checkpoint, 1 other.
int exit_code_for(const std::exception& e) noexcept;

}  // namespace semat

/// Throws `type` with the streamed message when `cond` is false, e.g.
/// SEMAT_CHECK(w > 0, semat::InvalidArgument, "width must be positive, got " << w);
#define SEMAT_CHECK(cond, type, msg)        \
  do {                                      \
    if (!(cond)) {                          \
      ::std::ostringstream semat_check_os_; \
      semat_check_os_ << msg;               \
      throw type(semat_check_os_.str());    \
    }                                       \
  } while (0)

#include <sstream>
