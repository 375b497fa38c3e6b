/*
 * arena.c: a scoped bump allocator for jansson (wa/json.h, "Arenas").
 *
 * jansson allocates every value, key and hashtable of a document separately: for a 1 KiB
 * webhook that is about a hundred malloc/free pairs, which cost wa-ingest more than the
 * parse itself. Between wa_json_arena_enter() and wa_json_arena_leave() this thread's jansson
 * allocations come from the arena's blocks (bump pointer, no per-object header) and frees of
 * them are no-ops; leave forgets them all at once and keeps the first block for the next scope.
 *
 * jansson's allocator is process-wide (json_set_alloc_funcs), so the hooks are installed once,
 * before main() (a constructor in this file, linked only into programs that use arenas), and
 * they pass through to malloc/free for every thread outside a scope and for every pointer the
 * arena does not own. An arena pointer is recognised by address: blocks are few (one in the
 * common case), so the check is a short loop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"

#define ARENA_ALIGN 16u

struct wa_json_arena_block {
    struct wa_json_arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static _Thread_local struct wa_json_arena *current;

static struct wa_json_arena_block *
block_new(size_t size)
{
    struct wa_json_arena_block *b = malloc(sizeof(*b) + size);

    if (b != NULL) {
        b->next = NULL;
        b->size = size;
        b->used = 0;
    }
    return b;
}

static bool
owns(const struct wa_json_arena *a, const void *ptr)
{
    const unsigned char *p = ptr;

    for (const struct wa_json_arena_block *b = a->blocks; b != NULL; b = b->next) {
        if (p >= b->data && p < b->data + b->size) {
            return true;
        }
    }
    return false;
}

static void *
arena_alloc(struct wa_json_arena *a, size_t size)
{
    struct wa_json_arena_block *b = a->blocks;
    size_t need = (size + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (need < size) {
        return NULL; /* overflow */
    }
    if (b == NULL || b->size - b->used < need) {
        size_t bsize = a->block_size;

        while (bsize < need && bsize < SIZE_MAX / 2) {
            bsize *= 2;
        }
        if (bsize < need || (b = block_new(bsize)) == NULL) {
            return NULL;
        }
        b->next = a->blocks; /* newest first: allocation only looks at the head */
        a->blocks = b;
        a->grown++;
    }
    p = b->data + b->used;
    b->used += need;
    a->allocated += need;
    return p;
}

static void *
hook_malloc(size_t size)
{
    struct wa_json_arena *a = current;

    return a != NULL ? arena_alloc(a, size) : malloc(size);
}

static void
hook_free(void *ptr)
{
    struct wa_json_arena *a = current;

    if (ptr == NULL || (a != NULL && owns(a, ptr))) {
        return; /* arena memory goes with the scope */
    }
    free(ptr);
}

__attribute__((constructor)) static void
install_hooks(void)
{
    json_set_alloc_funcs(hook_malloc, hook_free);
}

void
wa_json_arena_init(struct wa_json_arena *a, size_t block_size)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size >= 1024 ? block_size : 1024;
}

void
wa_json_arena_enter(struct wa_json_arena *a)
{
    WA_ASSERT(current == NULL); /* scopes do not nest */
    WA_ASSERT(!a->active);
    a->active = true;
    current = a;
}

void
wa_json_arena_leave(struct wa_json_arena *a)
{
    struct wa_json_arena_block *keep = NULL;

    WA_ASSERT(current == a && a->active);
    current = NULL;
    a->active = false;
    /* Keep one block of the configured size (the last one of the list is the first made);
     * free what a large document added, so one big body does not pin its memory. */
    for (struct wa_json_arena_block *b = a->blocks, *next; b != NULL; b = next) {
        next = b->next;
        if (keep == NULL && next == NULL && b->size == a->block_size) {
            keep = b;
        } else {
            free(b);
        }
    }
    if (keep != NULL) {
        keep->used = 0;
    }
    a->blocks = keep;
    a->allocated = 0;
}

bool
wa_json_arena_owns(const struct wa_json_arena *a, const void *ptr)
{
    return ptr != NULL && owns(a, ptr);
}

void
wa_json_arena_free(struct wa_json_arena *a)
{
    WA_ASSERT(!a->active);
    for (struct wa_json_arena_block *b = a->blocks, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    a->blocks = NULL;
}
