// Numbers of the IPVS generic-netlink ABI (include/uapi/linux/ip_vs.h) and of the netlink framing.
// Only this module and codec.ts use them; callers of ipvs-netlink never see an attribute id.

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

export const enum Cmd {
  NEW_SERVICE = 1,
  SET_SERVICE = 2,
  DEL_SERVICE = 3,
  GET_SERVICE = 4,
  NEW_DEST = 5,
  SET_DEST = 6,
  DEL_DEST = 7,
  GET_DEST = 8,
  NEW_DAEMON = 9,
  DEL_DAEMON = 10,
  GET_DAEMON = 11,
  SET_CONFIG = 12,
  GET_CONFIG = 13,
  SET_INFO = 14,
  GET_INFO = 15,
  ZERO = 16,
  FLUSH = 17,
}

/** IPVS_CMD_ATTR_*: top level of every IPVS message. */
export const enum CmdAttr {
  SERVICE = 1,
  DEST = 2,
  DAEMON = 3,
  TIMEOUT_TCP = 4,
  TIMEOUT_TCP_FIN = 5,
  TIMEOUT_UDP = 6,
}

/** IPVS_SVC_ATTR_*: inside CmdAttr.SERVICE. */
export const enum SvcAttr {
  AF = 1,
  PROTOCOL = 2,
  ADDR = 3,
  PORT = 4,
  FWMARK = 5,
  SCHED_NAME = 6,
  FLAGS = 7,
  TIMEOUT = 8,
  NETMASK = 9,
  STATS = 10,
  PE_NAME = 11,
  STATS64 = 12,
}

/** IPVS_DEST_ATTR_*: inside CmdAttr.DEST. */
export const enum DestAttr {
  ADDR = 1,
  PORT = 2,
  FWD_METHOD = 3,
  WEIGHT = 4,
  U_THRESH = 5,
  L_THRESH = 6,
  ACTIVE_CONNS = 7,
  INACT_CONNS = 8,
  PERSIST_CONNS = 9,
  STATS = 10,
  ADDR_FAMILY = 11,
  STATS64 = 12,
  TUN_TYPE = 13,
  TUN_PORT = 14,
  TUN_FLAGS = 15,
}

/** IPVS_STATS_ATTR_*: inside SVC/DEST STATS (u32 counters, u64 bytes) and STATS64 (all u64). */
export const enum StatsAttr {
  CONNS = 1,
  INPKTS = 2,
  OUTPKTS = 3,
  INBYTES = 4,
  OUTBYTES = 5,
  CPS = 6,
  INPPS = 7,
  OUTPPS = 8,
  INBPS = 9,
  OUTBPS = 10,
}

/** IPVS_DAEMON_ATTR_*: inside CmdAttr.DAEMON (kernel policy: ip_vs_daemon_policy). */
export const enum DaemonAttr {
  /** u32: IP_VS_STATE_MASTER or IP_VS_STATE_BACKUP. */
  STATE = 1,
  /** NUL-terminated, at most IP_VS_IFNAME_MAXLEN - 1 bytes before the NUL. */
  MCAST_IFN = 2,
  /** u32 (the kernel keeps an int; sync messages carry one byte). */
  SYNC_ID = 3,
  /** u16, host order. */
  SYNC_MAXLEN = 4,
  /** in_addr: 4 bytes, network order. */
  MCAST_GROUP = 5,
  /** in6_addr: 16 bytes. */
  MCAST_GROUP6 = 6,
  /** u16 in host order: the kernel applies htons(port + thread id) itself. */
  MCAST_PORT = 7,
  /** u8. */
  MCAST_TTL = 8,
}

export const IP_VS_STATE_MASTER = 1;
export const IP_VS_STATE_BACKUP = 2;
/** Interface name buffer, NUL included (IFNAMSIZ). */
export const IP_VS_IFNAME_MAXLEN = 16;

/** IPVS_INFO_ATTR_*: top level of the SET_INFO reply to GET_INFO. */
export const enum InfoAttr {
  VERSION = 1,
  CONN_TAB_SIZE = 2,
}

export const SVC_F_PERSISTENT = 0x1;
/** Kernel-internal "in the hash table" bit: shows up in dumps, must never be sent. */
export const SVC_F_HASHED = 0x2;
export const SVC_F_ONEPACKET = 0x4;
export const SVC_F_SCHED1 = 0x8;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;

export const CONN_F_FWD_MASK = 0x7;

export const AF_INET = 2;
export const AF_INET6 = 10;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

export const SCHEDNAME_MAXLEN = 16;
export const PENAME_MAXLEN = 16;

// Netlink / generic netlink framing (linux/netlink.h, linux/genetlink.h).
export const NETLINK_GENERIC = 16;
export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const NLA_HDRLEN = 4;
/** Type bits of an attribute header: NLA_F_NESTED (0x8000) and NLA_F_NET_BYTEORDER (0x4000) masked off. */
export const NLA_TYPE_MASK = 0x3fff;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
