// Native probe connections for the plain (non-TLS) tcp and http testers: non-blocking connect,
// optional HTTP/1.0 request and response scan, close with a reset (SO_LINGER {1,0}), all on
// Node's own libuv loop. Per probe this is the syscall sequence of the original C surealived; the
// JS side keeps scheduling, deadlines and verdicts (testers/native.ts). Results are handed to JS in
// batches, once per loop iteration, through a shared Int32Array.
// The probe sockets sit in an epoll instance of our own, which libuv watches as one fd: a uv_poll_t
// per probe would cost three more system calls each (libuv checks every new fd with an epoll
// ADD+DEL pair and sets O_NONBLOCK again).

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Result record layout, int32 fields; keep in step with testers/native.ts.
enum { R_SLOT, R_KIND, R_ERRNO, R_CONNECT_US, R_ELAPSED_MS, R_SENT, R_RECEIVED, R_STATUS, R_FLAGS, R_BODY, R_FIELDS };
// R_KIND values.
enum { K_CONNECTED = 1, K_CONNECT_ERROR, K_IO_ERROR, K_HTTP_DONE, K_HTTP_CLOSED_EARLY, K_HTTP_MALFORMED };
// R_FLAGS bits.
enum { F_BODY_FOUND = 1, F_EOF = 4 };
// Request flags (defineRequest).
enum { Q_NAIVE = 1 };
// Start flags.
enum { S_WANT_DATA = 1 };

#define BATCH 1024
#define BODY_LIMIT (64 * 1024)
#define HEADER_LIMIT (64 * 1024)
#define MAX_RANGES 64

typedef struct {
  char *bytes; // request bytes; NULL = connect only
  size_t len;
  char *needle; // body text to find; NULL = none
  size_t needle_len;
  int flags;
  int nranges;
  int ranges[MAX_RANGES][2];
} Request;

typedef struct Prober Prober;

typedef struct {
  Prober *prober;
  const Request *req;
  int fd;
  uint32_t slot;
  int want_data;
  int connected;
  uint64_t start_ns;
  int32_t connect_us;
  size_t sent;
  size_t received;
  // Response bytes kept: the head plus up to BODY_LIMIT of body (everything with want_data).
  char *buf;
  size_t len, cap;
  long header_end; // offset of the body, -1 until the head is complete
  long content_length; // -1 unknown
  int chunked;
  int status; // 0 until the status line is parsed
  int body_found;
  int eof;
  int input_seen; // an input edge came (reads are only tried after one)
} Probe;

typedef struct {
  int32_t f[R_FIELDS];
  char *data; // with want_data: the bytes read (owned)
  size_t data_len;
} Result;

struct Prober {
  napi_env env;
  uv_loop_t *loop;
  napi_ref callback;
  napi_ref results_ref; // Int32Array(BATCH * R_FIELDS) shared with JS
  int32_t *results;
  napi_async_context async;
  uv_check_t check;
  int check_active;
  int epfd;
  uv_poll_t epoll_watch; // libuv watches epfd; referenced only while probes are in flight
  uint32_t in_flight;
  Probe **slots;
  uint32_t nslots;
  uint32_t *free_slots;
  uint32_t nfree;
  Result *queue;
  size_t qlen, qcap;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return 0;
}

#define NAPI_OK(call)                                                                                 \
  do {                                                                                                \
    if ((call) != napi_ok) {                                                                          \
      const napi_extended_error_info *info_ = NULL;                                                   \
      napi_get_last_error_info(env, &info_);                                                          \
      bool pending_ = false;                                                                          \
      napi_is_exception_pending(env, &pending_);                                                      \
      if (!pending_) napi_throw_error(env, NULL, info_ && info_->error_message ? info_->error_message : #call); \
      return NULL;                                                                                    \
    }                                                                                                 \
  } while (0)

static int32_t clamp32(uint64_t v) {
  return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

// Body bytes received so far (0 until the head is complete).
static size_t body_bytes(const Probe *p) {
  return p->header_end >= 0 && p->received > (size_t)p->header_end ? p->received - (size_t)p->header_end : 0;
}

// ---- delivery of results to JS ----

static void deliver(uv_check_t *check);

static void queue_result(Probe *p, int kind, int err) {
  Prober *pr = p->prober;
  if (pr->qlen == pr->qcap) {
    size_t cap = pr->qcap ? pr->qcap * 2 : 256;
    Result *q = realloc(pr->queue, cap * sizeof(Result));
    if (q == NULL) abort();
    pr->queue = q;
    pr->qcap = cap;
  }
  Result *r = &pr->queue[pr->qlen++];
  uint64_t elapsed = now_ns() - p->start_ns;
  r->f[R_SLOT] = (int32_t)p->slot;
  r->f[R_KIND] = kind;
  r->f[R_ERRNO] = err;
  r->f[R_CONNECT_US] = p->connect_us;
  r->f[R_ELAPSED_MS] = (int32_t)(elapsed / 1000000u);
  r->f[R_SENT] = clamp32(p->sent);
  r->f[R_RECEIVED] = clamp32(p->received);
  r->f[R_STATUS] = p->status;
  r->f[R_FLAGS] = (p->body_found ? F_BODY_FOUND : 0) |
                  (p->eof ? F_EOF : 0);
  r->f[R_BODY] = clamp32(body_bytes(p));
  r->data = NULL;
  r->data_len = 0;
  if (p->want_data && p->len > 0) {
    r->data = p->buf;
    r->data_len = p->len;
    p->buf = NULL;
  }
  if (!pr->check_active) {
    uv_check_start(&pr->check, deliver);
    pr->check_active = 1;
  }
}

// Closes the socket (a reset: SO_LINGER {1,0} was set at creation) and frees the probe. The slot is
// released at once for an aborted probe; for a finished one only after JS has seen its result, so a
// probe started meanwhile can never be handed an earlier probe's result.
static void close_probe(Probe *p, int release_slot) {
  Prober *pr = p->prober;
  pr->slots[p->slot] = NULL;
  if (release_slot) pr->free_slots[pr->nfree++] = p->slot;
  // Explicitly: a child forked meanwhile (exec tester) may hold the socket, and then close() alone
  // would leave it registered, pointing at freed memory.
  epoll_ctl(pr->epfd, EPOLL_CTL_DEL, p->fd, NULL);
  close(p->fd);
  free(p->buf);
  free(p);
  if (--pr->in_flight == 0) uv_unref((uv_handle_t *)&pr->epoll_watch);
}

static void finish(Probe *p, int kind, int err) {
  queue_result(p, kind, err);
  close_probe(p, 0);
}

static void deliver(uv_check_t *check) {
  Prober *pr = (Prober *)check->data;
  napi_env env = pr->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  size_t done = 0;
  while (done < pr->qlen) {
    size_t n = pr->qlen - done;
    if (n > BATCH) n = BATCH;
    napi_value cb, recv, argv[2];
    napi_get_reference_value(env, pr->callback, &cb);
    napi_get_global(env, &recv); // make_callback wants an object receiver
    napi_create_uint32(env, (uint32_t)n, &argv[0]);
    napi_get_undefined(env, &argv[1]);
    int any_data = 0;
    for (size_t i = 0; i < n; i++) {
      Result *r = &pr->queue[done + i];
      memcpy(pr->results + i * R_FIELDS, r->f, sizeof r->f);
      if (r->data != NULL) any_data = 1;
    }
    if (any_data) {
      napi_create_array_with_length(env, n, &argv[1]);
      for (size_t i = 0; i < n; i++) {
        Result *r = &pr->queue[done + i];
        if (r->data == NULL) continue;
        napi_value buf;
        void *dst;
        if (napi_create_buffer_copy(env, r->data_len, r->data, &dst, &buf) == napi_ok) napi_set_element(env, argv[1], (uint32_t)i, buf);
        free(r->data);
        r->data = NULL;
      }
    }
    napi_value ret;
    napi_status st = napi_make_callback(env, pr->async, recv, cb, 2, argv, &ret);
    for (size_t i = 0; i < n; i++) pr->free_slots[pr->nfree++] = (uint32_t)pr->queue[done + i].f[R_SLOT];
    done += n;
    if (st != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        // Results still queued stay queued for the next iteration; the exception goes to the process.
        memmove(pr->queue, pr->queue + done, (pr->qlen - done) * sizeof(Result));
        pr->qlen -= done;
        napi_fatal_exception(env, exc);
        napi_close_handle_scope(env, scope);
        return;
      }
    }
  }
  pr->qlen = 0;
  uv_check_stop(&pr->check);
  pr->check_active = 0;
  napi_close_handle_scope(env, scope);
}

// ---- HTTP response scan ----

static int status_ok(const Request *q, int status) {
  for (int i = 0; i < q->nranges; i++)
    if (status >= q->ranges[i][0] && status <= q->ranges[i][1]) return 1;
  return 0;
}

static int starts_with_ci(const char *s, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  if (n < k) return 0;
  for (size_t i = 0; i < k; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
    if (c != prefix[i]) return 0;
  }
  return 1;
}

// Head complete: find the body start and the framing headers we honour.
static void scan_head(Probe *p) {
  char *b = p->buf;
  size_t n = p->len;
  for (size_t i = 0; i + 1 < n; i++) {
    if (b[i] != '\n') continue;
    size_t end = 0;
    if (b[i + 1] == '\n') end = i + 2;
    else if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') end = i + 3;
    if (end == 0) continue;
    p->header_end = (long)end;
    break;
  }
  if (p->header_end < 0) return;
  // Header lines: between the status line and the blank line.
  size_t line = 0;
  while (line < (size_t)p->header_end && b[line] != '\n') line++;
  line++;
  while (line < (size_t)p->header_end) {
    size_t eol = line;
    while (eol < (size_t)p->header_end && b[eol] != '\n') eol++;
    size_t len = eol - line;
    if (starts_with_ci(b + line, len, "content-length:")) {
      long v = 0;
      int digits = 0;
      for (size_t i = line + 15; i < eol; i++) {
        if (b[i] >= '0' && b[i] <= '9') {
          if (v < 1000000000) v = v * 10 + (b[i] - '0');
          digits++;
        } else if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r') {
          digits = 0;
          break;
        }
      }
      if (digits > 0) p->content_length = v;
    } else if (starts_with_ci(b + line, len, "transfer-encoding:")) {
      for (size_t i = line + 18; i + 7 <= eol; i++)
        if (starts_with_ci(b + i, eol - i, "chunked")) p->chunked = 1;
    }
    line = eol + 1;
  }
}

static int body_has_needle(Probe *p) {
  const Request *q = p->req;
  if (q->needle == NULL || p->header_end < 0) return 0;
  size_t from = (size_t)p->header_end;
  size_t to = p->len;
  if (to - from > BODY_LIMIT) to = from + BODY_LIMIT;
  if (to - from < q->needle_len) return 0;
  return memmem(p->buf + from, to - from, q->needle, q->needle_len) != NULL;
}

// After new bytes: 1 = the response is decided (result queued), 0 = read on.
static int http_progress(Probe *p, int eof) {
  const Request *q = p->req;
  if (p->status == 0) {
    // "HTTP/x.y NNN": the original reads 12 bytes and takes bytes 9..11 as the status.
    if (p->len >= 12) {
      const char *b = p->buf;
      int ok = memcmp(b, "HTTP/", 5) == 0 && b[8] == ' ' && b[9] >= '1' && b[9] <= '9' && b[10] >= '0' && b[10] <= '9' &&
               b[11] >= '0' && b[11] <= '9';
      if (!ok) return finish(p, K_HTTP_MALFORMED, 0), 1;
      p->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
      if (!status_ok(q, p->status)) return finish(p, K_HTTP_DONE, 0), 1;
      if ((q->flags & Q_NAIVE) && q->needle == NULL) return finish(p, K_HTTP_DONE, 0), 1;
    } else if (eof) {
      return finish(p, p->len == 0 ? K_HTTP_CLOSED_EARLY : K_HTTP_MALFORMED, 0), 1;
    } else {
      return 0;
    }
  }
  if (p->header_end < 0) {
    scan_head(p);
    if (p->header_end < 0) {
      if (eof) return finish(p, K_HTTP_DONE, 0), 1;
      if (p->len >= HEADER_LIMIT) return finish(p, K_HTTP_MALFORMED, 0), 1;
      return 0;
    }
  }
  if (!p->body_found) p->body_found = body_has_needle(p);
  if ((q->flags & Q_NAIVE) && p->body_found) return finish(p, K_HTTP_DONE, 0), 1;
  size_t body = p->received - (size_t)p->header_end;
  int complete = eof || body >= BODY_LIMIT || (p->content_length >= 0 && body >= (size_t)p->content_length);
  // Chunked framing (not expected in answer to HTTP/1.0, but seen): the last chunk ends it.
  if (!complete && p->chunked && p->len >= (size_t)p->header_end + 5) complete = memcmp(p->buf + p->len - 5, "0\r\n\r\n", 5) == 0;
  if (complete) return finish(p, K_HTTP_DONE, 0), 1;
  return 0;
}

static void on_readable(Probe *p) {
  for (;;) {
    size_t keep_limit = p->want_data ? (size_t)HEADER_LIMIT + BODY_LIMIT : (p->header_end >= 0 ? (size_t)p->header_end + BODY_LIMIT : (size_t)HEADER_LIMIT);
    char scratch[16384];
    char *dst;
    size_t room;
    if (p->len < keep_limit) {
      if (p->cap - p->len < 4096 && p->cap < keep_limit) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        if (cap > keep_limit) cap = keep_limit;
        char *nb = realloc(p->buf, cap);
        if (nb == NULL) return finish(p, K_IO_ERROR, ENOMEM);
        p->buf = nb;
        p->cap = cap;
      }
      dst = p->buf + p->len;
      room = p->cap - p->len;
      if (room > keep_limit - p->len) room = keep_limit - p->len;
    } else {
      dst = scratch;
      room = sizeof scratch;
    }
    ssize_t n = read(p->fd, dst, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return finish(p, K_IO_ERROR, errno);
    }
    if (n == 0) {
      p->eof = 1;
      http_progress(p, 1);
      return;
    }
    p->received += (size_t)n;
    if (dst != scratch) p->len += (size_t)n;
    if (http_progress(p, 0)) return;
  }
}

static void on_writable(Probe *p) {
  const Request *q = p->req;
  while (p->sent < q->len) {
    ssize_t n = send(p->fd, q->bytes + p->sent, q->len - p->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return finish(p, K_IO_ERROR, errno);
    }
    p->sent += (size_t)n;
  }
  // Edge-triggered: a response that arrived while we were still writing gives no new edge.
  if (p->input_seen) on_readable(p);
}

static void on_event(Probe *p, uint32_t events) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) p->input_seen = 1;
  if (!p->connected) {
    // Writable without an error flag: the connect succeeded (no SO_ERROR to ask for).
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err == 0) err = ECONNRESET;
      return finish(p, K_CONNECT_ERROR, err);
    }
    if (!(events & EPOLLOUT)) return;
    p->connected = 1;
    uint64_t us = (now_ns() - p->start_ns) / 1000u;
    p->connect_us = clamp32(us);
    if (p->req == NULL || p->req->bytes == NULL) return finish(p, K_CONNECTED, 0);
    return on_writable(p);
  }
  if (p->sent < p->req->len) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(p);
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(p);
}

// The epoll instance has events: handle them all. A batch that fills the array is followed by
// another wait: edges not yet collected stay queued in the epoll instance.
static void on_epoll(uv_poll_t *h, int status, int events) {
  Prober *pr = h->data;
  struct epoll_event ev[256];
  int n;
  do {
    n = epoll_wait(pr->epfd, ev, 256, 0);
    for (int i = 0; i < n; i++) on_event(ev[i].data.ptr, ev[i].events);
  } while (n == 256);
}

// ---- JS API ----

static Prober *prober_of(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return (Prober *)data;
}

// init(onResults(count, buffers|undefined)) -> Int32Array of BATCH records.
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Prober *pr = prober_of(env);
  if (pr == NULL) return throw_error(env, "prober: no instance"), NULL;
  if (pr->callback != NULL) napi_delete_reference(env, pr->callback);
  NAPI_OK(napi_create_reference(env, argv[0], 1, &pr->callback));
  napi_value ab, arr;
  if (pr->results_ref == NULL) {
    void *data;
    NAPI_OK(napi_create_arraybuffer(env, BATCH * R_FIELDS * sizeof(int32_t), &data, &ab));
    pr->results = data;
    NAPI_OK(napi_create_typedarray(env, napi_int32_array, BATCH * R_FIELDS, ab, 0, &arr));
    NAPI_OK(napi_create_reference(env, arr, 1, &pr->results_ref));
  }
  NAPI_OK(napi_get_reference_value(env, pr->results_ref, &arr));
  return arr;
}

static void free_request(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Request *q = data;
  free(q->bytes);
  free(q->needle);
  free(q);
}

static int copy_buffer(napi_env env, napi_value v, char **out, size_t *len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_undefined || t == napi_null) {
    *out = NULL;
    *len = 0;
    return 1;
  }
  void *data;
  size_t n;
  if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return 0;
  *out = malloc(n ? n : 1);
  if (*out == NULL) return 0;
  memcpy(*out, data, n);
  *len = n;
  return 1;
}

// defineRequest(request: Buffer|null, needle: Buffer|null, flags, ranges: number[]) -> external.
static napi_value js_define_request(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Request *q = calloc(1, sizeof *q);
  if (q == NULL) return throw_error(env, "out of memory"), NULL;
  if (!copy_buffer(env, argv[0], &q->bytes, &q->len) || !copy_buffer(env, argv[1], &q->needle, &q->needle_len)) {
    free_request(env, q, NULL);
    return throw_error(env, "defineRequest: request and needle must be Buffers or null"), NULL;
  }
  int32_t flags = 0;
  napi_get_value_int32(env, argv[2], &flags);
  q->flags = flags;
  uint32_t n = 0;
  napi_get_array_length(env, argv[3], &n);
  if (n / 2 > MAX_RANGES) {
    free_request(env, q, NULL);
    return throw_error(env, "defineRequest: too many status ranges"), NULL;
  }
  for (uint32_t i = 0; i + 1 < n; i += 2) {
    napi_value lo, hi;
    napi_get_element(env, argv[3], i, &lo);
    napi_get_element(env, argv[3], i + 1, &hi);
    napi_get_value_int32(env, lo, &q->ranges[q->nranges][0]);
    napi_get_value_int32(env, hi, &q->ranges[q->nranges][1]);
    q->nranges++;
  }
  napi_value ext;
  NAPI_OK(napi_create_external(env, q, free_request, NULL, &ext));
  return ext;
}

static int take_slot(Prober *pr, uint32_t *slot) {
  if (pr->nfree == 0) {
    uint32_t n = pr->nslots ? pr->nslots * 2 : 1024;
    Probe **s = realloc(pr->slots, n * sizeof *s);
    if (s == NULL) return 0;
    pr->slots = s;
    uint32_t *f = realloc(pr->free_slots, n * sizeof *f);
    if (f == NULL) return 0;
    pr->free_slots = f;
    for (uint32_t i = n; i > pr->nslots; i--) {
      s[i - 1] = NULL;
      f[pr->nfree++] = i - 1;
    }
    pr->nslots = n;
  }
  *slot = pr->free_slots[--pr->nfree];
  return 1;
}

// start(family, addr, port, request external|null, flags) -> slot (>= 0) or -errno (nothing to close).
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Prober *pr = prober_of(env);
  int32_t family = 0, port = 0, flags = 0;
  char addr[64];
  size_t alen = 0;
  napi_get_value_int32(env, argv[0], &family);
  NAPI_OK(napi_get_value_string_latin1(env, argv[1], addr, sizeof addr, &alen));
  napi_get_value_int32(env, argv[2], &port);
  napi_get_value_int32(env, argv[4], &flags);
  const Request *req = NULL;
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t == napi_external) {
    void *d;
    napi_get_value_external(env, argv[3], &d);
    req = d;
  }
  napi_value ret;
  struct sockaddr_storage sa;
  socklen_t salen;
  memset(&sa, 0, sizeof sa);
  if (family == 6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) goto einval;
    salen = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) goto einval;
    salen = sizeof *s4;
  }
  if (port <= 0 || port > 65535) goto einval;
  uint64_t start = now_ns();
  int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    napi_create_int32(env, -errno, &ret);
    return ret;
  }
  // Every close of a probe socket is abortive: an RST, never a FIN and a TIME_WAIT.
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (connect(fd, (struct sockaddr *)&sa, salen) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    napi_create_int32(env, -err, &ret);
    return ret;
  }
  uint32_t slot;
  Probe *p = calloc(1, sizeof *p);
  if (p == NULL || !take_slot(pr, &slot)) {
    free(p);
    close(fd);
    napi_create_int32(env, -ENOMEM, &ret);
    return ret;
  }
  p->prober = pr;
  p->req = req;
  p->fd = fd;
  p->slot = slot;
  p->want_data = (flags & S_WANT_DATA) != 0;
  p->start_ns = start;
  p->connect_us = -1;
  p->header_end = -1;
  p->content_length = -1;
  // Edge-triggered, both directions at once: no epoll_ctl between writing the request and reading
  // the response. Every edge is consumed fully (reads run to EAGAIN or to the verdict).
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLET | (req != NULL && req->bytes != NULL ? EPOLLIN : 0), .data.ptr = p};
  if (epoll_ctl(pr->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    pr->free_slots[pr->nfree++] = slot;
    free(p);
    close(fd);
    napi_create_int32(env, -err, &ret);
    return ret;
  }
  pr->slots[slot] = p;
  if (pr->in_flight++ == 0) uv_ref((uv_handle_t *)&pr->epoll_watch);
  napi_create_int32(env, (int32_t)slot, &ret);
  return ret;
einval:
  napi_create_int32(env, -EINVAL, &ret);
  return ret;
}

// abort(slot) -> [connectUs (-1: not connected), sent, received, status, body bytes] of the probe,
// which is then closed without a result; null if the slot holds no probe.
static napi_value js_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Prober *pr = prober_of(env);
  uint32_t slot = 0;
  napi_get_value_uint32(env, argv[0], &slot);
  napi_value out;
  if (slot >= pr->nslots || pr->slots[slot] == NULL) {
    napi_get_null(env, &out);
    return out;
  }
  Probe *p = pr->slots[slot];
  int32_t vals[5] = {p->connected ? p->connect_us : -1, clamp32(p->sent), clamp32(p->received), p->status, clamp32(body_bytes(p))};
  NAPI_OK(napi_create_array_with_length(env, 5, &out));
  for (uint32_t i = 0; i < 5; i++) {
    napi_value v;
    napi_create_int32(env, vals[i], &v);
    napi_set_element(env, out, i, v);
  }
  close_probe(p, 1);
  return out;
}

static void cleanup(napi_env env, void *data, void *hint) {
  (void)hint;
  Prober *pr = data;
  for (uint32_t i = 0; i < pr->nslots; i++)
    if (pr->slots[i] != NULL) close_probe(pr->slots[i], 1);
  for (size_t i = 0; i < pr->qlen; i++) free(pr->queue[i].data);
  if (pr->async != NULL) napi_async_destroy(env, pr->async);
  // pr itself holds the two handles, which the loop may still reference while they close: it is
  // left allocated (once per environment, at teardown).
  uv_close((uv_handle_t *)&pr->check, NULL);
  uv_close((uv_handle_t *)&pr->epoll_watch, NULL);
  close(pr->epfd);
  free(pr->slots);
  free(pr->free_slots);
  free(pr->queue);
}

// testers/native/icmp.c: the ping tester's ICMP sockets, in the same module.
int icmp_define(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  Prober *pr = calloc(1, sizeof *pr);
  if (pr == NULL) return throw_error(env, "out of memory"), NULL;
  pr->env = env;
  NAPI_OK(napi_get_uv_event_loop(env, &pr->loop));
  uv_check_init(pr->loop, &pr->check);
  pr->check.data = pr;
  // Delivering results must not by itself keep the process alive.
  uv_unref((uv_handle_t *)&pr->check);
  pr->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (pr->epfd < 0) return throw_error(env, "prober: epoll_create1 failed"), NULL;
  if (uv_poll_init(pr->loop, &pr->epoll_watch, pr->epfd) != 0) return throw_error(env, "prober: cannot watch the epoll fd"), NULL;
  pr->epoll_watch.data = pr;
  uv_poll_start(&pr->epoll_watch, UV_READABLE, on_epoll);
  uv_unref((uv_handle_t *)&pr->epoll_watch);
  napi_value name;
  NAPI_OK(napi_create_string_utf8(env, "surealived-probe", NAPI_AUTO_LENGTH, &name));
  NAPI_OK(napi_async_init(env, NULL, name, &pr->async));
  NAPI_OK(napi_set_instance_data(env, pr, cleanup, NULL));
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"defineRequest", NULL, js_define_request, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, js_abort, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_OK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  icmp_define(env, exports);
  return exports;
}
