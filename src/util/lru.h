/*
 * lru: an intrusive doubly linked list kept in most-recently-used order,
 * for the bounded caches (dnscache.c, tls/sesscache.c): an entry embeds a
 * struct lru_link and is found back from it with LRU_ENTRY.  Header only,
 * no allocation; the caller owns the entries and any locking.
 */
#ifndef TERN_UTIL_LRU_H
#define TERN_UTIL_LRU_H

#include <stddef.h>

struct lru_link {
	struct lru_link *prev, *next;
};

struct lru_list {
	struct lru_link *head, *tail; /* most, least recently used */
};

/* The entry of type that holds link l as member (NULL for NULL). */
#define LRU_ENTRY(l, type, member)                                             \
	((l) != NULL ? (type *)(void *)((char *)(l)-offsetof(type, member))    \
		     : (type *)NULL)

static inline void
lru_unlink(struct lru_list *list, struct lru_link *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		list->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		list->tail = e->prev;
	e->prev = e->next = NULL;
}

/* e (not in the list) becomes the most recently used. */
static inline void
lru_push(struct lru_list *list, struct lru_link *e)
{
	e->prev = NULL;
	e->next = list->head;
	if (list->head != NULL)
		list->head->prev = e;
	list->head = e;
	if (list->tail == NULL)
		list->tail = e;
}

/* e (in the list) becomes the most recently used. */
static inline void
lru_touch(struct lru_list *list, struct lru_link *e)
{
	lru_unlink(list, e);
	lru_push(list, e);
}

#endif
