// Transport security of every qv2x server and client, built in one place from PEM file
// paths: TLS, mutual TLS (client certificates required and verified against a CA), and the
// bearer token that control RPCs carry. docs/deploy.md explains the set-up.
#ifndef QV2X_SERVICES_TLS_CREDENTIALS_H_
#define QV2X_SERVICES_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace qv2x::services {

// PEM file paths. Server: cert + key turn TLS on; ca makes client certificates mandatory
// and verified against it (mutual TLS). Client: ca turns TLS on and verifies the server;
// cert + key are the client certificate that a mutual-TLS server asks for.
struct TlsFiles {
  std::string cert, key, ca;
  bool empty() const { return cert.empty() && key.empty() && ca.empty(); }
};

struct ServerSecurity {
  TlsFiles tls;
  std::string token_file;  // control RPCs need "authorization: Bearer <token>" (control_auth.h)
};

// Server credentials for `listen_address`. Plaintext without TLS files; with a token but no
// TLS, gRPC local credentials (loopback peers only, since a plaintext token must not cross
// a network, and gRPC runs a token check only on credentials that are not insecure).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerSecurity& security, const std::string& listen_address);

// What a client presents, read once at start-up so that a channel made later (a reconnect)
// cannot fail on a file.
struct ClientSecurity {
  std::string root_certs, cert_chain, private_key;  // PEM text; no root_certs: plaintext
  std::string token;                                // sent on every call when not empty
  bool tls() const { return !root_certs.empty(); }
  static absl::StatusOr<ClientSecurity> Load(const TlsFiles& tls, const std::string& token_file);
};

// The limits every qv2x client sets: message sizes both ways and keepalive pings while a
// call is open, so a fusion service that vanished without closing its sockets is noticed.
grpc::ChannelArguments ClientChannelArguments(int max_message_bytes);

// A channel to `address` with `security`; the token rides on every call's metadata.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const ClientSecurity& security,
                                          grpc::ChannelArguments args);
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const ClientSecurity& security);

// The process's own client security (a service's links to the others): set once by main.
void SetProcessClientSecurity(ClientSecurity security);
ClientSecurity ProcessClientSecurity();

// A bearer token file: one line of printable ASCII (surrounding whitespace dropped).
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace qv2x::services

#endif  // QV2X_SERVICES_TLS_CREDENTIALS_H_
