// Byte stores and loads for netlink codecs, without Buffer's validating write*/read* methods: those
// check every argument, and encoding 100,000 ops or decoding a 100,000-element dump calls them
// about ten times per op (under emulation that validation alone cost seconds). Netlink integers are
// in host byte order; only fields the kernel reads as __be16/__be32/__be64 are big-endian.
import { endianness } from 'node:os';

// Not the exported binding below: the optimiser folds this module-private constant into the
// functions here, an exported one is loaded and tested at every call (measured: +15% on a dump decode).
const le = endianness() === 'LE';
/** The host is little-endian (netlink's host-order fields are then little-endian). */
export const LE = le;

/** `n` rounded up to a multiple of 4 (NLMSG_ALIGN, NLA_ALIGN). */
export const align4 = (n: number): number => (n + 3) & ~3;

/** u16 in host order. */
export function put16(b: Uint8Array, o: number, v: number): void {
  if (le) {
    b[o] = v;
    b[o + 1] = v >>> 8;
  } else {
    b[o] = v >>> 8;
    b[o + 1] = v;
  }
}
/** u32 in host order. */
export function put32(b: Uint8Array, o: number, v: number): void {
  if (le) {
    b[o] = v;
    b[o + 1] = v >>> 8;
    b[o + 2] = v >>> 16;
    b[o + 3] = v >>> 24;
  } else {
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
  }
}
/** u16 in network order. */
export function put16be(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
/** u32 in network order. */
export function put32be(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** u16 in host order (the caller has checked the bounds). */
export function get16(b: Uint8Array, o: number): number {
  return le ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}
/** u32 in host order (the caller has checked the bounds). */
export function get32(b: Uint8Array, o: number): number {
  return le
    ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
    : ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
/** u32 in network order (the caller has checked the bounds). */
export function get32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
/** A be64 as a number: exact below 2^53 (the millisecond values the kernel reports). */
export function get64be(b: Uint8Array, o: number): number {
  return get32be(b, o) * 4294967296 + get32be(b, o + 4);
}
