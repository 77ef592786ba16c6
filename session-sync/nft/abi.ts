// Numbers of the nftables netlink ABI (linux/netfilter/nfnetlink.h, nf_tables.h) and of netlink
// framing. Only the nft codec, types and socket modules use them; callers never see an attribute id.

/** socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER). */
export const NETLINK_NETFILTER = 12;

// struct nlmsghdr {u32 len; u16 type; u16 flags; u32 seq; u32 pid} and its flags.
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** Set by the kernel on dump parts when the ruleset changed while dumping. */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_EXCL = 0x200;
export const NLM_F_DUMP = 0x300;
export const NLM_F_CREATE = 0x400;

// struct nlattr {u16 len; u16 type}; the two top bits of type are flags.
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;

/** struct nfgenmsg {u8 nfgen_family; u8 version; __be16 res_id}: follows every nlmsghdr. */
export const NFGEN_HDRLEN = 4;
export const NFNETLINK_V0 = 0;

export const NFNL_SUBSYS_NFTABLES = 10;
/** NLMSG_MIN_TYPE and NLMSG_MIN_TYPE + 1: the frame of one nftables transaction. */
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;

/** enum nf_tables_msg_types (message type = NFNL_SUBSYS_NFTABLES << 8 | cmd). */
export const NFT_MSG_NEWSET = 9;
export const NFT_MSG_GETSET = 10;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_GETSETELEM = 13;
export const NFT_MSG_DELSETELEM = 14;
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;
/**
 * Delete-if-present (Linux >= 6.3; the installed headers predate it): unlike DELSETELEM it does not
 * fail with ENOENT when the element has expired between our read and our write.
 */
export const NFT_MSG_DESTROYSETELEM = 30;

export const nftType = (cmd: number): number => (NFNL_SUBSYS_NFTABLES << 8) | cmd;

/** NFPROTO_* values of nfgen_family. */
export const NFPROTO = { unspec: 0, inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;

/** enum nft_set_attributes. */
export const NFTA_SET_TABLE = 1;
export const NFTA_SET_NAME = 2;
export const NFTA_SET_FLAGS = 3;
export const NFTA_SET_KEY_TYPE = 4;
export const NFTA_SET_KEY_LEN = 5;
export const NFTA_SET_DATA_TYPE = 6;
export const NFTA_SET_DATA_LEN = 7;
export const NFTA_SET_POLICY = 8;
export const NFTA_SET_DESC = 9;
export const NFTA_SET_ID = 10;
export const NFTA_SET_TIMEOUT = 11;
export const NFTA_SET_GC_INTERVAL = 12;
export const NFTA_SET_USERDATA = 13;
export const NFTA_SET_OBJ_TYPE = 15;
export const NFTA_SET_HANDLE = 16;
/** enum nft_set_desc_attributes (inside NFTA_SET_DESC). */
export const NFTA_SET_DESC_SIZE = 1;

/** enum nft_set_flags. */
export const NFT_SET_ANONYMOUS = 0x1;
export const NFT_SET_CONSTANT = 0x2;
export const NFT_SET_INTERVAL = 0x4;
export const NFT_SET_MAP = 0x8;
export const NFT_SET_TIMEOUT = 0x10;
/** "dynamic": the packet path may add and refresh elements (`update @set`). */
export const NFT_SET_EVAL = 0x20;
export const NFT_SET_OBJECT = 0x40;
export const NFT_SET_CONCAT = 0x80;
export const NFT_SET_EXPR = 0x100;

/** enum nft_set_elem_list_attributes: top level of (NEW|GET|DEL)SETELEM. */
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
/** enum nft_list_attributes: each element of NFTA_SET_ELEM_LIST_ELEMENTS. */
export const NFTA_LIST_ELEM = 1;

/** enum nft_set_elem_attributes: inside NFTA_LIST_ELEM. */
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_DATA = 2;
export const NFTA_SET_ELEM_FLAGS = 3;
/** be64 milliseconds: the element's own timeout (absent when it equals the set's default). */
export const NFTA_SET_ELEM_TIMEOUT = 4;
/** be64 milliseconds: remaining life on dumps; on add, the life to start with (Linux >= 5.3). */
export const NFTA_SET_ELEM_EXPIRATION = 5;
/** enum nft_set_elem_flags. */
export const NFT_SET_ELEM_INTERVAL_END = 0x1;
export const NFT_SET_ELEM_CATCHALL = 0x2;

/** enum nft_data_attributes: inside NFTA_SET_ELEM_KEY / _DATA. */
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
/** NFTA_SET_DATA_TYPE of a verdict map. */
export const NFT_DATA_VERDICT = 0xffffff00;

/**
 * nftables datatype ids (nftables include/datatype.h, enum datatypes) named in messages. Only the
 * ids checked against `nft` on this host are listed; others are shown as "datatype <n>".
 */
export const DATATYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'verdict', 4: 'integer', 5: 'string', 6: 'lladdr', 7: 'ipv4_addr', 8: 'ipv6_addr', 9: 'ether_addr',
  10: 'ether_type', 12: 'inet_proto', 13: 'inet_service', 19: 'mark', 20: 'iface_index',
};
export const TYPE_IPV4_ADDR = 7;
export const TYPE_IPV6_ADDR = 8;
export const TYPE_INET_SERVICE = 13;
export const TYPE_MARK = 19;
/** Concatenated types are packed 6 bits per field, first field highest (nftables TYPE_BITS). */
export const TYPE_BITS = 6;

/** errno values the library tells apart (the kernel's, as positive numbers). */
export const ENOENT = 2;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENFILE = 23;
export const EOPNOTSUPP = 95;
