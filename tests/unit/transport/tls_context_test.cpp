// transport::tls_context: loading a certificate and key, and reloading them (SIGHUP)
// without losing the pair in use when the new files are bad.
#include "transport/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <unistd.h>
#include <string>

namespace herald::transport {
namespace {

namespace fs = std::filesystem;

// A self-signed EC certificate and its key, written as PEM files under `dir`.
struct pair_files {
  std::string cert, key;
};

pair_files make_pair(const fs::path& dir, const std::string& name) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), pkey.get());
  auto* subject = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), subject);
  X509_sign(x.get(), pkey.get(), EVP_sha256());
  pair_files p{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string()};
  FILE* f = std::fopen(p.cert.c_str(), "w");
  PEM_write_X509(f, x.get());
  std::fclose(f);
  f = std::fopen(p.key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  return p;
}

std::string subject_cn(const std::shared_ptr<net::ssl::context>& ctx) {
  X509* x = SSL_CTX_get0_certificate(ctx->native_handle());
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  return buf;
}

class tls_context_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("herald-tls-unit-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(tls_context_test, loads_a_pair_and_names_the_file_that_does_not_load) {
  auto a = make_pair(dir_, "a");
  tls_context ctx(a.cert, a.key);
  EXPECT_EQ(subject_cn(ctx.current()), "a");
  try {
    tls_context bad((dir_ / "missing.pem").string(), a.key);
    FAIL() << "a missing certificate loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
  auto b = make_pair(dir_, "b");
  try {
    tls_context mismatched(a.cert, b.key);
    FAIL() << "a key of another certificate loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
}

TEST_F(tls_context_test, reload_swaps_in_a_good_pair_and_keeps_the_old_one_otherwise) {
  auto a = make_pair(dir_, "a");
  const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
  fs::copy_file(a.cert, cert);
  fs::copy_file(a.key, key);
  tls_context ctx(cert, key);
  auto first = ctx.current();

  // A broken certificate file: the error names it, the old context stays.
  std::ofstream(cert) << "not a certificate";
  auto err = ctx.reload();
  EXPECT_NE(err.find("cert.pem"), std::string::npos) << err;
  EXPECT_EQ(ctx.current(), first);

  // A good new pair: swapped in; the old context lives on for whoever holds it.
  auto b = make_pair(dir_, "b");
  fs::copy_file(b.cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(b.key, key, fs::copy_options::overwrite_existing);
  EXPECT_EQ(ctx.reload(), "");
  EXPECT_NE(ctx.current(), first);
  EXPECT_EQ(subject_cn(ctx.current()), "b");
  EXPECT_EQ(subject_cn(first), "a");
}

}  // namespace
}  // namespace herald::transport
