#include "tools/qv2x/client/client_security.h"

#include "absl/strings/str_replace.h"
#include "services/tls_credentials.h"

namespace qv2x::cli {

std::string WithSecurity(const char* usage) {
  return absl::StrReplaceAll(usage, {{"%s", kSecurityUsage}});
}

SecurityFiles SecurityFlags(Args& args) {
  SecurityFiles f;
  f.ca = args.GetOr("tls-ca", "");
  f.cert = args.GetOr("tls-cert", "");
  f.key = args.GetOr("tls-key", "");
  f.token_file = args.GetOr("token-file", "");
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
