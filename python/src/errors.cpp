// semat::Error and its kinds -> semat.Error and its subclasses (semat/_errors.py), same message.
#include "binding.h"

#include "semat/core/error.h"

namespace semat::python {

namespace {

void raise(const char* name, const std::exception& e) {
  // Looked up at raise time: the classes live in semat/_errors.py, imported with the package.
  py::object cls = py::module_::import("semat._errors").attr(name);
  PyErr_SetString(cls.ptr(), e.what());
}

}  // namespace

void register_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const ConfigError& e) {
      raise("ConfigError", e);
    } catch (const IoError& e) {
      raise("IoError", e);
    } catch (const DataError& e) {
      raise("DataError", e);
    } catch (const CheckpointError& e) {
      raise("CheckpointError", e);
    } catch (const InvalidArgument& e) {
      raise("InvalidArgument", e);
    } catch (const StateError& e) {
      raise("StateError", e);
    } catch (const Error& e) {
      raise("Error", e);
    }
    // Anything else goes on to pybind11's own translators (std::exception -> RuntimeError...).
  });
  m.def("_raise", [](const std::string& kind, const std::string& message) {
    // Test hook: throws the C++ error of that kind, to check the translation.
    if (kind == "ConfigError") throw ConfigError(message);
    if (kind == "IoError") throw IoError(message);
    if (kind == "DataError") throw DataError(message);
    if (kind == "CheckpointError") throw CheckpointError(message);
    if (kind == "InvalidArgument") throw InvalidArgument(message);
    if (kind == "StateError") throw StateError(message);
    throw Error(message);
  });
}

}  // namespace semat::python
