/*
 * ledger.h - the work ledger of consensus runs: which items are claimed,
 * by whom, and which are done, kept in etcd (v3, through its JSON gateway).
 *
 * URL: etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for TLS, with a CA
 * file and, for client-certificate auth, a certificate and key).  Under
 * PREFIX:
 *   claim/KEY    the owner id ("host:pid:random"), under this process's lease
 *   done/KEY     the owner id that finished KEY; never removed
 *   plan-leader  the owner leading the planning step (under its lease)
 *   plan         the plan, published by the leader
 *
 * A claim is one transaction: create_revision(claim/KEY) == 0 and
 * create_revision(done/KEY) == 0, then put claim/KEY = me with the lease.
 * Done is fenced by the claim: value(claim/KEY) == me, then put done/KEY
 * and delete claim/KEY; so a process whose lease ran out (its claims gone,
 * perhaps taken over) can never mark an item done.  The lease is kept
 * alive every TTL/3 by a thread; a process that dies loses its claims one
 * TTL later.  Each request goes to one member with a short timeout; on a
 * connection error, a timeout or a 5xx it moves to the next member and
 * tries again: a transaction that timed out may have been committed, so
 * it is repeated, never taken as failed (a claim found held by me is
 * mine).  After the deadline without an answer the call fails with
 * MEM_ETEMP, naming the ledger.
 */
#ifndef MEM_LEDGER_H
#define MEM_LEDGER_H

#include "memories.h"

/* What a claim found. */
enum mem_ledger_state {
	MEM_LEDGER_WON = 1,	/* claimed by this process: do the work, then mark it done */
	MEM_LEDGER_DONE,	/* done already (by anyone) */
	MEM_LEDGER_TAKEN,	/* claimed by another live owner */
	MEM_LEDGER_FREE		/* (mem_ledger_state only) neither claimed nor done */
};

struct mem_ledger_opts {
	const char *url;	/* etcd[s]://h1:p1,h2:p2/prefix */
	const char *cacert;	/* CA file for etcds:// (NULL: the system's) */
	const char *cert, *key;	/* client certificate and key, or NULL */
	int ttl;		/* lease seconds (0: 10) */
	double deadline;	/* seconds a call may keep trying the members (0: 60) */
	double timeout;		/* seconds per request (0: 2) */
};

struct mem_ledger;

/* Checks the form of an etcd[s]:// URL; -1 (MEM_EUSAGE) saying what is wrong. */
int mem_ledger_parse(const char *url, struct mem_err *err);

/*
 * Connects: grants the lease and starts its keep-alive thread.  Returns a
 * new ledger (free it with mem_ledger_close()) or NULL with err (MEM_EUSAGE
 * for a bad URL or certificate file, MEM_ETEMP when no member answered).
 */
struct mem_ledger *mem_ledger_open(const struct mem_ledger_opts *o, struct mem_err *err);
/* Revokes the lease (the claims held go at once), stops the thread, frees l. */
void mem_ledger_close(struct mem_ledger *l);

/* This process's owner id. */
const char *mem_ledger_owner(const struct mem_ledger *l);
/* The URL as given (for messages). */
const char *mem_ledger_url(const struct mem_ledger *l);

/*
 * Claims key: MEM_LEDGER_WON, _DONE or _TAKEN; -1 with err.  Safe to call
 * from several threads.  While the lease may be lost (no keep-alive answered
 * for a TTL) no claim is made: the call waits for the lease, or a new one.
 */
int mem_ledger_claim(struct mem_ledger *l, const char *key, struct mem_err *err);
/*
 * Marks key done, fenced by this process's claim.  Returns 0, or -1 with
 * err: MEM_EITEM when the claim is not ours any more (the lease ran out).
 */
int mem_ledger_done(struct mem_ledger *l, const char *key, struct mem_err *err);
/*
 * The state of key: MEM_LEDGER_DONE, _TAKEN (by anyone, this process too),
 * _FREE; with owner (may be NULL) set to a new string naming the claimer or
 * finisher.  -1 with err.
 */
int mem_ledger_state(struct mem_ledger *l, const char *key, char **owner, struct mem_err *err);

/*
 * The planning election: returns 1 when this process now leads (holds
 * PREFIX/plan-leader under its lease), 0 when another owner does.
 */
int mem_ledger_lead(struct mem_ledger *l, struct mem_err *err);
/* The leader publishes the plan (any bytes, up to about 1 MB). */
int mem_ledger_publish(struct mem_ledger *l, const char *plan, size_t len, struct mem_err *err);
/*
 * Returns 1 and the plan (a new string, *len bytes) when published, else 0;
 * *leader is set to whether a leader holds the election now.
 */
int mem_ledger_plan(struct mem_ledger *l, char **plan, size_t *len, int *leader,
    struct mem_err *err);

/* 1 while the lease is believed alive (a keep-alive answered within the TTL). */
int mem_ledger_alive(struct mem_ledger *l);
/* The lease TTL in seconds. */
int mem_ledger_ttl(const struct mem_ledger *l);

#endif
