// Loopback networking shared by the CLI (the `semat train --nproc` launcher) and the tests.
#pragma once

namespace semat {

/// A TCP port on 127.0.0.1 that the kernel handed out a moment ago: bind to port 0, read the
/// port back, close. Another process may take it before the caller binds it, so use it only
/// where that race is harmless or fails loudly (a training rendezvous, a test's server).
/// Returns a port in 1..65535; throws IoError when no socket can be bound on the loopback.
int free_loopback_port();

}  // namespace semat
