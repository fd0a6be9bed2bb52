/* test-smtp-parser.c - the SMTP command parser, addresses, replies, xtext. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "smtp-address.h"
#include "smtp-parser.h"

/* A literal and its length, NUL bytes included. */
#define S(lit) lit, sizeof(lit) - 1

#define X8  "xxxxxxxx"
#define X64 X8 X8 X8 X8 X8 X8 X8 X8
/* Labels of 61 to 63 octets; 63 is the longest DNS allows. */
#define L61 X8 X8 X8 X8 X8 X8 X8 "xxxxx"
#define L62 X8 X8 X8 X8 X8 X8 X8 "xxxxxx"
#define L63 X8 X8 X8 X8 X8 X8 X8 "xxxxxxx"

enum lim_kind {
	LIM_NULL = 0, /* NULL: the defaults */
	LIM_PREAUTH,  /* smtp_parser_limits_init(false) */
	LIM_AUTH,     /* smtp_parser_limits_init(true) */
	LIM_TINY,     /* every limit small */
	LIM_RELAXED,  /* long addresses, no size ceiling */
};

struct pcase {
	const char *name;
	const char *line;
	size_t len;
	enum lim_kind lim;
	/* What render() gives: "VERB field=[...] flag..." or "CODE X.Y.Z". */
	const char *expect;
};

static const struct pcase cases[] = {
	/* Verbs */
	{"verb/unknown", S("FOO"), 0, "500 5.5.2"},
	{"verb/empty", S(""), 0, "500 5.5.2"},
	{"verb/blanks-only", S("  \t "), 0, "500 5.5.2"},
	{"verb/prefix", S("QUI"), 0, "500 5.5.2"},
	{"verb/longer", S("QUITX"), 0, "500 5.5.2"},
	{"verb/nul-inside", S("QU\0IT"), 0, "500 5.5.2"},
	{"verb/nul-after", S("QUIT\0"), 0, "500 5.5.2"},
	{"verb/8bit", S("QUIT\xc3\xa9"), 0, "500 5.5.2"},
	{"verb/mail-from-joined", S("MAILFROM:<>"), 0, "500 5.5.2"},
	{"verb/turn", S("TURN"), 0, "500 5.5.2"},
	{"verb/lower-case", S("quit"), 0, "QUIT"},
	{"verb/mixed-case", S("qUiT"), 0, "QUIT"},
	{"verb/leading-blanks", S("  \tNOOP"), 0, "NOOP"},
	{"verb/trailing-blanks", S("RSET \t "), 0, "RSET"},
	/* Commands without arguments */
	{"data/ok", S("DATA"), 0, "DATA"},
	{"data/argument", S("DATA now"), 0, "501 5.5.4"},
	{"data/nul", S("DATA \0"), 0, "501 5.5.4"},
	{"rset/ok", S("RSET"), 0, "RSET"},
	{"rset/argument", S("RSET all"), 0, "501 5.5.4"},
	{"quit/ok", S("QUIT"), 0, "QUIT"},
	{"quit/argument", S("QUIT bye"), 0, "501 5.5.4"},
	{"starttls/ok", S("STARTTLS"), 0, "STARTTLS"},
	{"starttls/lower-case", S("starttls"), 0, "STARTTLS"},
	{"starttls/argument", S("STARTTLS x"), 0, "501 5.5.4"},
	/* NOOP, HELP, VRFY, EXPN */
	{"noop/bare", S("NOOP"), 0, "NOOP"},
	{"noop/string", S("NOOP hello  world"), 0, "NOOP arg=[hello  world]"},
	{"noop/utf8", S("NOOP h\xc3\xa9"), 0, "NOOP arg=[h\xc3\xa9]"},
	{"noop/bad-utf8", S("NOOP \xff"), 0, "501 5.5.4"},
	{"noop/control",
	 S("NOOP a\x01"
	   "b"),
	 0, "501 5.5.4"},
	{"noop/nul", S("NOOP a\0b"), 0, "501 5.5.4"},
	{"noop/del", S("NOOP a\x7f"), 0, "501 5.5.4"},
	{"noop/cr", S("NOOP a\rb"), 0, "501 5.5.4"},
	{"noop/too-long", S("NOOP " X64 X64 X64 X64 "x"), 0, "501 5.5.4"},
	{"noop/longest", S("NOOP " X64 X64 X64 X64), 0,
	 "NOOP arg=[" X64 X64 X64 X64 "]"},
	{"noop/long-after-auth", S("NOOP " X64 X64 X64 X64 "x"), LIM_AUTH,
	 "NOOP arg=[" X64 X64 X64 X64 "x]"},
	{"noop/long-before-auth", S("NOOP " X64 X64 X64 X64 "x"), LIM_PREAUTH,
	 "501 5.5.4"},
	{"help/bare", S("HELP"), 0, "HELP"},
	{"help/topic", S("help MAIL"), 0, "HELP arg=[MAIL]"},
	{"vrfy/ok", S("VRFY postmaster"), 0, "VRFY arg=[postmaster]"},
	{"vrfy/inner-blanks", S("VRFY John  Smith "), 0,
	 "VRFY arg=[John  Smith]"},
	{"vrfy/missing", S("VRFY"), 0, "501 5.5.4"},
	{"vrfy/blank", S("VRFY   "), 0, "501 5.5.4"},
	{"vrfy/tab-separator", S("VRFY\tbob"), 0, "VRFY arg=[bob]"},
	{"expn/ok", S("EXPN staff"), 0, "EXPN arg=[staff]"},
	{"expn/missing", S("expn"), 0, "501 5.5.4"},
	/* EHLO, HELO */
	{"ehlo/ok", S("EHLO mail.example.com"), 0,
	 "EHLO arg=[mail.example.com]"},
	{"ehlo/lower-case", S("ehlo x"), 0, "EHLO arg=[x]"},
	{"ehlo/tab", S("EHLO\thost "), 0, "EHLO arg=[host]"},
	{"ehlo/missing", S("EHLO"), 0, "501 5.5.4"},
	{"ehlo/two-words", S("EHLO my host"), 0, "501 5.5.4"},
	{"ehlo/underscore", S("EHLO my_host.example"), 0,
	 "EHLO arg=[my_host.example]"},
	{"ehlo/literal-v4", S("EHLO [192.0.2.1]"), 0, "EHLO arg=[[192.0.2.1]]"},
	{"ehlo/literal-v6", S("EHLO [IPv6:2001:db8::1]"), 0,
	 "EHLO arg=[[IPv6:2001:db8::1]]"},
	{"ehlo/literal-empty", S("EHLO []"), 0, "501 5.5.4"},
	{"ehlo/literal-unclosed", S("EHLO [192.0.2.1"), 0, "501 5.5.4"},
	{"ehlo/literal-nested", S("EHLO [[1]]"), 0, "501 5.5.4"},
	{"ehlo/slash", S("EHLO a/b"), 0, "501 5.5.4"},
	{"ehlo/at", S("EHLO user@host"), 0, "501 5.5.4"},
	{"ehlo/utf8",
	 S("EHLO b\xc3\xbc"
	   "cher.example"),
	 0,
	 "EHLO arg=[b\xc3\xbc"
	 "cher.example]"},
	{"ehlo/latin1",
	 S("EHLO b\xfc"
	   "cher.example"),
	 0, "501 5.5.4"},
	{"ehlo/nul", S("EHLO ho\0st"), 0, "501 5.5.4"},
	{"ehlo/too-long", S("EHLO " X64 X64 X64 X64), 0, "501 5.5.4"},
	{"helo/ok", S("HELO host.example"), 0, "HELO arg=[host.example]"},
	{"helo/missing", S("HELO "), 0, "501 5.5.4"},
	/* AUTH */
	{"auth/mechanism", S("AUTH PLAIN"), 0, "AUTH arg=[PLAIN]"},
	{"auth/lower-case", S("auth plain"), 0, "AUTH arg=[plain]"},
	{"auth/initial-response", S("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 0,
	 "AUTH arg=[PLAIN] ir=[AGFsaWNlAHNlY3JldA==]"},
	{"auth/empty-response", S("AUTH EXTERNAL ="), 0,
	 "AUTH arg=[EXTERNAL] ir=[=]"},
	{"auth/scram", S("AUTH SCRAM-SHA-256"), 0, "AUTH arg=[SCRAM-SHA-256]"},
	{"auth/mechanism-20", S("AUTH ABCDEFGHIJKLMNOPQ_ST"), 0,
	 "AUTH arg=[ABCDEFGHIJKLMNOPQ_ST]"},
	{"auth/mechanism-21", S("AUTH ABCDEFGHIJKLMNOPQR_ST"), 0, "501 5.5.4"},
	{"auth/missing", S("AUTH"), 0, "501 5.5.4"},
	{"auth/bad-mechanism", S("AUTH PL@IN"), 0, "501 5.5.4"},
	{"auth/extra-word", S("AUTH PLAIN dGVzdA== x"), 0, "501 5.5.4"},
	{"auth/base64-length", S("AUTH PLAIN abc"), 0, "501 5.5.2"},
	{"auth/base64-char", S("AUTH PLAIN ab*d"), 0, "501 5.5.2"},
	{"auth/base64-pad-inside", S("AUTH PLAIN ab=d"), 0, "501 5.5.2"},
	{"auth/base64-three-pads", S("AUTH PLAIN a==="), 0, "501 5.5.2"},
	{"auth/response-too-long", S("AUTH PLAIN dGVzdGVzdA=="), LIM_TINY,
	 "500 5.5.6"},
	/* BDAT */
	{"bdat/size", S("BDAT 1000"), 0, "BDAT size=1000"},
	{"bdat/last", S("BDAT 0 LAST"), 0, "BDAT size=0 last"},
	{"bdat/last-lower-case", S("bdat 5   last "), 0, "BDAT size=5 last"},
	{"bdat/missing", S("BDAT"), 0, "501 5.5.4"},
	{"bdat/not-digits", S("BDAT 12a"), 0, "501 5.5.4"},
	{"bdat/negative", S("BDAT -1"), 0, "501 5.5.4"},
	{"bdat/plus", S("BDAT +5"), 0, "501 5.5.4"},
	{"bdat/bad-last", S("BDAT 5 LASTX"), 0, "501 5.5.4 size=5"},
	{"bdat/extra-word", S("BDAT 5 LAST x"), 0, "501 5.5.4 size=5"},
	{"bdat/at-limit", S("BDAT 10240000"), 0, "BDAT size=10240000"},
	{"bdat/over-limit", S("BDAT 10240001 LAST"), 0,
	 "552 5.3.4 size=10240001 last"},
	{"bdat/tiny-limit", S("BDAT 101"), LIM_TINY, "552 5.3.4 size=101"},
	{"bdat/uint64-max", S("BDAT 18446744073709551615"), 0,
	 "552 5.3.4 size=18446744073709551615"},
	{"bdat/overflow", S("BDAT 18446744073709551616"), 0, "552 5.3.4"},
	{"bdat/leading-zeros", S("BDAT 00000000000000000000000000042"), 0,
	 "BDAT size=42"},
	/* MAIL: the command's shape */
	{"mail/null-path", S("MAIL FROM:<>"), 0, "MAIL path=[] mbox=[] null"},
	{"mail/simple", S("MAIL FROM:<alice@example.com>"), 0,
	 "MAIL path=[alice@example.com] mbox=[alice@example.com]"},
	{"mail/lower-case", S("mail from:<a@b>"), 0,
	 "MAIL path=[a@b] mbox=[a@b]"},
	{"mail/space-after-colon", S("MAIL FROM: <a@b>"), 0,
	 "MAIL path=[a@b] mbox=[a@b]"},
	{"mail/blanks-after-colon", S("MAIL FROM: \t <a@b>"), 0,
	 "MAIL path=[a@b] mbox=[a@b]"},
	{"mail/blanks-after-verb", S("MAIL \t FROM:<>"), 0,
	 "MAIL path=[] mbox=[] null"},
	{"mail/space-before-colon", S("MAIL FROM :<a@b>"), 0, "501 5.5.4"},
	{"mail/no-brackets", S("MAIL FROM:a@b"), 0, "501 5.5.4"},
	{"mail/no-from", S("MAIL <a@b>"), 0, "501 5.5.4"},
	{"mail/to-instead", S("MAIL TO:<a@b>"), 0, "501 5.5.4"},
	{"mail/no-path", S("MAIL FROM:"), 0, "501 5.5.4"},
	{"mail/bare", S("MAIL"), 0, "501 5.5.4"},
	{"mail/unclosed", S("MAIL FROM:<a@b"), 0, "501 5.1.7"},
	{"mail/null-unclosed", S("MAIL FROM:<"), 0, "501 5.1.7"},
	{"mail/blank-inside", S("MAIL FROM:< a@b>"), 0, "501 5.1.7"},
	{"mail/blank-before-gt", S("MAIL FROM:<a@b >"), 0, "501 5.1.7"},
	{"mail/null-with-blank", S("MAIL FROM:< >"), 0, "501 5.1.7"},
	{"mail/junk-after-path", S("MAIL FROM:<a@b>x"), 0, "501 5.1.7"},
	{"mail/param-without-blank", S("MAIL FROM:<a@b>SIZE=1"), 0,
	 "501 5.1.7"},
	{"mail/nul-in-path", S("MAIL FROM:<a\0b@c>"), 0, "501 5.5.4"},
	{"mail/nul-after-path", S("MAIL FROM:<a@c>\0"), 0, "501 5.5.4"},
	/* MAIL: addresses */
	{"mail/no-domain", S("MAIL FROM:<alice>"), 0, "501 5.1.7"},
	{"mail/postmaster-is-rcpt-only", S("MAIL FROM:<Postmaster>"), 0,
	 "501 5.1.7"},
	{"mail/empty-local", S("MAIL FROM:<@b>"), 0, "501 5.1.7"},
	{"mail/empty-domain", S("MAIL FROM:<a@>"), 0, "501 5.1.7"},
	{"mail/two-ats", S("MAIL FROM:<a@b@c>"), 0, "501 5.1.7"},
	{"mail/double-dot", S("MAIL FROM:<a..b@c>"), 0, "501 5.1.7"},
	{"mail/leading-dot", S("MAIL FROM:<.a@c>"), 0, "501 5.1.7"},
	{"mail/trailing-dot", S("MAIL FROM:<a.@c>"), 0, "501 5.1.7"},
	{"mail/dotted-local", S("MAIL FROM:<first.last@c>"), 0,
	 "MAIL path=[first.last@c] mbox=[first.last@c]"},
	{"mail/atext", S("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@x>"), 0,
	 "MAIL path=[!#$%&'*+-/=?^_`{|}~@x] mbox=[!#$%&'*+-/=?^_`{|}~@x]"},
	{"mail/specials-in-local", S("MAIL FROM:<a(b)@c>"), 0, "501 5.1.7"},
	{"mail/domain-trailing-dot", S("MAIL FROM:<a@b.>"), 0, "501 5.1.7"},
	{"mail/domain-double-dot", S("MAIL FROM:<a@b..c>"), 0, "501 5.1.7"},
	{"mail/domain-hyphen-first", S("MAIL FROM:<a@-b.c>"), 0, "501 5.1.7"},
	{"mail/domain-hyphen-last", S("MAIL FROM:<a@b-.c>"), 0, "501 5.1.7"},
	{"mail/domain-hyphen-inside", S("MAIL FROM:<a@b-c.d>"), 0,
	 "MAIL path=[a@b-c.d] mbox=[a@b-c.d]"},
	{"mail/domain-underscore", S("MAIL FROM:<a@b_c.d>"), 0, "501 5.1.7"},
	{"mail/domain-label-63", S("MAIL FROM:<a@" L63 ".com>"), 0,
	 "MAIL path=[a@" L63 ".com] mbox=[a@" L63 ".com]"},
	{"mail/domain-label-64", S("MAIL FROM:<a@" L63 "x.com>"), 0,
	 "501 5.1.7"},
	{"mail/local-64", S("MAIL FROM:<" X64 "@x>"), 0,
	 "MAIL path=[" X64 "@x] mbox=[" X64 "@x]"},
	{"mail/local-65", S("MAIL FROM:<" X64 "y@x>"), 0, "501 5.1.7"},
	{"mail/local-65-relaxed", S("MAIL FROM:<" X64 "y@x>"), LIM_RELAXED,
	 "MAIL path=[" X64 "y@x] mbox=[" X64 "y@x]"},
	{"mail/path-256", S("MAIL FROM:<" X64 "@" L63 "." L63 "." L61 ">"), 0,
	 "MAIL path=[" X64 "@" L63 "." L63 "." L61 "] mbox=[" X64 "@" L63
	 "." L63 "." L61 "]"},
	{"mail/path-257", S("MAIL FROM:<" X64 "@" L63 "." L63 "." L62 ">"), 0,
	 "501 5.1.7"},
	{"mail/domain-255", S("MAIL FROM:<a@" L63 "." L63 "." L63 "." L63 ">"),
	 LIM_RELAXED,
	 "MAIL path=[a@" L63 "." L63 "." L63 "." L63 "] mbox=[a@" L63 "." L63
	 "." L63 "." L63 "]"},
	{"mail/domain-256",
	 S("MAIL FROM:<a@" L63 "." L63 "." L63 "." L62 ".x>"), LIM_RELAXED,
	 "501 5.1.7"},
	{"mail/tiny-local", S("MAIL FROM:<abcdefghi@x>"), LIM_TINY,
	 "501 5.1.7"},
	{"mail/tiny-domain", S("MAIL FROM:<a@abcdefghijklmnopq>"), LIM_TINY,
	 "501 5.1.7"},
	{"mail/tiny-path",
	 S("MAIL FROM:<@abcdefghijklmno,@abcdefghijklmno:abcdefgh@x>"),
	 LIM_TINY, "501 5.1.7"},
	/* MAIL: source routes */
	{"mail/route", S("MAIL FROM:<@a.example,@b.example:user@host>"), 0,
	 "MAIL path=[@a.example,@b.example:user@host] mbox=[user@host] "
	 "route"},
	{"mail/route-one", S("MAIL FROM:<@a:u@h>"), 0,
	 "MAIL path=[@a:u@h] mbox=[u@h] route"},
	{"mail/route-no-colon", S("MAIL FROM:<@a,u@h>"), 0, "501 5.1.7"},
	{"mail/route-empty-domain", S("MAIL FROM:<@:u@h>"), 0, "501 5.1.7"},
	{"mail/route-twice", S("MAIL FROM:<@a:@b:u@h>"), 0, "501 5.1.7"},
	{"mail/route-literal", S("MAIL FROM:<@[1.2.3.4]:u@h>"), 0, "501 5.1.7"},
	{"mail/route-only", S("MAIL FROM:<@a:>"), 0, "501 5.1.7"},
	/* MAIL: quoted local parts */
	{"mail/quoted", S("MAIL FROM:<\"abc\"@x>"), 0,
	 "MAIL path=[\"abc\"@x] mbox=[abc@x] quoted"},
	{"mail/quoted-dotted", S("MAIL FROM:<\"a.b\"@x>"), 0,
	 "MAIL path=[\"a.b\"@x] mbox=[a.b@x] quoted"},
	{"mail/quoted-space", S("MAIL FROM:<\"john doe\"@x>"), 0,
	 "MAIL path=[\"john doe\"@x] mbox=[\"john doe\"@x] quoted"},
	{"mail/quoted-escape-needed", S("MAIL FROM:<\"a\\\"b\"@x>"), 0,
	 "MAIL path=[\"a\\\"b\"@x] mbox=[\"a\\\"b\"@x] quoted"},
	{"mail/quoted-escape-unneeded", S("MAIL FROM:<\"a\\bc\"@x>"), 0,
	 "MAIL path=[\"a\\bc\"@x] mbox=[abc@x] quoted"},
	{"mail/quoted-escape-some", S("MAIL FROM:<\"a\\ \\\\\"@x>"), 0,
	 "MAIL path=[\"a\\ \\\\\"@x] mbox=[\"a \\\\\"@x] quoted"},
	{"mail/quoted-double-dot", S("MAIL FROM:<\"a..b\"@x>"), 0,
	 "MAIL path=[\"a..b\"@x] mbox=[\"a..b\"@x] quoted"},
	{"mail/quoted-empty", S("MAIL FROM:<\"\"@x>"), 0,
	 "MAIL path=[\"\"@x] mbox=[\"\"@x] quoted"},
	{"mail/quoted-gt", S("MAIL FROM:<\"a>b\"@x> SIZE=5"), 0,
	 "MAIL path=[\"a>b\"@x] mbox=[\"a>b\"@x] quoted size=5"},
	{"mail/quoted-at", S("MAIL FROM:<\"a@b\"@x>"), 0,
	 "MAIL path=[\"a@b\"@x] mbox=[\"a@b\"@x] quoted"},
	{"mail/quoted-unclosed", S("MAIL FROM:<\"abc@x>"), 0, "501 5.1.7"},
	{"mail/quoted-escaped-close", S("MAIL FROM:<\"abc\\\"@x>"), 0,
	 "501 5.1.7"},
	{"mail/quoted-then-text", S("MAIL FROM:<\"a\"b@x>"), 0, "501 5.1.7"},
	{"mail/quoted-tab", S("MAIL FROM:<\"a\tb\"@x>"), 0, "501 5.1.7"},
	{"mail/quoted-nul", S("MAIL FROM:<\"a\0b\"@x>"), 0, "501 5.5.4"},
	{"mail/quoted-latin1", S("MAIL FROM:<\"j\xf6rg\"@x> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/quoted-pair-8bit", S("MAIL FROM:<\"a\\\xc3\xa9\"@x> SMTPUTF8"),
	 0, "501 5.1.7"},
	{"mail/quoted-65", S("MAIL FROM:<\"" X64 "\"@x>"), 0, "501 5.1.7"},
	/* MAIL: address literals */
	{"mail/literal-v4", S("MAIL FROM:<a@[192.0.2.1]>"), 0,
	 "MAIL path=[a@[192.0.2.1]] mbox=[a@[192.0.2.1]] literal"},
	{"mail/literal-v6", S("MAIL FROM:<a@[IPv6:2001:db8::1]>"), 0,
	 "MAIL path=[a@[IPv6:2001:db8::1]] mbox=[a@[IPv6:2001:db8::1]] "
	 "literal"},
	{"mail/literal-v6-lower-case", S("MAIL FROM:<a@[ipv6:::1]>"), 0,
	 "MAIL path=[a@[ipv6:::1]] mbox=[a@[ipv6:::1]] literal"},
	{"mail/literal-v4-in-v6", S("MAIL FROM:<a@[IPv6:::ffff:192.0.2.1]>"), 0,
	 "MAIL path=[a@[IPv6:::ffff:192.0.2.1]] "
	 "mbox=[a@[IPv6:::ffff:192.0.2.1]] literal"},
	{"mail/literal-bad-v4", S("MAIL FROM:<a@[300.1.1.1]>"), 0, "501 5.1.7"},
	{"mail/literal-short-v4", S("MAIL FROM:<a@[1.2.3]>"), 0, "501 5.1.7"},
	{"mail/literal-v6-without-tag", S("MAIL FROM:<a@[2001:db8::1]>"), 0,
	 "501 5.1.7"},
	{"mail/literal-bad-v6", S("MAIL FROM:<a@[IPv6:2001:db8:::1]>"), 0,
	 "501 5.1.7"},
	{"mail/literal-general", S("MAIL FROM:<a@[x400:c=gb]>"), 0,
	 "501 5.1.7"},
	{"mail/literal-blank", S("MAIL FROM:<a@[1.2.3.4 ]>"), 0, "501 5.1.7"},
	{"mail/literal-empty", S("MAIL FROM:<a@[]>"), 0, "501 5.1.7"},
	{"mail/literal-unclosed", S("MAIL FROM:<a@[1.2.3.4>"), 0, "501 5.1.7"},
	{"mail/literal-then-domain", S("MAIL FROM:<a@[1.2.3.4].x>"), 0,
	 "501 5.1.7"},
	/* MAIL: 8-bit addresses */
	{"mail/utf8-without-smtputf8", S("MAIL FROM:<j\xc3\xb6rg@example.com>"),
	 0, "553 5.6.7"},
	{"mail/utf8-with-smtputf8",
	 S("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8"), 0,
	 "MAIL path=[j\xc3\xb6rg@example.com] mbox=[j\xc3\xb6rg@example.com] "
	 "utf8 smtputf8"},
	{"mail/utf8-domain",
	 S("MAIL FROM:<a@b\xc3\xbc"
	   "cher.example> smtputf8"),
	 0,
	 "MAIL path=[a@b\xc3\xbc"
	 "cher.example] mbox=[a@b\xc3\xbc"
	 "cher.example] utf8 smtputf8"},
	{"mail/utf8-quoted", S("MAIL FROM:<\"j\xc3\xb6rg\"@x> SMTPUTF8"), 0,
	 "MAIL path=[\"j\xc3\xb6rg\"@x] mbox=[j\xc3\xb6rg@x] quoted utf8 "
	 "smtputf8"},
	{"mail/utf8-in-route", S("MAIL FROM:<@\xc3\xa9:a@b>"), 0, "553 5.6.7"},
	{"mail/latin1", S("MAIL FROM:<j\xf6rg@example.com> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/latin1-domain",
	 S("MAIL FROM:<a@b\xfc"
	   "cher.example> SMTPUTF8"),
	 0, "501 5.1.7"},
	{"mail/utf8-overlong", S("MAIL FROM:<\xc0\xaf@x> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/utf8-surrogate", S("MAIL FROM:<\xed\xa0\x80@x> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/utf8-truncated", S("MAIL FROM:<\xe2\x82@x> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/utf8-too-big", S("MAIL FROM:<\xf4\x90\x80\x80@x> SMTPUTF8"), 0,
	 "501 5.1.7"},
	{"mail/utf8-four-bytes", S("MAIL FROM:<\xf0\x9f\x93\xab@x> SMTPUTF8"),
	 0,
	 "MAIL path=[\xf0\x9f\x93\xab@x] mbox=[\xf0\x9f\x93\xab@x] utf8 "
	 "smtputf8"},
	/* MAIL: SIZE */
	{"mail/size", S("MAIL FROM:<a@b> SIZE=1000"), 0,
	 "MAIL path=[a@b] mbox=[a@b] size=1000"},
	{"mail/size-lower-case", S("MAIL FROM:<a@b> size=5"), 0,
	 "MAIL path=[a@b] mbox=[a@b] size=5"},
	{"mail/size-zero", S("MAIL FROM:<> SIZE=0"), 0,
	 "MAIL path=[] mbox=[] null size=0"},
	{"mail/size-at-limit", S("MAIL FROM:<a@b> SIZE=10240000"), 0,
	 "MAIL path=[a@b] mbox=[a@b] size=10240000"},
	{"mail/size-over-limit", S("MAIL FROM:<a@b> SIZE=10240001"), 0,
	 "552 5.3.4"},
	{"mail/size-uint64-max", S("MAIL FROM:<a@b> SIZE=18446744073709551615"),
	 0, "552 5.3.4"},
	{"mail/size-uint64-max-relaxed",
	 S("MAIL FROM:<a@b> SIZE=18446744073709551615"), LIM_RELAXED,
	 "MAIL path=[a@b] mbox=[a@b] size=18446744073709551615"},
	{"mail/size-overflow", S("MAIL FROM:<a@b> SIZE=18446744073709551616"),
	 LIM_RELAXED, "552 5.3.4"},
	{"mail/size-huge",
	 S("MAIL FROM:<a@b> SIZE=999999999999999999999999999"), 0, "552 5.3.4"},
	{"mail/size-empty", S("MAIL FROM:<a@b> SIZE="), 0, "501 5.5.4"},
	{"mail/size-no-value", S("MAIL FROM:<a@b> SIZE"), 0, "501 5.5.4"},
	{"mail/size-not-digits", S("MAIL FROM:<a@b> SIZE=12k"), 0, "501 5.5.4"},
	{"mail/size-negative", S("MAIL FROM:<a@b> SIZE=-1"), 0, "501 5.5.4"},
	{"mail/size-twice", S("MAIL FROM:<a@b> SIZE=1 SIZE=1"), 0, "501 5.5.4"},
	{"mail/size-twice-case", S("MAIL FROM:<a@b> SIZE=1 size=2"), 0,
	 "501 5.5.4"},
	/* MAIL: BODY, SMTPUTF8, AUTH */
	{"mail/body-8bitmime", S("MAIL FROM:<a@b> BODY=8BITMIME"), 0,
	 "MAIL path=[a@b] mbox=[a@b] body=8BITMIME"},
	{"mail/body-7bit-lower-case", S("MAIL FROM:<a@b> body=7bit"), 0,
	 "MAIL path=[a@b] mbox=[a@b] body=7BIT"},
	{"mail/body-binarymime", S("MAIL FROM:<a@b> BODY=BINARYMIME"), 0,
	 "555 5.5.4"},
	{"mail/body-unknown", S("MAIL FROM:<a@b> BODY=9BIT"), 0, "501 5.5.4"},
	{"mail/body-no-value", S("MAIL FROM:<a@b> BODY"), 0, "501 5.5.4"},
	{"mail/body-twice", S("MAIL FROM:<a@b> BODY=7BIT BODY=8BITMIME"), 0,
	 "501 5.5.4"},
	{"mail/smtputf8-value", S("MAIL FROM:<a@b> SMTPUTF8=yes"), 0,
	 "501 5.5.4"},
	{"mail/smtputf8-twice", S("MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8"), 0,
	 "501 5.5.4"},
	{"mail/auth-null", S("MAIL FROM:<a@b> AUTH=<>"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=<>"},
	{"mail/auth-plain", S("MAIL FROM:<a@b> AUTH=joe@example.com"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[joe@example.com]"},
	{"mail/auth-xtext", S("MAIL FROM:<a@b> AUTH=e+3Dmc2@example.com"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[e=mc2@example.com]"},
	{"mail/auth-xtext-plus", S("MAIL FROM:<a@b> AUTH=a+2Bb@x"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[a+b@x]"},
	{"mail/auth-xtext-lower-hex", S("MAIL FROM:<a@b> AUTH=a+2bb@x"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[a+b@x]"},
	{"mail/auth-xtext-utf8", S("MAIL FROM:<a@b> AUTH=+C3+B6@x"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[\xc3\xb6@x]"},
	{"mail/auth-xtext-space", S("MAIL FROM:<a@b> AUTH=\"a+20b\"@x"), 0,
	 "MAIL path=[a@b] mbox=[a@b] auth=[\"a b\"@x]"},
	{"mail/auth-xtext-cut", S("MAIL FROM:<a@b> AUTH=a+2"), 0, "501 5.5.4"},
	{"mail/auth-xtext-not-hex", S("MAIL FROM:<a@b> AUTH=a+ZZ"), 0,
	 "501 5.5.4"},
	{"mail/auth-xtext-nul", S("MAIL FROM:<a@b> AUTH=a+00b"), 0,
	 "501 5.5.4"},
	{"mail/auth-xtext-lf", S("MAIL FROM:<a@b> AUTH=a+0Ab"), 0, "501 5.5.4"},
	{"mail/auth-xtext-tab", S("MAIL FROM:<a@b> AUTH=a+09b"), 0,
	 "501 5.5.4"},
	{"mail/auth-xtext-latin1", S("MAIL FROM:<a@b> AUTH=+F6@x"), 0,
	 "501 5.5.4"},
	{"mail/auth-no-value", S("MAIL FROM:<a@b> AUTH"), 0, "501 5.5.4"},
	{"mail/auth-empty", S("MAIL FROM:<a@b> AUTH="), 0, "501 5.5.4"},
	{"mail/auth-too-long",
	 S("MAIL FROM:<a@b> AUTH=abcdefghijklmnopqrstuvwxyz0123456789"),
	 LIM_TINY, "501 5.5.4"},
	{"mail/all-params",
	 S("MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME SMTPUTF8 AUTH=<>"), 0,
	 "MAIL path=[a@b] mbox=[a@b] size=100 body=8BITMIME smtputf8 "
	 "auth=<>"},
	{"mail/params-sloppy", S("mail from: <a@b>   size=100\t BODY=7BIT  "),
	 0, "MAIL path=[a@b] mbox=[a@b] size=100 body=7BIT"},
	{"mail/too-many-params", S("MAIL FROM:<a@b> SIZE=1 BODY=7BIT"),
	 LIM_TINY, "501 5.5.4"},
	/* MAIL: unknown and malformed parameters */
	{"mail/dsn-ret", S("MAIL FROM:<a@b> RET=HDRS"), 0, "555 5.5.4"},
	{"mail/dsn-envid", S("MAIL FROM:<a@b> ENVID=QQ314159"), 0, "555 5.5.4"},
	{"mail/unknown-after-known", S("MAIL FROM:<a@b> BODY=8BITMIME FOO"), 0,
	 "555 5.5.4"},
	{"mail/unknown-x", S("MAIL FROM:<a@b> X-FOO=bar"), 0, "555 5.5.4"},
	{"mail/unknown-utf8-value", S("MAIL FROM:<a@b> X=\xc3\xa9"), 0,
	 "555 5.5.4"},
	{"mail/param-bad-utf8-value", S("MAIL FROM:<a@b> X=\xff"), 0,
	 "501 5.5.4"},
	{"mail/param-hyphen-first", S("MAIL FROM:<a@b> -FOO"), 0, "501 5.5.4"},
	{"mail/param-no-keyword", S("MAIL FROM:<a@b> =5"), 0, "501 5.5.4"},
	{"mail/param-two-equals", S("MAIL FROM:<a@b> SIZE==5"), 0, "501 5.5.4"},
	{"mail/param-underscore", S("MAIL FROM:<a@b> X_Y=1"), 0, "501 5.5.4"},
	{"mail/param-nul", S("MAIL FROM:<a@b> SIZE=1\0"), 0, "501 5.5.4"},
	/* RCPT */
	{"rcpt/simple", S("RCPT TO:<bob@example.com>"), 0,
	 "RCPT path=[bob@example.com] mbox=[bob@example.com]"},
	{"rcpt/lower-case", S("rcpt to:<b@x>"), 0,
	 "RCPT path=[b@x] mbox=[b@x]"},
	{"rcpt/space-after-colon", S("RCPT TO: <b@x>"), 0,
	 "RCPT path=[b@x] mbox=[b@x]"},
	{"rcpt/postmaster", S("RCPT TO:<Postmaster>"), 0,
	 "RCPT path=[Postmaster] mbox=[Postmaster] postmaster"},
	{"rcpt/postmaster-lower-case", S("RCPT TO:<postmaster>"), 0,
	 "RCPT path=[postmaster] mbox=[postmaster] postmaster"},
	{"rcpt/postmaster-upper-case", S("RCPT TO:<POSTMASTER>"), 0,
	 "RCPT path=[POSTMASTER] mbox=[POSTMASTER] postmaster"},
	{"rcpt/postmaster-with-domain", S("RCPT TO:<postmaster@example.com>"),
	 0, "RCPT path=[postmaster@example.com] mbox=[postmaster@example.com]"},
	{"rcpt/postmaster-longer", S("RCPT TO:<postmasters>"), 0, "501 5.1.3"},
	{"rcpt/postmaster-route", S("RCPT TO:<@a:Postmaster>"), 0, "501 5.1.3"},
	{"rcpt/postmaster-tiny", S("RCPT TO:<Postmaster>"), LIM_TINY,
	 "501 5.1.3"},
	{"rcpt/null", S("RCPT TO:<>"), 0, "501 5.1.3"},
	{"rcpt/no-domain", S("RCPT TO:<bob>"), 0, "501 5.1.3"},
	{"rcpt/no-brackets", S("RCPT TO:bob@x"), 0, "501 5.5.4"},
	{"rcpt/from-instead", S("RCPT FROM:<b@x>"), 0, "501 5.5.4"},
	{"rcpt/bare", S("RCPT"), 0, "501 5.5.4"},
	{"rcpt/route", S("RCPT TO:<@relay.example:b@x>"), 0,
	 "RCPT path=[@relay.example:b@x] mbox=[b@x] route"},
	{"rcpt/quoted", S("RCPT TO:<\"b\"@x>"), 0,
	 "RCPT path=[\"b\"@x] mbox=[b@x] quoted"},
	{"rcpt/literal", S("RCPT TO:<b@[IPv6:::1]>"), 0,
	 "RCPT path=[b@[IPv6:::1]] mbox=[b@[IPv6:::1]] literal"},
	{"rcpt/utf8", S("RCPT TO:<j\xc3\xb6rg@x>"), 0,
	 "RCPT path=[j\xc3\xb6rg@x] mbox=[j\xc3\xb6rg@x] utf8"},
	{"rcpt/latin1", S("RCPT TO:<j\xf6rg@x>"), 0, "501 5.1.3"},
	{"rcpt/local-65", S("RCPT TO:<" X64 "y@x>"), 0, "501 5.1.3"},
	{"rcpt/local-128-relaxed", S("RCPT TO:<" X64 X64 "@x>"), LIM_RELAXED,
	 "RCPT path=[" X64 X64 "@x] mbox=[" X64 X64 "@x]"},
	{"rcpt/notify", S("RCPT TO:<b@x> NOTIFY=NEVER"), 0, "555 5.5.4"},
	{"rcpt/orcpt", S("RCPT TO:<b@x> ORCPT=rfc822;b@x"), 0, "555 5.5.4"},
	{"rcpt/size", S("RCPT TO:<b@x> SIZE=5"), 0, "555 5.5.4"},
	{"rcpt/bad-param", S("RCPT TO:<b@x> =x"), 0, "501 5.5.4"},
	{"rcpt/junk-after-path", S("RCPT TO:<b@x>,<c@x>"), 0, "501 5.1.3"},
	{"rcpt/nul", S("RCPT TO:<b\0@x>"), 0, "501 5.5.4"},
};

static const char *const verb_names[] = {
	[SMTP_VERB_NONE] = "NONE", [SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_BDAT] = "BDAT", [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_EHLO] = "EHLO", [SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELO] = "HELO", [SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_MAIL] = "MAIL", [SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT", [SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_RSET] = "RSET", [SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_VRFY] = "VRFY",
};

static void
limits_for(enum lim_kind kind, struct smtp_limits *lim)
{
	smtp_parser_limits_init(lim, kind == LIM_AUTH);
	if (kind == LIM_TINY) {
		*lim = (struct smtp_limits){
			.local_part_max = 8,
			.domain_max = 16,
			.path_max = 32,
			.params_max = 1,
			.arg_max = 8,
			.auth_response_max = 8,
			.message_size_max = 1000,
			.bdat_chunk_max = 100,
		};
	} else if (kind == LIM_RELAXED) {
		lim->local_part_max = 200;
		lim->path_max = 100000; /* clamped to SMTP_PATH_CAP */
		lim->message_size_max = UINT64_MAX;
	}
}

static void
render_str(GString *s, const char *name, struct mp_str v)
{
	if (v.p == NULL)
		return;
	g_string_append_printf(s, " %s=[", name);
	g_string_append_len(s, v.p, (gssize)v.len);
	g_string_append_c(s, ']');
}

static void
render_path(GString *s, const struct smtp_path *p)
{
	render_str(s, "path", p->raw);
	g_string_append_printf(s, " mbox=[%s]", p->mailbox);
	if (p->null)
		g_string_append(s, " null");
	if (p->postmaster)
		g_string_append(s, " postmaster");
	if (p->quoted)
		g_string_append(s, " quoted");
	if (p->literal)
		g_string_append(s, " literal");
	if (p->route)
		g_string_append(s, " route");
	if (p->utf8)
		g_string_append(s, " utf8");
}

static void
render_mail(GString *s, const struct smtp_mail_params *m)
{
	if (m->has_size)
		g_string_append_printf(s, " size=%" G_GUINT64_FORMAT, m->size);
	if (m->body != SMTP_BODY_NONE)
		g_string_append(s, m->body == SMTP_BODY_7BIT
					   ? " body=7BIT"
					   : " body=8BITMIME");
	if (m->smtputf8)
		g_string_append(s, " smtputf8");
	if (m->auth_null)
		g_string_append(s, " auth=<>");
	else if (m->has_auth)
		g_string_append_printf(s, " auth=[%s]", m->auth);
}

static void
render_bdat(GString *s, const struct smtp_bdat *b)
{
	if (b->size_known)
		g_string_append_printf(s, " size=%" G_GUINT64_FORMAT, b->size);
	if (b->last)
		g_string_append(s, " last");
}

static char *
render(enum mp_status st, const struct smtp_cmd *cmd)
{
	GString *s = g_string_new(NULL);

	if (st != MP_OK) {
		g_string_append_printf(s, "%d %s", cmd->error.code,
				       cmd->error.enhanced);
		if (cmd->verb == SMTP_VERB_BDAT && cmd->bdat.size_known)
			render_bdat(s, &cmd->bdat);
		return g_string_free(s, FALSE);
	}
	g_string_append(s, verb_names[cmd->verb]);
	render_str(s, "arg", cmd->arg);
	render_str(s, "ir", cmd->auth_response);
	if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT)
		render_path(s, &cmd->path);
	if (cmd->verb == SMTP_VERB_MAIL)
		render_mail(s, &cmd->mail);
	if (cmd->verb == SMTP_VERB_BDAT)
		render_bdat(s, &cmd->bdat);
	return g_string_free(s, FALSE);
}

static bool
view_inside(struct mp_str v, const char *line, size_t len)
{
	return v.p == NULL || (v.p >= line && v.len <= len &&
			       v.p - line <= (ptrdiff_t)(len - v.len));
}

/* The error is one the session can send as it is. */
static void
check_error(const struct smtp_cmd *cmd)
{
	struct mp_buf b = {0};
	size_t n = strlen(cmd->error.text);

	g_assert_cmpuint(n, >, 0);
	for (size_t i = 0; i < n; i++) {
		g_assert_cmpint(cmd->error.text[i], >=, 32);
		g_assert_cmpint(cmd->error.text[i], <=, 126);
	}
	g_assert_cmpuint(strlen(cmd->error.enhanced), ==, 5);
	g_assert_cmpint(cmd->error.enhanced[0], ==, '5');
	smtp_reply_format(&b, cmd->error.code, cmd->error.enhanced,
			  cmd->error.text);
	g_assert_true(strchr(b.data, '\r') == b.data + b.len - 2);
	g_assert_true(strchr(b.data, '\n') == b.data + b.len - 1);
	mp_buf_free(&b);
}

/* A path's parts agree with each other, and its canonical mailbox is
 * canonical: parsing it again changes nothing. */
static void
check_path(const struct smtp_path *p, const char *line, size_t len)
{
	struct smtp_limits lim;
	struct smtp_path again;

	g_assert_true(view_inside(p->raw, line, len));
	g_assert_true(view_inside(p->local, line, len));
	g_assert_true(view_inside(p->domain, line, len));
	g_assert_cmpuint(strlen(p->mailbox), ==, p->mailbox_len);
	g_assert_cmpuint(p->mailbox_len, <=, p->raw.len);
	g_assert_cmpuint(p->mailbox_local_len, <=, p->mailbox_len);
	if (p->null || p->postmaster)
		return;
	g_assert_cmpint(p->mailbox[p->mailbox_local_len], ==, '@');
	g_assert_cmpmem(p->mailbox + p->mailbox_local_len + 1,
			p->mailbox_len - p->mailbox_local_len - 1, p->domain.p,
			p->domain.len);
	if (!p->quoted)
		g_assert_cmpmem(p->mailbox, p->mailbox_local_len, p->local.p,
				p->local.len);
	limits_for(LIM_RELAXED, &lim);
	g_assert_cmpint(smtp_address_parse_mailbox(p->mailbox, p->mailbox_len,
						   &lim, &again),
			==, SMTP_ADDR_OK);
	g_assert_cmpstr(again.mailbox, ==, p->mailbox);
}

static void
test_case(gconstpointer data)
{
	const struct pcase *c = data;
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *line = g_memdup2(c->line, c->len);
	struct smtp_limits lim;
	struct smtp_cmd *cmd = g_new0(struct smtp_cmd, 1);
	enum mp_status st;
	char *got;

	limits_for(c->lim, &lim);
	st = smtp_parser_parse(line, c->len, c->lim == LIM_NULL ? NULL : &lim,
			       cmd);
	got = render(st, cmd);
	g_assert_cmpstr(got, ==, c->expect);
	g_assert_true(st == MP_OK || st == MP_DECLINED);
	if (st == MP_DECLINED)
		check_error(cmd);
	g_assert_true(view_inside(cmd->arg, line, c->len));
	g_assert_true(view_inside(cmd->auth_response, line, c->len));
	if (st == MP_OK &&
	    (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT))
		check_path(&cmd->path, line, c->len);
	g_free(got);
	g_free(cmd);
	g_free(line);
}

static void
test_null_line(void)
{
	struct smtp_cmd cmd;

	g_assert_cmpint(smtp_parser_parse(NULL, 0, NULL, &cmd), ==,
			MP_DECLINED);
	g_assert_cmpint(cmd.error.code, ==, 500);
	g_assert_cmpint(cmd.verb, ==, SMTP_VERB_NONE);
}

/* Fields of one command never leak into the next. */
static void
test_reused_cmd(void)
{
	struct smtp_cmd cmd;

	g_assert_cmpint(smtp_parser_parse(S("MAIL FROM:<a@b> SIZE=5 SMTPUTF8"),
					  NULL, &cmd),
			==, MP_OK);
	g_assert_cmpint(smtp_parser_parse(S("RCPT TO:<c@d>"), NULL, &cmd), ==,
			MP_OK);
	g_assert_false(cmd.mail.has_size);
	g_assert_false(cmd.mail.smtputf8);
	g_assert_cmpstr(cmd.path.mailbox, ==, "c@d");
	g_assert_cmpint(smtp_parser_parse(S("BOGUS"), NULL, &cmd), ==,
			MP_DECLINED);
	g_assert_cmpint(cmd.verb, ==, SMTP_VERB_NONE);
	g_assert_cmpuint(cmd.path.mailbox_len, ==, 0);
}

/* The views and the canonical forms of a path. */
static void
test_path_views(void)
{
	static const char line[] = "MAIL FROM:<@r1,@r2:\"a\\b\"@[IPv6:::1]>";
	struct smtp_cmd cmd;

	g_assert_cmpint(smtp_parser_parse(line, sizeof(line) - 1, NULL, &cmd),
			==, MP_OK);
	g_assert_cmpmem(cmd.path.local.p, cmd.path.local.len, "\"a\\b\"", 5);
	g_assert_cmpmem(cmd.path.domain.p, cmd.path.domain.len, "[IPv6:::1]",
			10);
	g_assert_cmpstr(cmd.path.mailbox, ==, "ab@[IPv6:::1]");
	g_assert_cmpuint(cmd.path.mailbox_local_len, ==, 2);
	g_assert_true(cmd.path.route && cmd.path.quoted && cmd.path.literal);
}

/* A command may be copied: nothing in it points into itself. */
static void
test_copy(void)
{
	struct smtp_cmd *a = g_new0(struct smtp_cmd, 1), *b;

	g_assert_cmpint(
		smtp_parser_parse(S("MAIL FROM:<\"x\"@y> AUTH=a+2Bb"), NULL, a),
		==, MP_OK);
	b = g_memdup2(a, sizeof(*a));
	memset(a, 0xaa, sizeof(*a));
	g_assert_cmpstr(b->path.mailbox, ==, "x@y");
	g_assert_cmpstr(b->mail.auth, ==, "a+b");
	g_assert_cmpmem(b->mail.auth_raw.p, b->mail.auth_raw.len, "a+2Bb", 5);
	g_free(a);
	g_free(b);
}

static void
test_limits(void)
{
	struct smtp_limits pre, post, zero = {0}, r;

	smtp_parser_limits_init(&pre, false);
	smtp_parser_limits_init(&post, true);
	g_assert_cmpuint(pre.local_part_max, ==, 64);
	g_assert_cmpuint(pre.domain_max, ==, 255);
	g_assert_cmpuint(pre.path_max, ==, 256);
	g_assert_cmpuint(pre.params_max, <, post.params_max);
	g_assert_cmpuint(pre.arg_max, <, post.arg_max);
	g_assert_cmpuint(pre.bdat_chunk_max, ==, pre.message_size_max);
	smtp_parser_limits_resolve(&zero, &r);
	g_assert_cmpmem(&r, sizeof(r), &pre, sizeof(pre));
	zero.path_max = SMTP_PATH_CAP + 1;
	zero.message_size_max = 5;
	smtp_parser_limits_resolve(&zero, &r);
	g_assert_cmpuint(r.path_max, ==, SMTP_PATH_CAP);
	g_assert_cmpuint(r.bdat_chunk_max, ==, 5);
}

/* The longest path the buffers hold, and one octet more. */
static void
test_path_cap(void)
{
	struct smtp_limits lim = {.local_part_max = SMTP_PATH_CAP,
				  .domain_max = SMTP_PATH_CAP,
				  .path_max = SMTP_PATH_CAP};
	GString *line = g_string_new("RCPT TO:<\"");
	struct smtp_cmd *cmd = g_new0(struct smtp_cmd, 1);
	/* <"..."@x>: 6 octets besides the quoted text. */
	size_t fill = SMTP_PATH_CAP + 1 - 6;

	for (size_t i = 0; i < fill; i++)
		g_string_append_c(line, ' ');
	g_string_append(line, "\"@x>");
	g_assert_cmpint(smtp_parser_parse(line->str, line->len, &lim, cmd), ==,
			MP_DECLINED);
	g_assert_cmpstr(cmd->error.enhanced, ==, "5.1.3");
	g_string_erase(line, 10, 1);
	g_assert_cmpint(smtp_parser_parse(line->str, line->len, &lim, cmd), ==,
			MP_OK);
	g_assert_cmpuint(cmd->path.raw.len, ==, SMTP_PATH_CAP - 2);
	g_assert_cmpuint(cmd->path.mailbox_len, ==, SMTP_PATH_CAP - 2);
	g_string_free(line, TRUE);
	g_free(cmd);
}

static void
test_mailbox(void)
{
	struct smtp_path p;

	g_assert_cmpint(smtp_address_parse_mailbox(S("\"a\"@b"), NULL, &p), ==,
			SMTP_ADDR_OK);
	g_assert_cmpstr(p.mailbox, ==, "a@b");
	g_assert_cmpint(smtp_address_parse_mailbox(S("<a@b>"), NULL, &p), ==,
			SMTP_ADDR_SYNTAX);
	g_assert_cmpint(smtp_address_parse_mailbox(S("a@b "), NULL, &p), ==,
			SMTP_ADDR_SYNTAX);
	g_assert_cmpint(smtp_address_parse_mailbox(S(X64 "y@b"), NULL, &p), ==,
			SMTP_ADDR_TOO_LONG);
	g_assert_cmpint(smtp_address_parse_mailbox(S("@r:a@b"), NULL, &p), ==,
			SMTP_ADDR_SYNTAX);
	/* The parser refuses control characters before it gets here, but
	 * a NUL must not end the literal that inet_pton() sees. */
	g_assert_cmpint(
		smtp_address_parse_mailbox(S("a@[1.2.3.4\0]"), NULL, &p), ==,
		SMTP_ADDR_SYNTAX);
	/* Local part and domain fit, the whole does not. */
	g_assert_cmpint(smtp_address_parse_mailbox(
				S(X64 "@" L63 "." L63 "." L63), NULL, &p),
			==, SMTP_ADDR_TOO_LONG);
}

static void
test_path_direct(void)
{
	struct smtp_path p;
	size_t used = 0;

	g_assert_cmpint(smtp_address_parse_path(S("a@b"), 0, NULL, &p, &used),
			==, SMTP_ADDR_SYNTAX);
	g_assert_cmpint(smtp_address_parse_path("", 0, 0, NULL, &p, &used), ==,
			SMTP_ADDR_SYNTAX);
	g_assert_cmpint(
		smtp_address_parse_path(S("<a@b> SIZE=1"), 0, NULL, &p, &used),
		==, SMTP_ADDR_OK);
	g_assert_cmpuint(used, ==, 5);
	g_assert_cmpint(smtp_address_parse_path(S("<>"), 0, NULL, &p, &used),
			==, SMTP_ADDR_SYNTAX);
	g_assert_cmpint(smtp_address_parse_path(S("<>"), SMTP_PATH_ALLOW_NULL,
						NULL, &p, &used),
			==, SMTP_ADDR_OK);
	g_assert_true(p.null);
}

static void
test_helo_direct(void)
{
	g_assert_false(smtp_address_helo_valid("", 0));
	g_assert_true(smtp_address_helo_valid(S("a-b_c.d")));
	g_assert_false(smtp_address_helo_valid(S("[")));
	g_assert_false(smtp_address_helo_valid(S("[a b]")));
}

static void
test_xtext_buf(void)
{
	char out[4];
	size_t n = 99;

	g_assert_false(smtp_xtext_decode_buf("", 0, out, 0, &n));
	g_assert_true(smtp_xtext_decode_buf("", 0, out, 1, &n));
	g_assert_cmpuint(n, ==, 0);
	g_assert_true(smtp_xtext_decode_buf(S("a+2Bb"), out, 4, &n));
	g_assert_cmpstr(out, ==, "a+b");
	g_assert_false(smtp_xtext_decode_buf(S("abcd"), out, 4, &n));
}

static void
test_need_smtputf8(void)
{
	struct smtp_cmd cmd;

	g_assert_cmpint(
		smtp_parser_parse(S("RCPT TO:<\xc3\xa9@x>"), NULL, &cmd), ==,
		MP_OK);
	g_assert_true(cmd.path.utf8);
	smtp_error_set_need_smtputf8(&cmd.error);
	g_assert_cmpint(cmd.error.code, ==, 553);
	g_assert_cmpstr(cmd.error.enhanced, ==, "5.6.7");
}

static void
assert_reply(int code, const char *enh, const char *text, const char *want)
{
	struct mp_buf b = {0};

	smtp_reply_format(&b, code, enh, text);
	g_assert_cmpstr(b.data, ==, want);
	mp_buf_free(&b);
}

static void
test_reply(void)
{
	assert_reply(250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n");
	assert_reply(220, NULL, "mx.example ESMTP", "220 mx.example ESMTP\r\n");
	assert_reply(250, "2.0.0", "", "250 2.0.0\r\n");
	assert_reply(250, NULL, NULL, "250\r\n");
	assert_reply(554, "5.7.1", "no\r\nRCPT TO:<x>\x7f",
		     "554 5.7.1 no  RCPT TO:<x> \r\n");
}

static void
test_reply_long(void)
{
	struct mp_buf b = {0};
	GString *text = g_string_new(NULL);

	for (int i = 0; i < 300; i++)
		g_string_append(text, "\xc3\xa9");
	smtp_reply_format(&b, 550, "5.7.1", text->str);
	g_assert_cmpuint(b.len, <=, 512);
	g_assert_cmpuint(b.len, >=, 510);
	g_assert_true(g_str_has_suffix(b.data, "\r\n"));
	g_assert_true(g_utf8_validate(b.data, (gssize)b.len, NULL));
	mp_buf_reset(&b);
	smtp_reply_format(&b, 550, NULL, text->str + 1);
	g_assert_cmpuint(b.len, <=, 512);
	mp_buf_free(&b);
	g_string_free(text, TRUE);
}

static void
test_reply_lines(void)
{
	static const char *const ehlo[] = {"mx.example", "PIPELINING",
					   "SIZE 10240000"};
	static const char *const one[] = {"Ok"};
	struct mp_buf b = {0};

	mp_buf_puts(&b, "x");
	smtp_reply_format_lines(&b, 250, NULL, ehlo, 3);
	g_assert_cmpstr(b.data, ==,
			"x250-mx.example\r\n250-PIPELINING\r\n"
			"250 SIZE 10240000\r\n");
	mp_buf_reset(&b);
	smtp_reply_format_lines(&b, 250, "2.0.0", one, 1);
	g_assert_cmpstr(b.data, ==, "250 2.0.0 Ok\r\n");
	mp_buf_reset(&b);
	smtp_reply_format_lines(&b, 451, "4.3.0", ehlo, 2);
	g_assert_cmpstr(b.data, ==,
			"451-4.3.0 mx.example\r\n451 4.3.0 PIPELINING\r\n");
	mp_buf_free(&b);
}

static void
assert_xtext(const char *in, const char *want)
{
	struct mp_buf b = {0};

	mp_buf_puts(&b, "#");
	if (want == NULL) {
		g_assert_false(smtp_xtext_decode(in, strlen(in), &b));
		g_assert_cmpstr(b.data, ==, "#");
	} else {
		g_assert_true(smtp_xtext_decode(in, strlen(in), &b));
		g_assert_cmpstr(b.data + 1, ==, want);
	}
	mp_buf_free(&b);
}

static void
test_xtext_decode(void)
{
	assert_xtext("", "");
	assert_xtext("abc", "abc");
	assert_xtext("e+3Dmc2", "e=mc2");
	assert_xtext("+2B+2b", "++");
	assert_xtext("a+", NULL);
	assert_xtext("a+4", NULL);
	assert_xtext("a+4G", NULL);
	assert_xtext("a=b", NULL);
	assert_xtext("a b", NULL);
	assert_xtext("\xc3\xa9", NULL);
}

static void
test_xtext_roundtrip(void)
{
	struct mp_buf enc = {0}, dec = {0};
	char all[256];

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	smtp_xtext_encode(S("a+b=c d"), &enc);
	g_assert_cmpstr(enc.data, ==, "a+2Bb+3Dc+20d");
	mp_buf_reset(&enc);
	smtp_xtext_encode(all, sizeof(all), &enc);
	g_assert_true(smtp_xtext_decode(enc.data, enc.len, &dec));
	g_assert_cmpmem(dec.data, dec.len, all, sizeof(all));
	for (size_t i = 0; i < enc.len; i++)
		g_assert_true(enc.data[i] > 32 && enc.data[i] < 127 &&
			      enc.data[i] != '=');
	mp_buf_free(&enc);
	mp_buf_free(&dec);
}

static void
test_utf8_seq(void)
{
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xc3\xa9")), ==, 2);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xe2\x82\xac")), ==, 3);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xf0\x9f\x93\xab")), ==, 4);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xf4\x8f\xbf\xbf")), ==, 4);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xc1\xbf")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xe0\x9f\xbf")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xed\xbf\xbf")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xf0\x8f\xbf\xbf")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xf4\x90\x80\x80")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xf5\x80\x80\x80")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\xc3")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("\x80")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq(S("a")), ==, 0);
	g_assert_cmpuint(smtp_address_utf8_seq("", 0), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *path = g_strconcat("/smtp/parser/", cases[i].name, NULL);

		g_test_add_data_func(path, &cases[i], test_case);
		g_free(path);
	}
	g_test_add_func("/smtp/parser/null-line", test_null_line);
	g_test_add_func("/smtp/parser/reused-cmd", test_reused_cmd);
	g_test_add_func("/smtp/parser/path-views", test_path_views);
	g_test_add_func("/smtp/parser/copy", test_copy);
	g_test_add_func("/smtp/parser/limits", test_limits);
	g_test_add_func("/smtp/parser/path-cap", test_path_cap);
	g_test_add_func("/smtp/parser/need-smtputf8", test_need_smtputf8);
	g_test_add_func("/smtp/address/mailbox", test_mailbox);
	g_test_add_func("/smtp/address/utf8-seq", test_utf8_seq);
	g_test_add_func("/smtp/address/path", test_path_direct);
	g_test_add_func("/smtp/address/helo", test_helo_direct);
	g_test_add_func("/smtp/xtext/fixed-buffer", test_xtext_buf);
	g_test_add_func("/smtp/reply/one-line", test_reply);
	g_test_add_func("/smtp/reply/too-long", test_reply_long);
	g_test_add_func("/smtp/reply/multi-line", test_reply_lines);
	g_test_add_func("/smtp/xtext/decode", test_xtext_decode);
	g_test_add_func("/smtp/xtext/roundtrip", test_xtext_roundtrip);
	return g_test_run();
}
