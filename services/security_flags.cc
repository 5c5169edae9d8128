#include "services/security_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of this server; with --tls_key turns TLS on");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle: clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding a bearer token that control RPCs must carry (read-only RPCs stay open)");

namespace qv2x::services {

ServerSecurity ServerSecurityFromFlags() {
  ServerSecurity s;
  s.tls.cert = absl::GetFlag(FLAGS_tls_cert);
  s.tls.key = absl::GetFlag(FLAGS_tls_key);
  s.tls.ca = absl::GetFlag(FLAGS_tls_ca);
  s.token_file = absl::GetFlag(FLAGS_auth_token_file);
  return s;
}

}  // namespace qv2x::services
