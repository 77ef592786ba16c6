// ICMP echo sockets for the ping tester (testers/ping.ts). Node has no ICMP sockets: this file opens
// them, connected to one real, and hands every datagram (or socket error) to JS; building the echo
// request and matching the reply stay in TS. Compiled into prober.node (binding.gyp, target
// "prober") so the one native module the package ships carries it; prober.c's init calls
// icmp_define().
//
// Two kinds of socket, both connected to the real (connect() sends nothing; it makes the kernel pass
// this socket only the real's packets, and report ICMP errors such as "host unreachable" on it):
//  - "dgram": socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) / (AF_INET6, ..., IPPROTO_ICMPV6), the
//    unprivileged ICMP socket Linux allows when one of the process's groups is in
//    net.ipv4.ping_group_range (that sysctl governs both families). The kernel chooses the echo
//    identifier (the socket's "port", read with getsockname) and writes it into every request; it
//    delivers only echo replies carrying it. Reads start at the ICMP header.
//  - "raw": SOCK_RAW, needs CAP_NET_RAW. Filtered to echo replies (ICMP_FILTER / ICMP6_FILTER);
//    IPv4 reads start at the IP header, IPv6 reads at the ICMPv6 header. The identifier is ours.
// The kernel computes ICMPv6 checksums (both kinds) and ICMPv4 checksums on dgram sockets; the TS
// side computes the ICMPv4 checksum for raw sockets.

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// <linux/icmp.h> clashes with glibc's headers; its raw-socket type filter is two lines.
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif
struct icmp_type_filter {
  uint32_t blocked; // bit n set = ICMP type n is not delivered
};

#define RECV_LIMIT 65536

typedef struct Icmp Icmp;

typedef struct {
  Icmp *owner;
  uv_poll_t poll;
  int fd;
  uint32_t slot;
  int closed;
} EchoSocket;

struct Icmp {
  napi_env env;
  uv_loop_t *loop;
  napi_ref callback; // onEvent(slot, errno, datagram | undefined)
  napi_async_context async;
  EchoSocket **slots;
  uint32_t nslots;
  uint32_t *free_slots;
  uint32_t nfree;
  unsigned char *buf; // RECV_LIMIT bytes, shared by every read
};

static napi_value undefined_value(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

static Icmp *icmp_of(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, &data) != napi_ok) return NULL;
  return (Icmp *)data;
}

static int open_socket(int family, int raw) {
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int proto = family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  return socket(domain, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
}

// Only echo replies reach a raw socket: without the filter it would also get every echo request,
// unreachable and redirect the host receives from that address.
static int filter_echo_replies(int fd, int family) {
  if (family == 6) {
    struct icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
    return setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
  }
  struct icmp_type_filter f = {.blocked = ~(uint32_t)1}; // type 0 = echo reply
  return setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof f);
}

static int take_slot(Icmp *ic, uint32_t *slot) {
  if (ic->nfree == 0) {
    uint32_t n = ic->nslots ? ic->nslots * 2 : 64;
    EchoSocket **s = realloc(ic->slots, n * sizeof *s);
    if (s == NULL) return 0;
    ic->slots = s;
    uint32_t *f = realloc(ic->free_slots, n * sizeof *f);
    if (f == NULL) return 0;
    ic->free_slots = f;
    for (uint32_t i = n; i > ic->nslots; i--) {
      s[i - 1] = NULL;
      f[ic->nfree++] = i - 1;
    }
    ic->nslots = n;
  }
  *slot = ic->free_slots[--ic->nfree];
  return 1;
}

static void free_on_close(uv_handle_t *h) {
  free(h->data);
}

// Stops watching, closes the descriptor and releases the slot at once; the memory goes when libuv
// has let go of the handle.
static void close_echo(EchoSocket *s) {
  if (s->closed) return;
  Icmp *ic = s->owner;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  ic->slots[s->slot] = NULL;
  ic->free_slots[ic->nfree++] = s->slot;
  uv_close((uv_handle_t *)&s->poll, free_on_close);
}

// Calls onEvent(slot, errno, datagram). A JS exception goes to the process, as any callback's.
static void emit(Icmp *ic, uint32_t slot, int err, const unsigned char *data, size_t len) {
  napi_env env = ic->env;
  napi_value cb, recv, argv[3], ret;
  if (napi_get_reference_value(env, ic->callback, &cb) != napi_ok || cb == NULL) return;
  napi_get_global(env, &recv);
  napi_create_uint32(env, slot, &argv[0]);
  napi_create_int32(env, err, &argv[1]);
  if (data != NULL) {
    void *dst;
    if (napi_create_buffer_copy(env, len, data, &dst, &argv[2]) != napi_ok) argv[2] = undefined_value(env);
  } else {
    argv[2] = undefined_value(env);
  }
  if (napi_make_callback(env, ic->async, recv, cb, 3, argv, &ret) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
}

// Readable (a datagram, or an error: EPOLLERR is reported as readable): every datagram queued goes
// to JS, then an error if the socket has one. JS may close the socket from its callback.
static void on_poll(uv_poll_t *h, int status, int events) {
  EchoSocket *s = h->data;
  Icmp *ic = s->owner;
  uint32_t slot = s->slot;
  napi_handle_scope scope;
  if (napi_open_handle_scope(ic->env, &scope) != napi_ok) return;
  if (status < 0) {
    emit(ic, slot, -status, NULL, 0);
  } else {
    for (int i = 0; i < 64 && !s->closed; i++) {
      ssize_t n = recv(s->fd, ic->buf, RECV_LIMIT, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) emit(ic, slot, errno, NULL, 0);
        break;
      }
      emit(ic, slot, 0, ic->buf, (size_t)n);
    }
  }
  napi_close_handle_scope(ic->env, scope);
}

// icmpInit(onEvent(slot, errno, datagram|undefined)).
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Icmp *ic = icmp_of(env, info, &argc, argv);
  if (ic == NULL || argc < 1) return NULL;
  if (ic->callback != NULL) napi_delete_reference(env, ic->callback);
  napi_create_reference(env, argv[0], 1, &ic->callback);
  return undefined_value(env);
}

// icmpCheck(family, raw) -> 0 when such a socket can be opened here, else its errno.
static napi_value js_check(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (icmp_of(env, info, &argc, argv) == NULL) return NULL;
  int32_t family = 4;
  bool raw = false;
  napi_get_value_int32(env, argv[0], &family);
  napi_get_value_bool(env, argv[1], &raw);
  int fd = open_socket(family, raw);
  if (fd < 0) return int_value(env, errno);
  close(fd);
  return int_value(env, 0);
}

// icmpOpen(family, raw, addr) -> slot (>= 0), or -errno (nothing left open). The address is numeric;
// an IPv6 one may carry a zone ("fe80::1%eth0").
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Icmp *ic = icmp_of(env, info, &argc, argv);
  if (ic == NULL) return NULL;
  int32_t family = 4;
  bool raw = false;
  char addr[128];
  size_t alen = 0;
  napi_get_value_int32(env, argv[0], &family);
  napi_get_value_bool(env, argv[1], &raw);
  if (napi_get_value_string_utf8(env, argv[2], addr, sizeof addr, &alen) != napi_ok) return int_value(env, -EINVAL);
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family == 6 ? AF_INET6 : AF_INET;
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(addr, NULL, &hints, &ai) != 0 || ai == NULL) return int_value(env, -EINVAL);
  struct sockaddr_storage sa;
  socklen_t salen = (socklen_t)ai->ai_addrlen;
  memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  int fd = open_socket(family, raw);
  if (fd < 0) return int_value(env, -errno);
  if ((raw && filter_echo_replies(fd, family) < 0) || connect(fd, (struct sockaddr *)&sa, salen) < 0) {
    int err = errno;
    close(fd);
    return int_value(env, -err);
  }
  EchoSocket *s = calloc(1, sizeof *s);
  uint32_t slot;
  if (s == NULL || !take_slot(ic, &slot)) {
    free(s);
    close(fd);
    return int_value(env, -ENOMEM);
  }
  s->owner = ic;
  s->fd = fd;
  s->slot = slot;
  int rc = uv_poll_init_socket(ic->loop, &s->poll, fd);
  if (rc == 0) {
    s->poll.data = s;
    rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
    if (rc != 0) {
      // Initialised: the handle must go through uv_close, which frees s.
      close(fd);
      ic->free_slots[ic->nfree++] = slot;
      s->closed = 1;
      uv_close((uv_handle_t *)&s->poll, free_on_close);
      return int_value(env, rc);
    }
  } else {
    close(fd);
    ic->free_slots[ic->nfree++] = slot;
    free(s);
    return int_value(env, rc); // libuv errors are -errno
  }
  ic->slots[slot] = s;
  return int_value(env, (int32_t)slot);
}

static EchoSocket *socket_at(Icmp *ic, napi_env env, napi_value v) {
  uint32_t slot = UINT32_MAX;
  napi_get_value_uint32(env, v, &slot);
  return slot < ic->nslots ? ic->slots[slot] : NULL;
}

// icmpSend(slot, datagram) -> 0, or the errno of send().
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Icmp *ic = icmp_of(env, info, &argc, argv);
  if (ic == NULL) return NULL;
  EchoSocket *s = socket_at(ic, env, argv[0]);
  if (s == NULL) return int_value(env, EBADF);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return int_value(env, EINVAL);
  for (;;) {
    ssize_t n = send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return int_value(env, 0);
    if (errno != EINTR) return int_value(env, errno);
  }
}

// icmpIdent(slot) -> the socket's local "port" (a dgram socket's echo identifier, once it has sent),
// or -errno.
static napi_value js_ident(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Icmp *ic = icmp_of(env, info, &argc, argv);
  if (ic == NULL) return NULL;
  EchoSocket *s = socket_at(ic, env, argv[0]);
  if (s == NULL) return int_value(env, -EBADF);
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0) return int_value(env, -errno);
  uint16_t port = sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port : ((struct sockaddr_in *)&sa)->sin_port;
  return int_value(env, ntohs(port));
}

// icmpClose(slot): no event for that socket after this.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Icmp *ic = icmp_of(env, info, &argc, argv);
  if (ic == NULL) return NULL;
  EchoSocket *s = socket_at(ic, env, argv[0]);
  if (s != NULL) close_echo(s);
  return undefined_value(env);
}

static void cleanup(void *arg) {
  Icmp *ic = arg;
  for (uint32_t i = 0; i < ic->nslots; i++)
    if (ic->slots[i] != NULL) close_echo(ic->slots[i]);
  if (ic->async != NULL) napi_async_destroy(ic->env, ic->async);
  // The handles being closed only point at their own EchoSocket (freed by libuv's close callback,
  // if the loop runs again): ic itself may go.
  free(ic->slots);
  free(ic->free_slots);
  free(ic->buf);
  free(ic);
}

// Adds icmpInit, icmpCheck, icmpOpen, icmpSend, icmpIdent and icmpClose to `exports`. Returns 0 when
// they could not be added (the ping tester then reports the module as unusable); the rest of the
// module is unaffected.
int icmp_define(napi_env env, napi_value exports) {
  Icmp *ic = calloc(1, sizeof *ic);
  if (ic == NULL) return 0;
  ic->env = env;
  ic->buf = malloc(RECV_LIMIT);
  napi_value name;
  if (ic->buf == NULL || napi_get_uv_event_loop(env, &ic->loop) != napi_ok ||
      napi_create_string_utf8(env, "surealived-ping", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &ic->async) != napi_ok) {
    free(ic->buf);
    free(ic);
    return 0;
  }
  napi_property_descriptor props[] = {
      {"icmpInit", NULL, js_init, NULL, NULL, NULL, napi_default, ic},
      {"icmpCheck", NULL, js_check, NULL, NULL, NULL, napi_default, ic},
      {"icmpOpen", NULL, js_open, NULL, NULL, NULL, napi_default, ic},
      {"icmpSend", NULL, js_send, NULL, NULL, NULL, napi_default, ic},
      {"icmpIdent", NULL, js_ident, NULL, NULL, NULL, napi_default, ic},
      {"icmpClose", NULL, js_close, NULL, NULL, NULL, napi_default, ic},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    napi_async_destroy(env, ic->async);
    free(ic->buf);
    free(ic);
    return 0;
  }
  napi_add_env_cleanup_hook(env, cleanup, ic);
  return 1;
}
