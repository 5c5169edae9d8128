#include "trainer/job_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qv2x::trainer {

absl::StatusOr<JobRegistry::Handle> JobRegistry::Begin(int stage, const std::string& output_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job ", *running_, " is running; one job at a time (cancel it or wait)"));
  }
  const std::string id = absl::StrFormat("job-%04d", next_id_++);
  v1::Job& job = jobs_[id];
  job.set_job_id(id);
  job.set_stage(stage);
  job.set_state("running");
  job.set_output_dir(output_dir);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  cancels_[id] = cancel;
  running_ = id;
  return Handle{id, cancel};
}

void JobRegistry::Update(const std::string& id, const v1::TrainProgress& progress) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  *it->second.mutable_last_progress() = progress;
  if (!progress.checkpoint().empty()) it->second.set_last_checkpoint(progress.checkpoint());
}

void JobRegistry::End(const std::string& id, const std::string& state, const std::string& error,
                      const std::string& last_checkpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it != jobs_.end()) {
    it->second.set_state(state);
    it->second.set_error(error);
    if (!last_checkpoint.empty()) it->second.set_last_checkpoint(last_checkpoint);
  }
  if (running_ == id) running_.reset();
}

absl::StatusOr<v1::Job> JobRegistry::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job \"", id, "\""));
  return it->second;
}

std::vector<v1::Job> JobRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::Job> out;
  for (const auto& [id, job] : jobs_) out.push_back(job);
  return out;
}

absl::StatusOr<v1::Job> JobRegistry::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job \"", id, "\""));
  if (it->second.state() != "running") {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is not running (", it->second.state(), ")"));
  }
  cancels_[id]->store(true);
  return it->second;
}

void JobRegistry::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : cancels_) c->store(true);
}

}  // namespace qv2x::trainer
