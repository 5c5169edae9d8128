// `qv2x train`: runs one training stage on a qv2x-trainer through its RPC.
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "qv2x/v1/trainer.grpc.pb.h"
#include "services/status_convert.h"
#include "tools/qv2x/client/client_security.h"
#include "tools/qv2x/client/progress_bar.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: qv2x train --stage {1|2|3} --config FILE [--from CKPT] [--out DIR]
                  [--trainer HOST:PORT] [--set key.path=value ...] [--resume]
                  [--json FILE] [SECURITY]

Runs one QuantV2X training stage on a qv2x-trainer service and follows its progress.
  --stage N         1: full precision, 2: codebook only, 3: end to end
  --config FILE     stage YAML (a path the trainer can read: under its artifacts or
                    configs folder, e.g. configs/cpu/stage1.yaml)
  --from CKPT       input checkpoint, relative to the trainer's artifacts folder
                    (stage 1: a stage-1 checkpoint to fine-tune, none to train from
                    scratch; stage 2: a stage-1 checkpoint, stage 3: a stage-2 one)
  --out DIR         output folder under the artifacts folder (default: stageN)
  --trainer ADDR    trainer address (default 127.0.0.1:50070)
  --set k=v         override a YAML key for this run (repeatable)
  --resume          continue from the output folder's last checkpoint
  --json FILE       write the outcome here: job, steps, final losses, lr, elapsed
                    seconds, last validation AP, checkpoint
%s
Exits non-zero with the trainer's reason when the stage fails.)";

std::string LossSummary(const v1::TrainProgress& p) {
  std::vector<std::string> parts;
  for (const auto& t : p.losses()) parts.push_back(absl::StrFormat("%s %.4f", t.name(), t.value()));
  return absl::StrJoin(parts, " ");
}

absl::Status RunTrain(Args& args) {
  auto stage = args.IntOr("stage", 0);
  if (!stage.ok()) return stage.status();
  auto config = args.Required("config");
  if (!config.ok()) return config.status();
  v1::RunStageRequest req;
  req.set_stage(static_cast<int>(*stage));
  req.set_config_path(*config);
  req.set_from_checkpoint(args.GetOr("from", ""));
  req.set_output_dir(args.GetOr("out", ""));
  req.set_resume(args.Switch("resume"));
  for (const auto& s : args.All("set")) req.add_overrides(s);
  const std::string addr = args.GetOr("trainer", "127.0.0.1:50070");
  const std::string json_path = args.GetOr("json", "");
  const SecurityFiles security = SecurityFlags(args);
  if (absl::Status st = args.Finish(); !st.ok()) return st;
  if (*stage < 1 || *stage > 3) return absl::InvalidArgumentError("--stage must be 1, 2 or 3");

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(addr, security);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Trainer::NewStub(*channel);
  grpc::ClientContext ctx;
  auto reader = stub->RunStage(&ctx, req);
  ProgressBar bar;
  v1::TrainProgress p, last_step;
  std::string checkpoint;
  nlohmann::json validation;
  while (reader->Read(&p)) {
    if (p.steps_total() > 0 && p.losses_size() > 0) last_step = p;
    for (const auto& ap : p.validation_ap()) {
      validation[ap.class_name()] = {{"0.3", ap.ap_30()}, {"0.5", ap.ap_50()}, {"0.7", ap.ap_70()}};
    }
    if (p.done()) {
      bar.Event(p.message());
      checkpoint = p.checkpoint();
      continue;
    }
    if (!p.message().empty()) bar.Event(absl::StrCat("[", p.job_id(), "] ", p.message()));
    for (const auto& ap : p.validation_ap()) {
      bar.Event(absl::StrFormat("  validation %-10s AP@0.3 %.3f  AP@0.5 %.3f  AP@0.7 %.3f",
                                ap.class_name(), ap.ap_30(), ap.ap_50(), ap.ap_70()));
    }
    if (!p.checkpoint().empty()) bar.Event(absl::StrCat("  checkpoint ", p.checkpoint()));
    const bool event =
        !p.message().empty() || !p.checkpoint().empty() || p.validation_ap_size() > 0;
    if (!event && p.steps_total() > 0) {
      bar.Update(p.step(), p.steps_total(), p.elapsed_s(),
                 absl::StrFormat("epoch %d/%d %s lr %.2g", p.epoch(), p.epochs_total(),
                                 LossSummary(p), p.lr()));
    }
  }
  bar.Finish();
  grpc::Status st = reader->Finish();
  if (!st.ok()) {
    return absl::Status(services::FromGrpc(st).code(),
                        absl::StrCat("trainer at ", addr, ": ", st.error_message()));
  }
  std::printf("stage %lld done; checkpoint: %s\n", static_cast<long long>(*stage),
              checkpoint.c_str());
  if (json_path.empty()) return absl::OkStatus();
  nlohmann::json out = {
      {"stage", *stage},
      {"job_id", last_step.job_id()},
      {"steps", last_step.step()},
      {"epochs", last_step.epochs_total()},
      {"lr", last_step.lr()},
      {"elapsed_s", last_step.elapsed_s()},
      {"checkpoint", checkpoint},
      {"final_losses", nlohmann::json::object()},
      {"validation_ap", validation.is_null() ? nlohmann::json::object() : validation}};
  for (const auto& t : last_step.losses()) out["final_losses"][t.name()] = t.value();
  return WriteFileAtomic(json_path, out.dump(2) + "\n");
}

const Registration kTrain({"train", "run a training stage on qv2x-trainer (RPC)",
                           WithSecurity(kUsage), RunTrain});

}  // namespace
}  // namespace qv2x::cli
