// The Ceph agent's block-volume methods (docs/protocol.md, "Ceph agent methods"): rbd.create,
// rbd.resize, rbd.snapshot, rbd.delete, rbd.info, ceph.client_key and ceph.cluster_info,
// carried out with the rbd and ceph tools through CephCli.
//
// CephOps holds the logic: every request is decoded and checked in full (names, sizes) before
// any command runs, every operation is idempotent (repeating it converges and never fails
// because an earlier attempt half-succeeded), and every failure is an Error with a JSON-RPC
// code and a message that names the pool, image or user. cephx keys never appear in errors
// or logs. Mutations of one image (or one cephx user) are serialised, so two concurrent
// creates of the same image cannot race; different images proceed in parallel.
//
// RegisterCephMethods adds the methods to an agent's method table. The commands block for up
// to the command time limit, so they run on a pool of two threads of the registration, never
// on the session's event loop; bad params are refused at once, on the caller's thread.
//
// Thread-safety: CephOps is safe to use from several threads at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/ceph/ceph_cli.h"
#include "agent/common/agent_session.h"
#include "common/method_table.h"
#include "common/status.h"

namespace dpustor::agent::ceph {

// Pool, image, snapshot and cephx user names: 1-100 characters of [A-Za-z0-9._-], not
// starting with '-' or '.'. Returns what is wrong with `name`, or "" when it is fine.
std::string NameProblem(std::string_view name);

// The `mon_host` line a client's ceph.conf needs, from `ceph mon dump --format json`: one
// "[v2:IP:PORT,v1:IP:PORT]" group per monitor in rank order, separated by commas.
Result<std::string> MonHostFromMonDump(const nlohmann::json& dump);

// `text` with every cephx key (base64 starting "AQ", also cut short) replaced by "<key>".
std::string ScrubKeys(std::string text);

class CephOps {
 public:
  struct Method {
    std::string name;
    std::string summary;
  };
  // The methods CephOps implements, in the order of docs/protocol.md.
  static const std::vector<Method>& Methods();

  // A decoded request, ready to run: blocks for as long as its commands take and never
  // throws. Valid while the CephOps that prepared it lives.
  using Operation = std::function<Result<nlohmann::json>()>;

  explicit CephOps(std::shared_ptr<const CephCli> cli) : cli_(std::move(cli)) {}

  // Decodes and checks the params of `method` without running anything; throws
  // rpc::CallError (kInvalidParams naming the field, kMethodNotFound).
  Operation Prepare(const std::string& method, const nlohmann::json& params) const;

  // Prepare and run on the calling thread; errors as values.
  Result<nlohmann::json> Call(const std::string& method, const nlohmann::json& params) const;

 private:
  // Serialises work on one key ("image:POOL/IMAGE", "client:ID").
  class KeyLocks {
   public:
    class Guard {
     public:
      Guard(KeyLocks& locks, std::string key);
      ~Guard();
      Guard(const Guard&) = delete;
      Guard& operator=(const Guard&) = delete;

     private:
      KeyLocks& locks_;
      std::string key_;
    };

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::set<std::string> held_;
  };

  Result<nlohmann::json> Create(const std::string& pool, const std::string& image,
                                std::uint64_t size) const;
  Result<nlohmann::json> Resize(const std::string& pool, const std::string& image,
                                std::uint64_t size, bool allow_shrink) const;
  Result<nlohmann::json> Snapshot(const std::string& pool, const std::string& image,
                                  const std::string& snapshot) const;
  Result<nlohmann::json> Delete(const std::string& pool, const std::string& image) const;
  Result<nlohmann::json> Info(const std::string& pool, const std::string& image) const;
  Result<nlohmann::json> ClientKey(const std::string& client,
                                   const std::vector<std::string>& pools) const;
  Result<nlohmann::json> ClusterInfo() const;

  // `rbd info`: the image's JSON, null when the image does not exist; a missing pool is
  // kNotFound.
  Result<nlohmann::json> RbdInfo(const std::string& pool, const std::string& image) const;
  // `rbd snap ls`: the snapshot rows; a missing image or pool is kNotFound.
  Result<nlohmann::json> SnapList(const std::string& pool, const std::string& image) const;

  std::shared_ptr<const CephCli> cli_;
  mutable KeyLocks locks_;
};

// Registers CephOps::Methods() on `table`, each run on the registration's own threads.
void RegisterCephMethods(rpc::MethodTable<AgentSession>& table, std::shared_ptr<const CephCli> cli);

}  // namespace dpustor::agent::ceph
