/*
 * ledger.c - the work ledger in etcd, through its v3 JSON gateway.
 *
 * libcurl and jansson only: Debian has no C client for etcd, and the
 * gateway (POST /v3/kv/txn and friends, keys and values in base64) is all
 * the ledger needs.  Facts this relies on, measured on etcd 3.4: proto3
 * leaves false and zero out of the JSON (a lost txn has no "succeeded"),
 * int64s come as strings, a follower cut off from the leader answers 503
 * after about 6 s (hence our short per-request timeout and the move to the
 * next member), and a txn that timed out without quorum may still be
 * committed later (hence the retry of the same txn, and "owner == me" read
 * as a win).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"

struct mem_ledger {
	char *url;		/* as given */
	char **ep;		/* "http://h:p" or "https://h:p" */
	int nep;
	int cur;		/* the member requests go to first */
	char *prefix;
	char owner[128];
	struct mem_ledger_opts o;
	char *cacert, *cert, *key;
	int tls;
	pthread_mutex_t mu;	/* the request handle, cur, the lease */
	CURL *h;
	char lease[32];		/* the lease ID, decimal */
	int expired;		/* the lease is gone for sure: grant a new one */
	double last_ok;		/* when a keep-alive (or the grant) last answered */
	pthread_t ka;
	int ka_started;
	pthread_mutex_t kmu;	/* stop, with kcv */
	pthread_cond_t kcv;
	int stop;
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- base64 (standard, padded), as the gateway wants keys and values ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_encode(const void *data, size_t n)
{
	const unsigned char *p = data;
	char *out = mem_xmalloc(4 * ((n + 2) / 3) + 1), *q = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*q++ = b64[v >> 18];
		*q++ = b64[v >> 12 & 63];
		*q++ = b64[v >> 6 & 63];
		*q++ = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

		*q++ = b64[v >> 18];
		*q++ = b64[v >> 12 & 63];
		*q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*q++ = '=';
	}
	*q = '\0';
	return out;
}

/* Returns a new NUL-terminated buffer of the decoded bytes (*n of them), or NULL. */
static char *
b64_decode(const char *s, size_t *n)
{
	size_t len = strlen(s), k = 0;
	char *out = mem_xmalloc(len / 4 * 3 + 4);
	uint32_t v = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		const char *c = strchr(b64, s[i]);

		if (s[i] == '=')
			break;
		if (c == NULL || s[i] == '\0') {
			free(out);
			return NULL;
		}
		v = v << 6 | (uint32_t)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)(v >> bits & 0xff);
		}
	}
	out[k] = '\0';
	if (n)
		*n = k;
	return out;
}

static char *
strndup_x(const char *s, size_t n)
{
	char *d = mem_xmalloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* ---- URL ---------------------------------------------------------------- */

static int
parse(const char *url, char ***ep, int *nep, char **prefix, int *tls, struct mem_err *err)
{
	const char *p, *slash;
	char *hosts, *tok, *save;
	int n = 0;

	if (strncmp(url, "etcd://", 7) == 0) {
		*tls = 0;
		p = url + 7;
	} else if (strncmp(url, "etcds://", 8) == 0) {
		*tls = 1;
		p = url + 8;
	} else {
		return mem_err_set(err, MEM_EUSAGE,
		    "invalid ledger '%s': expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX (or etcds://)",
		    url);
	}
	slash = strchr(p, '/');
	if (slash == NULL || slash[1] == '\0' || slash == p)
		return mem_err_set(err, MEM_EUSAGE,
		    "invalid ledger '%s': expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX", url);
	hosts = strndup_x(p, (size_t)(slash - p));
	if (ep)
		*ep = NULL;
	for (tok = strtok_r(hosts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':'), *end;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;

		if (colon == NULL || colon == tok || colon[1] == '\0' || *end || port < 1 || port > 65535) {
			free(hosts);
			if (ep) {
				for (int i = 0; i < n; i++)
					free((*ep)[i]);
				free(*ep);
				*ep = NULL;
			}
			return mem_err_set(err, MEM_EUSAGE,
			    "invalid ledger '%s': member '%s' is not HOST:PORT", url, tok);
		}
		if (ep) {
			*ep = mem_xrealloc(*ep, (size_t)(n + 1) * sizeof **ep);
			(*ep)[n] = mem_xasprintf("%s://%s", *tls ? "https" : "http", tok);
		}
		n++;
	}
	free(hosts);
	if (n == 0)
		return mem_err_set(err, MEM_EUSAGE, "invalid ledger '%s': no member", url);
	if (nep)
		*nep = n;
	if (prefix) {
		size_t len = strlen(slash + 1);

		*prefix = strndup_x(slash + 1, slash[len] == '/' ? len - 1 : len);
	}
	return 0;
}

int
mem_ledger_parse(const char *url, struct mem_err *err)
{
	int tls;

	return parse(url, NULL, NULL, NULL, &tls, err);
}

/* ---- requests ------------------------------------------------------------ */

struct buf {
	char *p;
	size_t n;
};

static size_t
on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct buf *b = ctx;
	size_t k = size * nmemb;

	if (b->n + k > 64u << 20)
		return 0;
	b->p = mem_xrealloc(b->p, b->n + k + 1);
	memcpy(b->p + b->n, p, k);
	b->n += k;
	b->p[b->n] = '\0';
	return k;
}

static CURL *
handle(struct mem_ledger *l)
{
	CURL *h = curl_easy_init();

	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	if (l->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, l->cacert);
	if (l->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, l->cert);
	if (l->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, l->key);
	return h;
}

/*
 * One POST to one member: 1 with *resp (the answer's JSON, a 2xx or a 4xx
 * with an etcd error), 0 when the member failed (connection, timeout, 5xx,
 * not JSON) with why in msg.
 */
static int
post_once(struct mem_ledger *l, CURL *h, const char *ep, const char *path, const char *body,
    double timeout, json_t **resp, long *code, char *msg, size_t nmsg)
{
	struct buf b = { NULL, 0 };
	char *url = mem_xasprintf("%s%s", ep, path);
	struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode rc;

	(void)l;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 500) + 1);
	rc = curl_easy_perform(h);
	curl_slist_free_all(hd);
	*resp = NULL;
	*code = 0;
	if (rc != CURLE_OK) {
		snprintf(msg, nmsg, "%s: %s", ep, curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
		if (*code >= 500 || *code < 200)
			snprintf(msg, nmsg, "%s: HTTP %ld%s%.120s", ep, *code, b.p ? ": " : "",
			    b.p ? b.p : "");
		else if ((*resp = b.p ? json_loadb(b.p, b.n, 0, NULL) : NULL) == NULL)
			snprintf(msg, nmsg, "%s: HTTP %ld: not JSON", ep, *code);
	}
	free(b.p);
	free(url);
	return *resp != NULL;
}

/*
 * POSTs body to path, moving from member to member until one answers or
 * the deadline passes (MEM_ETEMP).  A 4xx answer is an error (MEM_EITEM)
 * carrying etcd's message.  Takes l->mu.
 */
static json_t *
request(struct mem_ledger *l, const char *path, json_t *body, struct mem_err *err)
{
	char *text = json_dumps(body, JSON_COMPACT), msg[400] = "";
	double end = mono() + l->o.deadline;
	json_t *resp = NULL;
	long code = 0;
	int tries = 0;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (post_once(l, l->h, l->ep[l->cur], path, text, l->o.timeout, &resp, &code, msg,
			sizeof msg))
			break;
		l->cur = (l->cur + 1) % l->nep;
		if (mono() > end) {
			pthread_mutex_unlock(&l->mu);
			free(text);
			mem_err_set(err, MEM_ETEMP, "ledger '%s': no member answered in %.0f s (last: %s)",
			    l->url, l->o.deadline, msg);
			return NULL;
		}
		/* a round of the members failed: pause before the next one */
		if (++tries % l->nep == 0)
			nap(0.2);
	}
	pthread_mutex_unlock(&l->mu);
	free(text);
	if (code >= 400) {
		const char *e = json_string_value(json_object_get(resp, "error"));

		if (e == NULL)
			e = json_string_value(json_object_get(resp, "message"));
		mem_err_set(err, MEM_EITEM, "ledger '%s': %s: HTTP %ld: %s", l->url, path, code,
		    e ? e : "error");
		json_decref(resp);
		return NULL;
	}
	return resp;
}

static char *
full_key(const struct mem_ledger *l, const char *kind, const char *key)
{
	char *k = key ? mem_xasprintf("%s/%s/%s", l->prefix, kind, key) :
			mem_xasprintf("%s/%s", l->prefix, kind);
	char *e = b64_encode(k, strlen(k));

	free(k);
	return e;
}

static json_t *
cmp_create0(const char *k)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "key", k, "target", "CREATE", "result", "EQUAL",
	    "create_revision", "0");
}

static json_t *
op_range(const char *k)
{
	return json_pack("{s:{s:s}}", "request_range", "key", k);
}

/* The value of the first kv of response i of a txn, a new string, or NULL when none. */
static char *
range_value(const json_t *resp, size_t i)
{
	json_t *r = json_object_get(json_array_get(json_object_get(resp, "responses"), i),
	    "response_range");
	json_t *kv = json_array_get(json_object_get(r, "kvs"), 0);
	const char *v;

	if (kv == NULL)
		return NULL;
	v = json_string_value(json_object_get(kv, "value"));
	return v ? b64_decode(v, NULL) : mem_xstrdup("");
}

static int
succeeded(const json_t *resp)
{
	return json_is_true(json_object_get(resp, "succeeded"));
}

/* ---- the lease ------------------------------------------------------------ */

/* Grants a lease; the caller holds no lock. */
static int
grant(struct mem_ledger *l, struct mem_err *err)
{
	json_t *body = json_pack("{s:I}", "TTL", (json_int_t)l->o.ttl), *r;
	const char *id;

	r = request(l, "/v3/lease/grant", body, err);
	json_decref(body);
	if (r == NULL)
		return -1;
	id = json_string_value(json_object_get(r, "ID"));
	if (id == NULL || strlen(id) >= sizeof l->lease) {
		json_decref(r);
		return mem_err_set(err, MEM_ETEMP, "ledger '%s': lease grant without an ID", l->url);
	}
	pthread_mutex_lock(&l->kmu);
	snprintf(l->lease, sizeof l->lease, "%s", id);
	l->expired = 0;
	l->last_ok = mono();
	pthread_mutex_unlock(&l->kmu);
	json_decref(r);
	return 0;
}

/* One keep-alive, one member after the other, each with the short timeout. */
static void
keep_alive(struct mem_ledger *l, CURL *h, int *cur)
{
	char body[96], msg[400];
	json_t *resp;
	long code;

	pthread_mutex_lock(&l->kmu);
	snprintf(body, sizeof body, "{\"ID\":\"%s\"}", l->lease);
	pthread_mutex_unlock(&l->kmu);
	for (int i = 0; i < l->nep; i++) {
		if (post_once(l, h, l->ep[*cur], "/v3/lease/keepalive", body, l->o.timeout, &resp,
			&code, msg, sizeof msg)) {
			json_t *res = json_object_get(resp, "result"), *e = json_object_get(resp, "error");
			const char *ttl = json_string_value(json_object_get(res, "TTL"));
			const char *m = json_string_value(json_object_get(e, "message"));

			int gone;

			pthread_mutex_lock(&l->kmu);
			if (code == 200 && e == NULL && ttl && atol(ttl) > 0)
				l->last_ok = mono();
			else if ((code == 200 && e == NULL) || code == 404 || (m && strstr(m, "not found")))
				l->expired = 1;	/* the lease is gone: its claims too */
			gone = l->expired;
			pthread_mutex_unlock(&l->kmu);
			if (e && !gone) {
				/* an error from a member without quorum: try the next one */
				json_decref(resp);
				*cur = (*cur + 1) % l->nep;
				continue;
			}
			json_decref(resp);
			return;
		}
		*cur = (*cur + 1) % l->nep;
	}
}

static void *
ka_main(void *arg)
{
	struct mem_ledger *l = arg;
	CURL *h = handle(l);
	int cur = 0;

	pthread_mutex_lock(&l->kmu);
	while (!l->stop) {
		struct timespec ts;
		double every = l->o.ttl / 3.0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)every;
		ts.tv_nsec += (long)((every - (double)(time_t)every) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->kcv, &l->kmu, &ts);
		if (l->stop || l->expired)
			continue;
		pthread_mutex_unlock(&l->kmu);
		if (h)
			keep_alive(l, h, &cur);
		pthread_mutex_lock(&l->kmu);
	}
	pthread_mutex_unlock(&l->kmu);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

int
mem_ledger_alive(struct mem_ledger *l)
{
	int alive;

	pthread_mutex_lock(&l->kmu);
	alive = !l->expired && mono() - l->last_ok < l->o.ttl;
	pthread_mutex_unlock(&l->kmu);
	return alive;
}

/*
 * Waits until the lease is alive, granting a new one when the old is gone;
 * copies its ID into id.  -1 (MEM_ETEMP) after the deadline.
 */
static int
lease_ready(struct mem_ledger *l, char *id, struct mem_err *err)
{
	double end = mono() + l->o.deadline;

	for (;;) {
		int expired;

		pthread_mutex_lock(&l->kmu);
		expired = l->expired;
		if (!expired && mono() - l->last_ok < l->o.ttl) {
			snprintf(id, 32, "%s", l->lease);
			pthread_mutex_unlock(&l->kmu);
			return 0;
		}
		pthread_mutex_unlock(&l->kmu);
		if (expired) {
			pthread_mutex_lock(&l->mu);	/* one thread grants */
			pthread_mutex_lock(&l->kmu);
			expired = l->expired;
			pthread_mutex_unlock(&l->kmu);
			pthread_mutex_unlock(&l->mu);
			if (expired && grant(l, err) < 0)
				return -1;
			continue;
		}
		if (mono() > end)
			return mem_err_set(err, MEM_ETEMP,
			    "ledger '%s': the lease was not renewed for %.0f s: no quorum?", l->url,
			    l->o.deadline);
		nap(0.1);
	}
}

/* ---- open, close ------------------------------------------------------------- */

struct mem_ledger *
mem_ledger_open(const struct mem_ledger_opts *o, struct mem_err *err)
{
	struct mem_ledger *l = mem_xcalloc(1, sizeof *l);
	unsigned char rnd[6] = { 0 };
	char host[64] = "host";
	FILE *fp;

	if (parse(o->url, &l->ep, &l->nep, &l->prefix, &l->tls, err) < 0) {
		free(l);
		return NULL;
	}
	l->url = mem_xstrdup(o->url);
	l->o = *o;
	if (l->o.ttl <= 0)
		l->o.ttl = 10;
	if (l->o.deadline <= 0)
		l->o.deadline = 60;
	if (l->o.timeout <= 0)
		l->o.timeout = 2;
	l->cacert = o->cacert ? mem_xstrdup(o->cacert) : NULL;
	l->cert = o->cert ? mem_xstrdup(o->cert) : NULL;
	l->key = o->key ? mem_xstrdup(o->key) : NULL;
	l->o.url = l->url;
	l->o.cacert = l->cacert;
	l->o.cert = l->cert;
	l->o.key = l->key;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->kmu, NULL);
	pthread_cond_init(&l->kcv, NULL);
	{
		const char *files[] = { l->cacert, l->cert, l->key };
		const char *names[] = { "CA file", "certificate", "key" };

		for (int i = 0; i < 3; i++)
			if (files[i] && access(files[i], R_OK) < 0) {
				mem_err_set(err, MEM_EUSAGE, "ledger '%s': cannot read the %s '%s': %s",
				    l->url, names[i], files[i], strerror(errno));
				mem_ledger_close(l);
				return NULL;
			}
	}
	gethostname(host, sizeof host - 1);
	if ((fp = fopen("/dev/urandom", "rb")) != NULL) {
		if (fread(rnd, 1, sizeof rnd, fp) != sizeof rnd)
			rnd[0] ^= (unsigned char)time(NULL);
		fclose(fp);
	}
	snprintf(l->owner, sizeof l->owner, "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(),
	    rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	if ((l->h = handle(l)) == NULL) {
		mem_err_set(err, MEM_ETEMP, "ledger '%s': cannot make a curl handle", l->url);
		mem_ledger_close(l);
		return NULL;
	}
	if (grant(l, err) < 0) {
		mem_ledger_close(l);
		return NULL;
	}
	if (pthread_create(&l->ka, NULL, ka_main, l) == 0)
		l->ka_started = 1;
	return l;
}

void
mem_ledger_close(struct mem_ledger *l)
{
	if (l == NULL)
		return;
	if (l->ka_started) {
		pthread_mutex_lock(&l->kmu);
		l->stop = 1;
		pthread_cond_signal(&l->kcv);
		pthread_mutex_unlock(&l->kmu);
		pthread_join(l->ka, NULL);
	}
	if (l->h && l->lease[0] && !l->expired) {
		char body[96], msg[400];
		json_t *resp;
		long code;

		/* our claims go now rather than a TTL later; one try per member is enough */
		snprintf(body, sizeof body, "{\"ID\":\"%s\"}", l->lease);
		for (int i = 0; i < l->nep; i++) {
			if (post_once(l, l->h, l->ep[l->cur], "/v3/lease/revoke", body, l->o.timeout,
				&resp, &code, msg, sizeof msg)) {
				json_decref(resp);
				break;
			}
			l->cur = (l->cur + 1) % l->nep;
		}
	}
	if (l->h)
		curl_easy_cleanup(l->h);
	for (int i = 0; i < l->nep; i++)
		free(l->ep[i]);
	free(l->ep);
	free(l->prefix);
	free(l->url);
	free(l->cacert);
	free(l->cert);
	free(l->key);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->kmu);
	pthread_cond_destroy(&l->kcv);
	free(l);
}

const char *
mem_ledger_owner(const struct mem_ledger *l)
{
	return l->owner;
}

const char *
mem_ledger_url(const struct mem_ledger *l)
{
	return l->url;
}

int
mem_ledger_ttl(const struct mem_ledger *l)
{
	return l->o.ttl;
}

/* ---- claims ---------------------------------------------------------------------- */

/* 1 when the request failed because the lease is unknown to etcd. */
static int
lease_gone(struct mem_ledger *l, const struct mem_err *err)
{
	if (strstr(err->msg, "lease not found") == NULL)
		return 0;
	pthread_mutex_lock(&l->kmu);
	l->expired = 1;
	pthread_mutex_unlock(&l->kmu);
	return 1;
}

/* create-if-absent of kind/key (and, with done, only while done/key is absent). */
static int
create(struct mem_ledger *l, const char *kind, const char *key, int with_done, struct mem_err *err)
{
	char *ck = full_key(l, kind, key), *dk = with_done ? full_key(l, "done", key) : NULL;
	char *me = b64_encode(l->owner, strlen(l->owner)), id[32], *owner = NULL, *done = NULL;
	json_t *body, *resp = NULL;
	int rc = -1;

	for (;;) {
		if (lease_ready(l, id, err) < 0)
			goto out;
		body = json_pack("{s:[o], s:[{s:{s:s, s:s, s:s}}], s:[o]}",
		    "compare", cmp_create0(ck),
		    "success", "request_put", "key", ck, "value", me, "lease", id,
		    "failure", op_range(ck));
		if (dk) {
			json_array_append_new(json_object_get(body, "compare"), cmp_create0(dk));
			json_array_append_new(json_object_get(body, "failure"), op_range(dk));
		}
		mem_err_clear(err);
		resp = request(l, "/v3/kv/txn", body, err);
		json_decref(body);
		if (resp != NULL || !lease_gone(l, err))
			break;
	}
	if (resp == NULL)
		goto out;
	if (succeeded(resp)) {
		rc = MEM_LEDGER_WON;
		goto out;
	}
	owner = range_value(resp, 0);
	done = dk ? range_value(resp, 1) : NULL;
	if (done)
		rc = MEM_LEDGER_DONE;
	else if (owner && strcmp(owner, l->owner) == 0)
		rc = MEM_LEDGER_WON;	/* an earlier try of ours got through after all */
	else
		rc = MEM_LEDGER_TAKEN;
out:
	json_decref(resp);
	free(owner);
	free(done);
	free(ck);
	free(dk);
	free(me);
	return rc;
}

int
mem_ledger_claim(struct mem_ledger *l, const char *key, struct mem_err *err)
{
	return create(l, "claim", key, 1, err);
}

int
mem_ledger_done(struct mem_ledger *l, const char *key, struct mem_err *err)
{
	char *ck = full_key(l, "claim", key), *dk = full_key(l, "done", key);
	char *me = b64_encode(l->owner, strlen(l->owner)), *done = NULL;
	json_t *body, *resp;
	int rc = -1;

	body = json_pack("{s:[{s:s, s:s, s:s, s:s}], s:[{s:{s:s, s:s}}, {s:{s:s}}], s:[o]}",
	    "compare", "key", ck, "target", "VALUE", "result", "EQUAL", "value", me,
	    "success", "request_put", "key", dk, "value", me, "request_delete_range", "key", ck,
	    "failure", op_range(dk));
	resp = request(l, "/v3/kv/txn", body, err);
	json_decref(body);
	if (resp == NULL)
		goto out;
	if (succeeded(resp)) {
		rc = 0;
	} else if ((done = range_value(resp, 0)) != NULL && strcmp(done, l->owner) == 0) {
		rc = 0;	/* an earlier try of ours got through after all */
	} else {
		mem_err_set(err, MEM_EITEM, "ledger '%s': '%s': our claim is gone (lease expired%s): "
		    "not marked done", l->url, key, done ? ", done by another" : "");
	}
out:
	json_decref(resp);
	free(done);
	free(ck);
	free(dk);
	free(me);
	return rc;
}

int
mem_ledger_state(struct mem_ledger *l, const char *key, char **owner, struct mem_err *err)
{
	char *ck = full_key(l, "claim", key), *dk = full_key(l, "done", key), *c = NULL, *d = NULL;
	json_t *body = json_pack("{s:[], s:[o, o]}", "compare", "success", op_range(ck), op_range(dk));
	json_t *resp = request(l, "/v3/kv/txn", body, err);
	int rc = -1;

	json_decref(body);
	if (owner)
		*owner = NULL;
	if (resp) {
		c = range_value(resp, 0);
		d = range_value(resp, 1);
		rc = d ? MEM_LEDGER_DONE : c ? MEM_LEDGER_TAKEN : MEM_LEDGER_FREE;
		if (owner) {
			*owner = d ? d : c;
			if (d)
				d = NULL;
			else
				c = NULL;
		}
	}
	free(c);
	free(d);
	json_decref(resp);
	free(ck);
	free(dk);
	return rc;
}

/* ---- the planning election ------------------------------------------------------------ */

int
mem_ledger_lead(struct mem_ledger *l, struct mem_err *err)
{
	int rc = create(l, "plan-leader", NULL, 0, err);

	return rc < 0 ? -1 : rc == MEM_LEDGER_WON;
}

int
mem_ledger_publish(struct mem_ledger *l, const char *plan, size_t len, struct mem_err *err)
{
	char *k = full_key(l, "plan", NULL), *v = b64_encode(plan, len);
	json_t *body = json_pack("{s:s, s:s}", "key", k, "value", v), *resp;

	free(k);
	free(v);
	resp = request(l, "/v3/kv/put", body, err);
	json_decref(body);
	json_decref(resp);
	return resp ? 0 : -1;
}

int
mem_ledger_plan(struct mem_ledger *l, char **plan, size_t *len, int *leader, struct mem_err *err)
{
	char *pk = full_key(l, "plan", NULL), *lk = full_key(l, "plan-leader", NULL), *who;
	json_t *body = json_pack("{s:[], s:[o, o]}", "compare", "success", op_range(pk), op_range(lk));
	json_t *resp = request(l, "/v3/kv/txn", body, err), *kv;
	int rc = -1;

	json_decref(body);
	free(pk);
	free(lk);
	*plan = NULL;
	if (resp == NULL)
		return -1;
	who = range_value(resp, 1);
	*leader = who != NULL;
	free(who);
	kv = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(resp,
	    "responses"), 0), "response_range"), "kvs"), 0);
	if (kv) {
		const char *v = json_string_value(json_object_get(kv, "value"));

		*plan = b64_decode(v ? v : "", len);
		rc = *plan != NULL;
		if (*plan == NULL)
			mem_err_set(err, MEM_ETEMP, "ledger '%s': the plan is not base64", l->url);
	} else {
		rc = 0;
	}
	json_decref(resp);
	return rc;
}
