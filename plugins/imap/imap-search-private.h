/* imap-search-private.h - the program tree shared by the parser and the
 * matcher of imap-search. */
#ifndef IMAP_SEARCH_PRIVATE_H
#define IMAP_SEARCH_PRIVATE_H

#include "imap-search.h"

enum sk_type {
	SK_ALL = 0,
	SK_AND,     /* children, all true */
	SK_OR,      /* two children, either true */
	SK_NOT,     /* one child */
	SK_SEQSET,  /* u.set of sequence numbers */
	SK_UIDSET,  /* u.set of UIDs ("$" too: the saved UIDs) */
	SK_FLAGS,   /* (meta->flags & u.flags.mask) == u.flags.want */
	SK_KEYWORD, /* u.str.needle is a keyword; neg: UNKEYWORD */
	SK_RECENT,  /* recent == !neg */
	SK_LARGER,  /* size > u.num */
	SK_SMALLER, /* size < u.num */
	SK_BEFORE,  /* internal day < u.day */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE, /* Date: day < u.day */
	SK_SENTON,
	SK_SENTSINCE,
	SK_OLDER,   /* internal date <= u.time */
	SK_YOUNGER, /* internal date >= u.time */
	SK_MODSEQ,  /* modseq >= u.num */
	SK_HEADER,  /* u.str.field holds u.str.needle */
	SK_BODY,
	SK_TEXT,
};

/* What a key needs, cheapest first: keys are evaluated in this order. */
enum sk_cost {
	COST_META = 0, /* struct ms_msg and the recent flag */
	COST_MIME,     /* the stored structure (index) */
	COST_HEADER,   /* the top-level header bytes */
	COST_BODY,     /* the bodies */
};

struct sk {
	enum sk_type type;
	enum sk_cost cost;
	bool neg;
	struct sk *child; /* AND, OR, NOT */
	struct sk *next;  /* sibling */
	union {
		struct imap_seqset set;
		struct {
			uint32_t mask, want;
		} flags;
		uint64_t num;
		int32_t day;
		int64_t time;
		struct {
			char *field;  /* HEADER: the field name */
			char *needle; /* folded (KEYWORD: as sent) */
			size_t len;
		} str;
	} u;
};

struct search_field {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

struct imap_search_program {
	struct sk *root; /* an SK_AND */
	unsigned ret;    /* enum imap_search_return */
	bool esearch;
	bool modseq;
	bool uses_saved;

	/* Scratch kept between messages (imap-search-match.c). */
	struct mp_buf raw;  /* the header as stored */
	struct mp_buf text; /* "name: folded value\n" per field */
	struct mp_buf sub;  /* the same for an attached message's header */
	struct search_field *fields;
	size_t nfields, fields_cap;
	struct mp_buf chunk, dec, utf, win;
};

/* Frees a tree. */
void imap_search_key_free(struct sk *k);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int32_t imap_search_days(int y, int m, int d);
/* The month (1-12) of a three-letter English name in any case, or 0. */
int imap_search_month(const char *s, size_t len);

#endif
