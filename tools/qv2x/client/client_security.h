// The transport security of the `qv2x` client commands: --tls-ca / --tls-cert / --tls-key
// / --token-file, or the QV2X_* environment variables of the same meaning (a container's
// health probe), or else what `qv2x scene up` recorded in endpoints.json for its scene.
#ifndef QV2X_TOOLS_QV2X_CLIENT_CLIENT_SECURITY_H_
#define QV2X_TOOLS_QV2X_CLIENT_CLIENT_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "tools/qv2x/client/endpoints.h"
#include "tools/qv2x/command.h"

namespace qv2x::cli {

// For each command's --help.
inline constexpr char kSecurityUsage[] =
    R"(SECURITY: --tls-ca CA.pem (TLS; the server's certificate must name the host dialled)
          --tls-cert CERT.pem --tls-key KEY.pem (client certificate, for mutual TLS)
          --token-file FILE (bearer token of control RPCs)
          Each defaults to $QV2X_TLS_CA, $QV2X_TLS_CERT, $QV2X_TLS_KEY, $QV2X_TOKEN_FILE,
          else to what `qv2x scene up` recorded in the scene's endpoints.json.)";

// `usage` with its "%s" replaced by kSecurityUsage.
std::string WithSecurity(const char* usage);

// Reads the flags above, or their environment variables (before args.Finish()).
SecurityFiles SecurityFlags(Args& args);

// A channel to `address` with each file from `flags` where given, else from `recorded`.
// Errors name the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const SecurityFiles& flags,
                                                    const SecurityFiles& recorded = {});

}  // namespace qv2x::cli

#endif  // QV2X_TOOLS_QV2X_CLIENT_CLIENT_SECURITY_H_
