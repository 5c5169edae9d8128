// A misbehaving client for security_test: opens many Fusion streams over a few
// connections, never reads or writes on them, and waits to be killed.
//   security_stream_hog ADDRESS CA CERT KEY CONNECTIONS WATCH_STREAMS FEATURE_STREAMS
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "qv2x/v1/features.grpc.pb.h"
#include "services/tls_credentials.h"

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s ADDRESS CA CERT KEY CONNECTIONS WATCH FEATURES\n", argv[0]);
    return 2;
  }
  auto security = qv2x::services::ClientSecurity::Load({argv[3], argv[4], argv[2]}, "");
  if (!security.ok()) {
    std::fprintf(stderr, "%s\n", std::string(security.status().message()).c_str());
    return 2;
  }
  const int connections = std::atoi(argv[5]), watch = std::atoi(argv[6]),
            features = std::atoi(argv[7]);
  std::vector<std::unique_ptr<qv2x::v1::Fusion::Stub>> stubs;
  for (int c = 0; c < connections; ++c) {
    grpc::ChannelArguments args = qv2x::services::ClientChannelArguments(4 << 20);
    args.SetInt("qv2x.hog_connection", c);  // a distinct argument: a connection of its own
    stubs.push_back(
        qv2x::v1::Fusion::NewStub(qv2x::services::NewChannel(argv[1], *security, args)));
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<qv2x::v1::DetectionFrame>>> watchers;
  std::vector<std::unique_ptr<
      grpc::ClientReaderWriter<qv2x::v1::FeatureMessage, qv2x::v1::FeatureStreamReply>>>
      streams;
  for (int i = 0; i < watch + features; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    auto& stub = stubs[static_cast<size_t>(i % connections)];
    if (i < watch) {
      watchers.push_back(stub->WatchDetections(contexts.back().get(), {}));
    } else {
      streams.push_back(stub->StreamFeatures(contexts.back().get()));
    }
  }
  std::printf("opened %d watch and %d feature streams on %d connections\n", watch, features,
              connections);
  std::fflush(stdout);
  for (;;) ::pause();
}
