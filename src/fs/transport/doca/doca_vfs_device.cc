// Written against the DOCA 2.9-3.2 DevEmu Virtio-fs, DMA, mmap and buffer-inventory
// headers; compiled only with DPUSTOR_DOCA (docs/doca.md says what was verified where).
#include "fs/transport/doca/doca_vfs_device.h"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

extern "C" {
#include <doca_buf.h>
#include <doca_buf_inventory.h>
#include <doca_ctx.h>
#include <doca_dev.h>
#include <doca_devemu_vfs.h>
#include <doca_devemu_vfs_io.h>
#include <doca_devemu_vfs_type.h>
#include <doca_dma.h>
#include <doca_error.h>
#include <doca_mmap.h>
#include <doca_pe.h>
}

#include "common/json_rpc.h"

namespace dpustor::fs::doca {
namespace {

Error DocaError(const char* what, doca_error_t err) {
  return Error{rpc::kFailed, std::string("doca: ") + what + ": " + doca_error_get_name(err)};
}

}  // namespace

// One request slot: a local buffer (request bytes, then reply bytes) and its DMA state.
struct Slot : Completion {
  struct DocaVfsDevice::Rep* rep = nullptr;
  doca_devemu_vfs_req* req = nullptr;
  uint8_t* in = nullptr;   // max_request_bytes
  uint8_t* out = nullptr;  // max_request_bytes
  size_t in_len = 0;
  size_t out_cap = 0;
  size_t reply_bytes = 0;
  int dma_pending = 0;
  bool replying = false;  // the DMA in flight carries the reply back to the host
  bool failed = false;
  void Complete(size_t bytes) override;
};

struct DocaVfsDevice::Rep {
  Rep(VirtioFsHandler& h, DocaVfsOptions o) : handler(h), options(std::move(o)) {}

  VirtioFsHandler& handler;
  const DocaVfsOptions options;
  doca_dev* manager = nullptr;
  doca_dev_rep* function = nullptr;
  doca_devemu_vfs_type* type = nullptr;
  doca_devemu_vfs_dev* dev = nullptr;
  doca_devemu_vfs_io* io = nullptr;
  doca_pe* pe = nullptr;
  doca_dma* dma = nullptr;
  doca_mmap* local = nullptr;
  doca_buf_inventory* inventory = nullptr;
  std::vector<uint8_t> arena;
  std::vector<Slot> slots;
  std::vector<Slot*> free_slots;  // progress thread only

  std::thread progress;
  std::atomic<bool> stop{false};
  std::atomic<bool> running{false};
  std::atomic<size_t> inflight{0};
  std::atomic<uint64_t> requests{0}, dropped{0}, resets{0};
  std::mutex done_mu;  // completions from handler threads, drained by the progress thread
  std::vector<Slot*> done;

  // ---- progress thread --------------------------------------------------------------
  void OnRequest(doca_devemu_vfs_req* req) {
    requests.fetch_add(1, std::memory_order_relaxed);
    doca_buf* datain = doca_devemu_vfs_req_get_datain(req);
    uint32_t in_len = doca_devemu_vfs_req_get_datain_data_len(req);
    uint32_t out_cap = doca_devemu_vfs_req_get_dataout_data_len(req);
    if (free_slots.empty() || datain == nullptr || in_len > options.max_request_bytes ||
        out_cap > options.max_request_bytes) {
      // More requests than slots cannot happen with a well-behaved driver; buffers larger
      // than max_pages allow are refused the same way the engine refuses them: no reply.
      dropped.fetch_add(1, std::memory_order_relaxed);
      doca_devemu_vfs_req_complete(req, 0);
      return;
    }
    Slot* s = free_slots.back();
    free_slots.pop_back();
    inflight.fetch_add(1, std::memory_order_relaxed);
    s->req = req;
    s->in_len = in_len;
    s->out_cap = out_cap;
    s->reply_bytes = 0;
    s->replying = false;
    s->failed = false;
    s->dma_pending = 0;
    // Host buffers -> local buffer, one DMA per element of the host's scatter list.
    size_t off = 0;
    for (doca_buf* b = datain; b != nullptr && !s->failed; b = Next(b)) {
      size_t len = DataLen(b);
      if (len == 0) continue;
      if (len > in_len - off) len = in_len - off;
      Copy(s, b, s->in + off, len, /*to_host=*/false);
      off += len;
    }
    if (s->dma_pending == 0) Dispatch(s);
  }

  void OnDmaDone(Slot* s, bool ok) {
    if (!ok) s->failed = true;
    if (--s->dma_pending > 0) return;
    if (!s->replying) return Dispatch(s);
    Finish(s, s->failed ? 0 : s->reply_bytes);
  }

  // The request's bytes are local: hand them to the handler (the FUSE engine).
  void Dispatch(Slot* s) {
    if (s->failed) return Finish(s, 0);
    iovec in{s->in, s->in_len};
    iovec out{s->out, s->out_cap};
    handler.Handle(1, {&in, 1}, {&out, s->out_cap ? 1u : 0u}, s);
  }

  void DrainCompletions() {
    std::vector<Slot*> ready;
    {
      std::lock_guard lock(done_mu);
      ready.swap(done);
    }
    for (Slot* s : ready) {
      if (s->reply_bytes == 0) {
        Finish(s, 0);
        continue;
      }
      // Local reply -> host buffers, in order, only as many bytes as the reply holds.
      s->replying = true;
      size_t off = 0;
      for (doca_buf* b = doca_devemu_vfs_req_get_dataout(s->req);
           b != nullptr && off < s->reply_bytes && !s->failed; b = Next(b)) {
        size_t len = std::min(BufLen(b), s->reply_bytes - off);
        if (len == 0) continue;
        Copy(s, b, s->out + off, len, /*to_host=*/true);
        off += len;
      }
      if (s->dma_pending == 0) Finish(s, s->failed ? 0 : s->reply_bytes);
    }
  }

  void Finish(Slot* s, size_t bytes) {
    doca_devemu_vfs_req_complete(s->req, static_cast<uint32_t>(bytes));
    s->req = nullptr;
    free_slots.push_back(s);
    inflight.fetch_sub(1, std::memory_order_relaxed);
  }

  // One DMA between a host element and local memory; completion comes through OnDmaDone.
  void Copy(Slot* s, doca_buf* host, uint8_t* local_addr, size_t len, bool to_host) {
    doca_buf* mine = nullptr;
    doca_error_t err =
        to_host ? doca_buf_inventory_buf_get_by_data(inventory, local, local_addr, len, &mine)
                : doca_buf_inventory_buf_get_by_addr(inventory, local, local_addr, len, &mine);
    doca_dma_task_memcpy* task = nullptr;
    if (err == DOCA_SUCCESS) {
      union doca_data user;
      user.ptr = s;
      err = doca_dma_task_memcpy_alloc_init(dma, to_host ? mine : host, to_host ? host : mine, user,
                                            &task);
    }
    if (err == DOCA_SUCCESS) err = doca_task_submit(doca_dma_task_memcpy_as_task(task));
    if (err != DOCA_SUCCESS) {
      spdlog::warn("doca: DMA submit failed: {}", doca_error_get_name(err));
      if (task) doca_task_free(doca_dma_task_memcpy_as_task(task));
      if (mine) doca_buf_dec_refcount(mine, nullptr);
      s->failed = true;
      return;
    }
    ++s->dma_pending;
  }

  static doca_buf* Next(doca_buf* b) {
    doca_buf* next = nullptr;
    return doca_buf_get_next_in_list(b, &next) == DOCA_SUCCESS ? next : nullptr;
  }
  static size_t DataLen(doca_buf* b) {
    size_t len = 0;
    return doca_buf_get_data_len(b, &len) == DOCA_SUCCESS ? len : 0;
  }
  static size_t BufLen(doca_buf* b) {
    size_t len = 0;
    return doca_buf_get_len(b, &len) == DOCA_SUCCESS ? len : 0;
  }

  void Run() {
    while (!stop.load(std::memory_order_relaxed)) {
      doca_pe_progress(pe);
      DrainCompletions();
    }
  }

  // ---- setup and teardown -----------------------------------------------------------
  Status Open();
  void Close();
};

void Slot::Complete(size_t bytes) {
  reply_bytes = std::min(bytes, out_cap);
  std::lock_guard lock(rep->done_mu);
  rep->done.push_back(this);
}

namespace {

void RequestNotice(doca_devemu_vfs_req* req, void*, union doca_data user) {
  static_cast<DocaVfsDevice::Rep*>(user.ptr)->OnRequest(req);
}

// Releases the task and our local buffer (the source when replying, else the
// destination); the host's buffers belong to the request.
void DmaFinished(doca_dma_task_memcpy* task, union doca_data task_user, bool ok) {
  auto* s = static_cast<Slot*>(task_user.ptr);
  const doca_buf* mine =
      s->replying ? doca_dma_task_memcpy_get_src(task) : doca_dma_task_memcpy_get_dst(task);
  doca_buf_dec_refcount(const_cast<doca_buf*>(mine), nullptr);
  doca_task_free(doca_dma_task_memcpy_as_task(task));
  s->rep->OnDmaDone(s, ok);
}

void DmaDone(doca_dma_task_memcpy* task, union doca_data task_user, union doca_data) {
  DmaFinished(task, task_user, true);
}

void DmaError(doca_dma_task_memcpy* task, union doca_data task_user, union doca_data) {
  DmaFinished(task, task_user, false);
}

// The driver reset the device (reboot, driver reload): end the FUSE session once every
// request of the old driver has completed.
void ResetEvent(doca_devemu_virtio_dev*, union doca_data user) {
  auto* rep = static_cast<DocaVfsDevice::Rep*>(user.ptr);
  while (rep->inflight.load() > 0) {
    doca_pe_progress(rep->pe);
    rep->DrainCompletions();
  }
  rep->resets.fetch_add(1);
  rep->handler.SessionEnded();
}

doca_dev* OpenManager(const std::string& name) {
  doca_devinfo** list = nullptr;
  uint32_t n = 0;
  doca_dev* found = nullptr;
  if (doca_devinfo_create_list(&list, &n) != DOCA_SUCCESS) return nullptr;
  for (uint32_t i = 0; i < n && !found; ++i) {
    char ibdev[DOCA_DEVINFO_IBDEV_NAME_SIZE] = {};
    if (doca_devinfo_get_ibdev_name(list[i], ibdev, sizeof ibdev) == DOCA_SUCCESS && name == ibdev)
      doca_dev_open(list[i], &found);
  }
  doca_devinfo_destroy_list(list);
  return found;
}

doca_dev_rep* OpenFunction(doca_dev* manager, const std::string& vuid) {
  doca_devinfo_rep** list = nullptr;
  uint32_t n = 0;
  doca_dev_rep* found = nullptr;
  if (doca_devinfo_rep_create_list(manager, DOCA_DEVINFO_REP_FILTER_EMULATED, &list, &n) !=
      DOCA_SUCCESS)
    return nullptr;
  for (uint32_t i = 0; i < n && !found; ++i) {
    char id[DOCA_DEVINFO_REP_VUID_SIZE] = {};
    if (doca_devinfo_rep_get_vuid(list[i], id, sizeof id) == DOCA_SUCCESS && vuid == id)
      doca_dev_rep_open(list[i], &found);
  }
  doca_devinfo_rep_destroy_list(list);
  return found;
}

}  // namespace

Status DocaVfsDevice::Rep::Open() {
  if (options.tag.empty() || options.tag.size() > 36) return Error{rpc::kInvalidParams, "tag"};
  manager = OpenManager(options.manager);
  if (!manager) return Error{rpc::kNotFound, "doca: no device " + options.manager};
  function = OpenFunction(manager, options.vuid);
  if (!function) return Error{rpc::kNotFound, "doca: no emulated function " + options.vuid};
  doca_error_t err;
  if ((err = doca_pe_create(&pe)) != DOCA_SUCCESS) return DocaError("progress engine", err);
  if ((err = doca_devemu_vfs_type_create(manager, &type)) != DOCA_SUCCESS ||
      (err = doca_ctx_start(doca_devemu_vfs_type_as_ctx(type))) != DOCA_SUCCESS)
    return DocaError("virtio-fs type", err);
  if ((err = doca_devemu_vfs_dev_create(type, function, pe, &dev)) != DOCA_SUCCESS)
    return DocaError("virtio-fs device", err);
  char tag[DOCA_VFS_TAG_SIZE] = {};
  std::memcpy(tag, options.tag.data(), options.tag.size());
  doca_devemu_virtio_dev* virtio = doca_devemu_vfs_dev_as_virtio_dev(dev);
  if ((err = doca_devemu_vfs_dev_set_tag(dev, tag)) != DOCA_SUCCESS ||
      (err = doca_devemu_vfs_dev_set_num_request_queues(dev, options.request_queues)) !=
          DOCA_SUCCESS ||
      (err = doca_devemu_virtio_dev_set_num_queues(virtio, options.request_queues + 1)) !=
          DOCA_SUCCESS ||
      (err = doca_devemu_virtio_dev_set_queue_size(virtio, options.queue_size)) != DOCA_SUCCESS)
    return DocaError("device attributes", err);
  union doca_data self;
  self.ptr = this;
  if ((err = doca_devemu_virtio_dev_event_reset_register(virtio, ResetEvent, self)) != DOCA_SUCCESS)
    return DocaError("reset event", err);
  if ((err = doca_ctx_start(doca_devemu_vfs_dev_as_ctx(dev))) != DOCA_SUCCESS)
    return DocaError("device start", err);

  // Local buffers: one in + one out area per ring slot of every queue.
  const size_t count = static_cast<size_t>(options.queue_size) * (options.request_queues + 1);
  arena.resize(count * 2 * options.max_request_bytes);
  slots.resize(count);
  for (size_t i = 0; i < count; ++i) {
    slots[i].rep = this;
    slots[i].in = arena.data() + 2 * i * options.max_request_bytes;
    slots[i].out = slots[i].in + options.max_request_bytes;
    free_slots.push_back(&slots[i]);
  }
  if ((err = doca_mmap_create(&local)) != DOCA_SUCCESS ||
      (err = doca_mmap_set_memrange(local, arena.data(), arena.size())) != DOCA_SUCCESS ||
      (err = doca_mmap_add_dev(local, manager)) != DOCA_SUCCESS ||
      (err = doca_mmap_start(local)) != DOCA_SUCCESS)
    return DocaError("local memory map", err);
  if ((err = doca_buf_inventory_create(4 * count, &inventory)) != DOCA_SUCCESS ||
      (err = doca_buf_inventory_start(inventory)) != DOCA_SUCCESS)
    return DocaError("buffer inventory", err);
  if ((err = doca_dma_create(manager, &dma)) != DOCA_SUCCESS ||
      (err = doca_dma_task_memcpy_set_conf(dma, DmaDone, DmaError,
                                           static_cast<uint32_t>(4 * count))) != DOCA_SUCCESS ||
      (err = doca_pe_connect_ctx(pe, doca_dma_as_ctx(dma))) != DOCA_SUCCESS ||
      (err = doca_ctx_start(doca_dma_as_ctx(dma))) != DOCA_SUCCESS)
    return DocaError("DMA context", err);
  if ((err = doca_devemu_vfs_io_create(dev, pe, &io)) != DOCA_SUCCESS ||
      (err = doca_devemu_vfs_io_event_vfs_req_notice_register(io, RequestNotice, self)) !=
          DOCA_SUCCESS ||
      (err = doca_ctx_start(doca_devemu_vfs_io_as_ctx(io))) != DOCA_SUCCESS)
    return DocaError("IO context", err);
  return {};
}

void DocaVfsDevice::Rep::Close() {
  if (io) {
    doca_ctx_stop(doca_devemu_vfs_io_as_ctx(io));
    doca_devemu_vfs_io_destroy(io);
  }
  if (dma) {
    doca_ctx_stop(doca_dma_as_ctx(dma));
    doca_dma_destroy(dma);
  }
  if (inventory) doca_buf_inventory_destroy(inventory);
  if (local) doca_mmap_destroy(local);
  if (dev) {
    doca_ctx_stop(doca_devemu_vfs_dev_as_ctx(dev));
    doca_devemu_vfs_dev_destroy(dev);
  }
  if (type) {
    doca_ctx_stop(doca_devemu_vfs_type_as_ctx(type));
    doca_devemu_vfs_type_destroy(type);
  }
  if (pe) doca_pe_destroy(pe);
  if (function) doca_dev_rep_close(function);
  if (manager) doca_dev_close(manager);
  io = nullptr, dma = nullptr, inventory = nullptr, local = nullptr, dev = nullptr;
  type = nullptr, pe = nullptr, function = nullptr, manager = nullptr;
}

DocaVfsDevice::DocaVfsDevice(VirtioFsHandler& handler, DocaVfsOptions options)
    : rep_(std::make_unique<Rep>(handler, std::move(options))) {}

DocaVfsDevice::~DocaVfsDevice() {
  Stop();
}

Status DocaVfsDevice::Start() {
  if (Status s = rep_->Open(); !s.ok()) {
    rep_->Close();
    return s;
  }
  rep_->running.store(true);
  rep_->progress = std::thread([rep = rep_.get()] { rep->Run(); });
  spdlog::info("doca: virtio-fs function {} on {} serves tag {}", rep_->options.vuid,
               rep_->options.manager, rep_->options.tag);
  return {};
}

void DocaVfsDevice::Stop() {
  if (!rep_->progress.joinable()) return;
  // Let every request finish (the handler always completes), then stop polling.
  while (rep_->inflight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  rep_->stop.store(true);
  rep_->progress.join();
  rep_->Close();
  rep_->running.store(false);
}

bool DocaVfsDevice::serving() const {
  return rep_->running.load();
}

size_t DocaVfsDevice::inflight() const {
  return rep_->inflight.load();
}

nlohmann::json DocaVfsDevice::status() const {
  return {{"manager", rep_->options.manager},  {"vuid", rep_->options.vuid},
          {"requests", rep_->requests.load()}, {"dropped", rep_->dropped.load()},
          {"resets", rep_->resets.load()},     {"inflight", rep_->inflight.load()}};
}

}  // namespace dpustor::fs::doca
