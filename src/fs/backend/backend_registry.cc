// OpenBackend: the table of backends built into this binary, one line each. A backend whose
// library is not part of the build (its folder has not landed, or its dependencies are
// missing) is simply absent from the table, and its URLs are refused with the list of the
// ones that are here.
#include <string>

#include "common/json_rpc.h"
#include "fs/backend/backend_url.h"
#if DPUSTOR_HAVE_BACKEND_MEMORY
#include "fs/backend/memory/memory_backend.h"
#endif
#if DPUSTOR_HAVE_BACKEND_LOCAL
#include "fs/backend/local/local_backend.h"
#endif
#if DPUSTOR_HAVE_BACKEND_NFS
#include "fs/backend/nfs/nfs_backend.h"
#endif

namespace dpustor::fs {

namespace {

struct BackendFactory {
  std::string_view scheme;
  Result<std::unique_ptr<Backend>> (*open)(const BackendUrl& url);
};

constexpr BackendFactory kBackends[] = {
#if DPUSTOR_HAVE_BACKEND_MEMORY
    {"memory", OpenMemoryBackend},
#endif
#if DPUSTOR_HAVE_BACKEND_LOCAL
    {"local", OpenLocalBackend},
#endif
#if DPUSTOR_HAVE_BACKEND_NFS
    {"nfs", OpenNfsBackend},
#endif
    {"", nullptr},  // keeps the array non-empty when no backend is built
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenBackend(const BackendUrl& url) {
  std::string built;
  for (const BackendFactory& b : kBackends) {
    if (b.open == nullptr) continue;
    if (b.scheme == url.scheme) return b.open(url);
    built += (built.empty() ? "" : ", ") + std::string(b.scheme);
  }
  return Error{rpc::kInvalidParams, "backend '" + url.scheme +
                                        "' is not built into this program (built: " +
                                        (built.empty() ? "none" : built) + ")"};
}

}  // namespace dpustor::fs
