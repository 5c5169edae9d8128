// The transport-security flags every qv2x server shares: --tls_cert, --tls_key, --tls_ca
// and --auth_token_file (docs/deploy.md).
#ifndef QV2X_SERVICES_SECURITY_FLAGS_H_
#define QV2X_SERVICES_SECURITY_FLAGS_H_

#include "services/tls_credentials.h"

namespace qv2x::services {

ServerSecurity ServerSecurityFromFlags();

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_SECURITY_FLAGS_H_
