/*
 * wa/utf8.h: the one strict UTF-8 decoder of the tree.
 *
 * Used wherever bytes from the network must be judged or walked as text: JSON escaping
 * (wa/buf.h), the router's text normalisation, the webhook.raw text test, WhatsApp length
 * limits. Pure functions over borrowed bytes; no allocation, thread-safe.
 */
#ifndef WA_UTF8_H
#define WA_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the sequence at s (at most n bytes, borrowed). Returns its length (1 to 4) and
 * stores the code point in *cp (cp may be NULL); returns 0 for an invalid or truncated
 * sequence (then *cp is untouched) and for n == 0. Rejects overlong forms, UTF-16
 * surrogates (U+D800..U+DFFF) and values past U+10FFFF. A NUL byte is a valid one-byte
 * sequence.
 */
size_t wa_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * Counts the code points in s (n bytes, borrowed) the lenient way: every byte that is not a
 * continuation byte (10xxxxxx) starts one, so an invalid byte counts as one character.
 */
size_t wa_utf8_count(const char *s, size_t n);

#endif
