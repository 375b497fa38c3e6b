/*
 * resolve.h: kv.c's resolver of host names off the loop thread (resolve.c). Private to libs/kv.
 *
 * Loop side: kv_resolver_new() once, watch kv_resolver_fd() for reading, kv_resolver_ask()
 * (one request at a time), kv_resolver_answer() when the fd is readable, and
 * kv_resolver_release() when done (never waits for a lookup in progress).
 */
#ifndef WA_KV_RESOLVE_H
#define WA_KV_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct kv_resolver;

/* Starts the resolver's thread. 0, or -1 (out of memory or threads). */
int kv_resolver_new(struct kv_resolver **out);
/* The eventfd that becomes readable when an answer is ready. */
int kv_resolver_fd(const struct kv_resolver *r);
/* Asks for host's first IPv4 or IPv6 address. host is copied (truncated at 255 bytes). */
void kv_resolver_ask(struct kv_resolver *r, const char *host);
/* True when the lookup asked finished: addr is the numeric address, or empty with the reason
 * in error. False when nothing is ready (a spurious wake-up). */
bool kv_resolver_answer(struct kv_resolver *r, char *addr, size_t addrlen, char *error,
                        size_t errlen);
/* Drops the loop side's reference; the thread ends after its current lookup. Accepts NULL. */
void kv_resolver_release(struct kv_resolver *r);
/* True for an IPv4 or IPv6 literal (hiredis then resolves nothing). */
bool kv_host_is_numeric(const char *host);

#endif
