#include "server/io/tls/tls_channel.h"

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <new>
#include <utility>

#include "server/io/tls/tls_context.h"

namespace ringcache::server {
namespace {

// A send buffer at most this large is kept between rounds (a busy
// connection with small replies would otherwise allocate one per reply);
// larger ones go back once drained, so an idle connection holds little.
constexpr size_t tls_idle_send_buffer_bytes = 4 * 1024;

int clamp_int(size_t n) { return static_cast<int>(std::min<size_t>(n, std::numeric_limits<int>::max())); }

}  // namespace

TlsChannel::TlsChannel(SSL* ssl, TlsRole role) : ssl_(ssl), role_(role) {
  assert(ssl_ != nullptr);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  // An empty memory BIO reads as "retry", not as end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  if (role_ == TlsRole::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    SSL_set_app_data(ssl_, this);
  }
}

int tls_client_session_ticket(SSL* ssl, SSL_SESSION*) {
  auto* channel = static_cast<TlsChannel*>(SSL_get_app_data(ssl));
  if (channel != nullptr) channel->ticket_seen_ = true;
  return 0;
}

bool TlsChannel::peer_accepted() const {
  assert(role_ == TlsRole::client);
  if (state_ != TlsState::open) return false;
  return SSL_version(ssl_) != TLS1_3_VERSION || ticket_seen_;
}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

void TlsChannel::fail(TlsState state, std::string why) {
  assert(state == TlsState::failed || state == TlsState::not_tls);
  state_ = state;
  error_ = std::move(why);
}

void TlsChannel::push(std::string_view ciphertext) {
  if (ciphertext.empty() || state_ == TlsState::failed || state_ == TlsState::not_tls ||
      state_ == TlsState::closed) {
    return;
  }
  if (state_ == TlsState::handshaking) {
    if (role_ == TlsRole::server && handshake_bytes_ == 0 &&
        static_cast<uint8_t>(ciphertext[0]) != tls_handshake_record_type) {
      fail(TlsState::not_tls, "not a TLS client (plaintext on a TLS port?)");
      return;
    }
    handshake_bytes_ += ciphertext.size();
    if (handshake_bytes_ > tls_handshake_bytes_max) {
      fail(TlsState::failed, "more than tls_handshake_bytes_max bytes before the handshake completed");
      return;
    }
  }
  if (BIO_write(rbio_, ciphertext.data(), clamp_int(ciphertext.size())) != static_cast<int>(ciphertext.size())) {
    ERR_clear_error();
    fail(TlsState::failed, "out of memory for received TLS records");
  }
}

TlsRead TlsChannel::read(char* buf, size_t capacity) {
  TlsRead result;
  if (state_ != TlsState::handshaking && state_ != TlsState::open) return result;
  ERR_clear_error();
  const int n = SSL_read(ssl_, buf, clamp_int(capacity));
  if (state_ == TlsState::handshaking && SSL_is_init_finished(ssl_)) {
    state_ = TlsState::open;
    established_ = true;
    result.handshake_finished = true;
  }
  if (n > 0) {
    result.bytes = static_cast<size_t>(n);
  } else {
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_READ:
        break;
      case SSL_ERROR_ZERO_RETURN:
        state_ = TlsState::closed;
        break;
      default:
        fail(TlsState::failed, tls_failure_reason(ssl_, "TLS protocol error"));
        break;
    }
  }
  if (state_ != TlsState::failed && pending_output() > tls_pending_output_bytes_max) {
    fail(TlsState::failed, "the other side does not read what TLS must send (tls_pending_output_bytes_max)");
  }
  return result;
}

void TlsChannel::abandon(std::string why) {
  assert(state_ == TlsState::handshaking || state_ == TlsState::open);
  fail(TlsState::failed, std::move(why));
}

size_t TlsChannel::pending_output() const {
  return BIO_ctrl_pending(wbio_) + (send_end_ - send_begin_);
}

bool TlsChannel::wants_plaintext() const {
  // After the client's close_notify, replies to what came before it still go out.
  return (state_ == TlsState::open || state_ == TlsState::closed) && !close_notify_sent_ && send_begin_ == send_end_ &&
         BIO_ctrl_pending(wbio_) < tls_encrypt_bytes_max;
}

bool TlsChannel::peer_verified() const {
  return established_ && SSL_get0_peer_certificate(ssl_) != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK;
}

std::string TlsChannel::peer_subject() const {
  const X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  char subject[256] = "";
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  return subject;
}

bool TlsChannel::encrypt(const struct iovec* iov, size_t count, size_t& done) {
  assert(wants_plaintext());
  size_t budget = tls_encrypt_bytes_max;
  done = 0;
  for (size_t i = 0; i < count && budget > 0; ++i) {
    const size_t n = std::min(iov[i].iov_len, budget);
    assert(n > 0);
    ERR_clear_error();
    // A memory BIO takes everything: SSL_write encrypts all n bytes or fails.
    if (SSL_write(ssl_, iov[i].iov_base, static_cast<int>(n)) != static_cast<int>(n)) {
      fail(TlsState::failed, take_openssl_error("TLS write failed"));
      return false;
    }
    done += n;
    budget -= n;
  }
  return true;
}

std::string_view TlsChannel::ciphertext() {
  if (send_begin_ == send_end_) {
    const size_t pending = BIO_ctrl_pending(wbio_);
    if (pending == 0) return {};
    const size_t want = std::min(pending, tls_encrypt_bytes_max);
    const size_t capacity = want <= tls_idle_send_buffer_bytes ? tls_idle_send_buffer_bytes : want;
    if (!send_buffer_ || send_capacity_ < want) {
      send_buffer_.reset();
      send_buffer_ = std::make_unique_for_overwrite<char[]>(capacity);
      send_capacity_ = capacity;
    }
    const int n = BIO_read(wbio_, send_buffer_.get(), static_cast<int>(want));
    assert(n == static_cast<int>(want));
    send_begin_ = 0;
    send_end_ = n > 0 ? static_cast<size_t>(n) : 0;
  }
  return {send_buffer_.get() + send_begin_, send_end_ - send_begin_};
}

void TlsChannel::sent(size_t bytes) {
  assert(bytes <= send_end_ - send_begin_);
  send_begin_ += bytes;
  if (send_begin_ != send_end_) return;
  if (send_capacity_ > tls_idle_send_buffer_bytes) {
    send_buffer_.reset();
    send_capacity_ = 0;
  }
  // A memory BIO keeps the largest buffer it ever needed: after a large
  // reply, an empty one takes its place so that an idle connection holds little.
  BUF_MEM* memory = nullptr;
  if (BIO_ctrl_pending(wbio_) == 0 && BIO_get_mem_ptr(wbio_, &memory) == 1 && memory != nullptr &&
      memory->max > tls_idle_send_buffer_bytes) {
    BIO* fresh = BIO_new(BIO_s_mem());
    if (fresh != nullptr) {
      SSL_set0_wbio(ssl_, fresh);  // frees the old one
      wbio_ = fresh;
    }
    ERR_clear_error();
  }
}

bool TlsChannel::has_output() const { return send_begin_ != send_end_ || BIO_ctrl_pending(wbio_) > 0; }

bool TlsChannel::close_notify() {
  if (close_notify_sent_ || (state_ != TlsState::open && state_ != TlsState::closed)) return false;
  close_notify_sent_ = true;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
  return BIO_ctrl_pending(wbio_) > 0;
}

}  // namespace ringcache::server
