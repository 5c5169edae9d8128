#include "tools/qv2x/client/client_security.h"

#include <cstdlib>

#include "absl/strings/str_replace.h"
#include "services/tls_credentials.h"

namespace qv2x::cli {

std::string WithSecurity(const char* usage) {
  return absl::StrReplaceAll(usage, {{"%s", kSecurityUsage}});
}

SecurityFiles SecurityFlags(Args& args) {
  auto get = [&](const char* flag, const char* env) {
    const char* e = std::getenv(env);
    return args.GetOr(flag, e == nullptr ? "" : e);
  };
  SecurityFiles f;
  f.ca = get("tls-ca", "QV2X_TLS_CA");
  f.cert = get("tls-cert", "QV2X_TLS_CERT");
  f.key = get("tls-key", "QV2X_TLS_KEY");
  f.token_file = get("token-file", "QV2X_TOKEN_FILE");
  return f;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const SecurityFiles& flags,
                                                    const SecurityFiles& recorded) {
  // Field by field: e.g. --token-file alone keeps the recorded certificates.
  auto pick = [](const std::string& flag, const std::string& rec) {
    return flag.empty() ? rec : flag;
  };
  const SecurityFiles use{pick(flags.ca, recorded.ca), pick(flags.cert, recorded.cert),
                          pick(flags.key, recorded.key),
                          pick(flags.token_file, recorded.token_file)};
  absl::StatusOr<services::ClientSecurity> security =
      services::ClientSecurity::Load({use.cert, use.key, use.ca}, use.token_file);
  if (!security.ok()) return security.status();
  return services::NewChannel(address, *security);
}

}  // namespace qv2x::cli
