// Peer credentials of a connected unix socket: getsockopt(SOL_SOCKET, SO_PEERCRED), which Node does not
// expose. The control socket servers use it to refuse commands from users other than root and their
// own; the credentials are the ones the peer had when it called connect() (kernel semantics).

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

// The errno names a caller may meet here; others are reported as EUNKNOWN with the number alongside.
static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EINVAL: return "EINVAL";
    case ENOTCONN: return "ENOTCONN";
    case EFAULT: return "EFAULT";
    default: return "EUNKNOWN";
  }
}

// Throws an Error whose message names the fd and the reason, with `code` (errno name) and `errno` set.
static void throw_errno(napi_env env, int fd, int err) {
  char text[192];
  snprintf(text, sizeof text, "getsockopt(SO_PEERCRED) on fd %d: %s", fd, strerror(err));
  napi_value code, msg, error, num;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok || napi_create_int32(env, err, &num) != napi_ok ||
      napi_set_named_property(env, error, "errno", num) != napi_ok) {
    napi_throw_error(env, "EUNKNOWN", text);
    return;
  }
  napi_throw(env, error);
}

static napi_value peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "peerCred(fd): fd must be a number");
    return NULL;
  }
  double value;
  if (napi_get_value_double(env, argv[0], &value) != napi_ok) return NULL;
  if (!(value >= 0 && value <= 2147483647.0) || value != (double)(int)value) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "peerCred(fd): fd must be an integer from 0 to 2^31-1");
    return NULL;
  }
  int fd = (int)value;

  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno(env, fd, errno);
    return NULL;
  }
  if (len != sizeof cred) {
    throw_errno(env, fd, EINVAL);
    return NULL;
  }

  napi_value out, pid, uid, gid;
  if (napi_create_object(env, &out) != napi_ok || napi_create_int32(env, cred.pid, &pid) != napi_ok ||
      napi_create_uint32(env, cred.uid, &uid) != napi_ok || napi_create_uint32(env, cred.gid, &gid) != napi_ok ||
      napi_set_named_property(env, out, "pid", pid) != napi_ok ||
      napi_set_named_property(env, out, "uid", uid) != napi_ok ||
      napi_set_named_property(env, out, "gid", gid) != napi_ok) {
    return NULL;
  }
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "peerCred", fn) != napi_ok) return NULL;
  return exports;
}
