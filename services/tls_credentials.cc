#include "services/tls_credentials.h"

#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/client_interceptor.h"

namespace qv2x::services {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": ", text.status().message()));
  }
  if (!absl::StrContains(*text, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": not a PEM file"));
  }
  return text;
}

// Host part of "host:port", "[v6]:port" or "unix:path".
std::string HostOf(const std::string& address) {
  if (absl::StartsWith(address, "[")) return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

bool IsLoopback(const std::string& address) {
  const std::string host = HostOf(address);
  return absl::StartsWith(host, "127.") || host == "::1" || host == "localhost";
}

class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token) : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

std::mutex g_mu;
ClientSecurity& ProcessSecurity() {
  static auto* s = new ClientSecurity();
  return *s;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerSecurity& security, const std::string& listen_address) {
  const TlsFiles& tls = security.tls;
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (tls.cert.empty()) {
    if (!tls.ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls_ca (client certificates) needs --tls_cert and --tls_key");
    }
    if (security.token_file.empty()) return grpc::InsecureServerCredentials();
    if (!IsLoopback(listen_address)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--auth_token_file without TLS: the token would cross the network in plaintext; "
          "listen on a loopback address or set --tls_cert and --tls_key (listen address ",
          listen_address, ")"));
    }
    return grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  }
  grpc::SslServerCredentialsOptions options(
      tls.ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                     : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> key = ReadPem(tls.key, "--tls_key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> cert = ReadPem(tls.cert, "--tls_cert");
  if (!cert.ok()) return cert.status();
  pair.private_key = std::move(*key);
  pair.cert_chain = std::move(*cert);
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca, "--tls_ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = std::move(*ca);
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<ClientSecurity> ClientSecurity::Load(const TlsFiles& tls,
                                                    const std::string& token_file) {
  ClientSecurity s;
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("a client certificate needs both its cert and its key");
  }
  if (!tls.cert.empty() && tls.ca.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs the CA that verifies the server (TLS is on only with a CA)");
  }
  if (!tls.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca, "CA");
    if (!ca.ok()) return ca.status();
    s.root_certs = std::move(*ca);
  }
  if (!tls.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(tls.cert, "client certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(tls.key, "client key");
    if (!key.ok()) return key.status();
    s.cert_chain = std::move(*cert);
    s.private_key = std::move(*key);
  }
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(token_file);
    if (!token.ok()) return token.status();
    s.token = std::move(*token);
  }
  return s;
}

grpc::ChannelArguments ClientChannelArguments(int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(max_message_bytes);
  args.SetMaxReceiveMessageSize(max_message_bytes);
  // A ping every 30 s while a call is open, the connection dropped if one goes unanswered
  // for 10 s; the servers accept pings this often (server_host.cc).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return args;
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const ClientSecurity& security,
                                          grpc::ChannelArguments args) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (security.tls()) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = security.root_certs;
    o.pem_cert_chain = security.cert_chain;
    o.pem_private_key = security.private_key;
    creds = grpc::SslCredentials(o);
  }
  if (security.token.empty()) return grpc::CreateCustomChannel(address, creds, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> token;
  token.push_back(std::make_unique<TokenInterceptorFactory>(security.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, creds, args,
                                                                 std::move(token));
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const ClientSecurity& security) {
  return NewChannel(address, security, ClientChannelArguments(16 << 20));
}

void SetProcessClientSecurity(ClientSecurity security) {
  std::lock_guard<std::mutex> lock(g_mu);
  ProcessSecurity() = std::move(security);
}

ClientSecurity ProcessClientSecurity() {
  std::lock_guard<std::mutex> lock(g_mu);
  return ProcessSecurity();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, ": ", text.status().message()));
  }
  const std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("token file ", path, ": the token must be one word of printable ASCII"));
    }
  }
  return token;
}

}  // namespace qv2x::services
