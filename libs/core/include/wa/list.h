/*
 * wa/list.h: the intrusive doubly linked list every library and daemon uses.
 *
 * A struct that can sit on a list embeds a struct wa_list node; the list itself is a
 * struct wa_list head (circular, so no NULL checks and O(1) removal from anywhere). Nothing is
 * allocated: the list borrows its nodes, and the owner of an element removes it before freeing
 * it. Not thread-safe: one thread at a time per list.
 *
 *     struct op { struct wa_list link; ... };
 *     struct wa_list ops;                     wa_list_init(&ops);
 *     wa_list_push_back(&ops, &op->link);     wa_list_remove(&op->link);
 *     struct wa_list *it, *tmp;
 *     WA_LIST_FOREACH_SAFE(it, tmp, &ops) { struct op *o = WA_LIST_ENTRY(it, struct op, link); }
 */
#ifndef WA_LIST_H
#define WA_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct wa_list {
    struct wa_list *prev, *next;
};

/* The element that embeds node as member. */
#define WA_LIST_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Iterates over every node of head; pos may be removed (and freed) inside the body. */
#define WA_LIST_FOREACH_SAFE(pos, tmp, head)                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

/* Makes l an empty list (a head) or an unlinked node. A zeroed node is unlinked too. */
static inline void
wa_list_init(struct wa_list *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool
wa_list_empty(const struct wa_list *head)
{
    return head->next == head;
}

/* True while node is on a list (false after wa_list_init, wa_list_remove, or when zeroed). */
static inline bool
wa_list_linked(const struct wa_list *node)
{
    return node->next != NULL && node->next != node;
}

/* The first node of head, or NULL when empty. */
static inline struct wa_list *
wa_list_first(const struct wa_list *head)
{
    return head->next != head ? head->next : NULL;
}

/* The last node of head, or NULL when empty. */
static inline struct wa_list *
wa_list_last(const struct wa_list *head)
{
    return head->prev != head ? head->prev : NULL;
}

/* Links node (not on any list) right before pos (a node of a list, or its head: then last). */
static inline void
wa_list_insert_before(struct wa_list *pos, struct wa_list *node)
{
    node->prev = pos->prev;
    node->next = pos;
    pos->prev->next = node;
    pos->prev = node;
}

/* Links node (not on any list) last in head. */
static inline void
wa_list_push_back(struct wa_list *head, struct wa_list *node)
{
    wa_list_insert_before(head, node);
}

/* Links node (not on any list) first in head. */
static inline void
wa_list_push_front(struct wa_list *head, struct wa_list *node)
{
    wa_list_insert_before(head->next, node);
}

/* Moves every node of from (emptied) to to, a head whose old contents are forgotten. */
static inline void
wa_list_take_all(struct wa_list *from, struct wa_list *to)
{
    wa_list_init(to);
    if (!wa_list_empty(from)) {
        to->next = from->next;
        to->prev = from->prev;
        to->next->prev = to;
        to->prev->next = to;
        wa_list_init(from);
    }
}

/* Unlinks node from its list and leaves it unlinked; a no-op for an unlinked node. */
static inline void
wa_list_remove(struct wa_list *node)
{
    if (wa_list_linked(node)) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
    }
    wa_list_init(node);
}

#endif
