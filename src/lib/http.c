/*
 * http.c - HTTP(S) transfers through libcurl.
 *
 * One easy handle per transfer for now; the connection cache and the
 * concurrency limits of a real fetcher live in the multi interface that
 * mem-fetch's -j will use.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "http.h"

/*
 * One easy handle per thread, kept for the life of the thread, so that
 * transfers to the same host reuse its connection (and TLS session).
 */
static _Thread_local CURL *thread_handle;

static CURL *
handle(void)
{
	if (thread_handle == NULL)
		thread_handle = curl_easy_init();
	else
		curl_easy_reset(thread_handle);
	return thread_handle;
}

void
mem_http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
mem_http_global_done(void)
{
	if (thread_handle != NULL) {
		curl_easy_cleanup(thread_handle);
		thread_handle = NULL;
	}
	curl_global_cleanup();
}

struct sink {
	FILE *fp;
	char *buf;
	size_t len, cap;
};

static size_t
on_data(char *p, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t k = size * n;

	if (s->fp)
		return fwrite(p, 1, k, s->fp);
	if (s->len + k + 1 > s->cap) {
		s->cap = (s->len + k + 1) * 2;
		s->buf = mem_xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	s->buf[s->len] = '\0';
	return k;
}

/* Strips credentials from a URL for messages. */
static void
safe_url(const char *url, char *out, size_t n)
{
	const char *scheme = strstr(url, "://"), *at, *slash;

	if (scheme == NULL) {
		snprintf(out, n, "%s", url);
		return;
	}
	at = strchr(scheme + 3, '@');
	slash = strchr(scheme + 3, '/');
	if (at && (slash == NULL || at < slash))
		snprintf(out, n, "%.*s%s", (int)(scheme + 3 - url), url, at + 1);
	else
		snprintf(out, n, "%s", url);
}

/* One try.  Returns 0, or -1 with *retry set when trying again may help. */
static int
try_once(const char *url, const char *post, const char *ctype, const struct mem_http_opts *o,
    struct sink *s, int *retry, long *retry_after, struct mem_err *err)
{
	char ebuf[CURL_ERROR_SIZE] = "", shown[1024];
	CURL *c = handle();
	struct curl_slist *hdr = NULL;
	CURLcode rc;
	long code = 0;

	*retry = 0;
	*retry_after = -1;
	if (c == NULL)
		return mem_err_set(err, MEM_ETEMP, "cannot start an HTTP transfer");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o && o->timeout > 0 ? o->timeout : 60L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "memories/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (o && o->cafile)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cafile);
	if (post) {
		char h[128];

		snprintf(h, sizeof h, "Content-Type: %s", ctype ? ctype : "application/json");
		hdr = curl_slist_append(hdr, h);
		if (ctype == NULL)
			hdr = curl_slist_append(hdr, "Accept: application/geo+json, application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
		/* a redirected POST stays a POST, as STAC APIs expect */
		curl_easy_setopt(c, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	}
	for (const char *const *h = o ? o->headers : NULL; h && *h; h++)
		hdr = curl_slist_append(hdr, *h);
	if (hdr)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	rc = curl_easy_perform(c);
	curl_slist_free_all(hdr);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	safe_url(url, shown, sizeof shown);
	if (rc != CURLE_OK) {
		*retry = rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT &&
		    rc != CURLE_WRITE_ERROR;
		mem_err_set(err, MEM_ETEMP, "cannot fetch '%s': %s", shown,
		    ebuf[0] ? ebuf : curl_easy_strerror(rc));
		return -1;
	}
	if (code >= 400) {
		curl_off_t ra = -1;

		curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra);
		*retry_after = (long)ra;
		*retry = code == 429 || code >= 500;
		mem_err_set(err, *retry ? MEM_ETEMP : MEM_EITEM, "cannot fetch '%s': HTTP %ld", shown,
		    code);
		return -1;
	}
	return 0;
}

static void
backoff(int attempt, long retry_after)
{
	double d;

	if (retry_after >= 0)
		d = retry_after > 120 ? 120 : (double)retry_after;
	else {
		/* full jitter over an exponential ceiling: 0.5 s, 1 s, 2 s, ... */
		d = 0.5 * (double)(1 << (attempt < 8 ? attempt : 8));
		d *= 0.5 + (double)(rand() % 1000) / 2000.0;
	}
	usleep((useconds_t)(d * 1e6));
}

static int
transfer(const char *url, const char *post, const char *ctype, const struct mem_http_opts *o,
    struct sink *s, const char *tmp, struct mem_err *err)
{
	int tries = (o && o->retries >= 0) ? o->retries : 3, attempt;

	for (attempt = 0; ; attempt++) {
		int retry;
		long ra;

		if (tmp) {
			s->fp = fopen(tmp, "wb");
			if (s->fp == NULL)
				return mem_err_set(err, MEM_EITEM, "cannot create '%s': %s", tmp,
				    strerror(errno));
		} else
			s->len = 0;
		if (try_once(url, post, ctype, o, s, &retry, &ra, err) == 0) {
			if (tmp && fclose(s->fp) != 0) {
				s->fp = NULL;
				return mem_err_set(err, MEM_EITEM, "cannot write '%s': %s", tmp,
				    strerror(errno));
			}
			s->fp = NULL;
			return 0;
		}
		if (tmp) {
			fclose(s->fp);
			s->fp = NULL;
		}
		if (!retry || attempt >= tries) {
			if (err != NULL && attempt > 0) {
				size_t n = strlen(err->msg);

				snprintf(err->msg + n, sizeof err->msg - n, " (after %d tries)",
				    attempt + 1);
			}
			return -1;
		}
		backoff(attempt, ra);
	}
}

int
mem_http_get(const char *url, const struct mem_http_opts *o, char **body, size_t *len,
    struct mem_err *err)
{
	return mem_http_post(url, NULL, o, body, len, err);
}

int
mem_http_post(const char *url, const char *post, const struct mem_http_opts *o, char **body,
    size_t *len, struct mem_err *err)
{
	return mem_http_request(url, post, NULL, o, body, len, err);
}

int
mem_http_request(const char *url, const char *post, const char *ctype,
    const struct mem_http_opts *o, char **body, size_t *len, struct mem_err *err)
{
	struct sink s = { 0 };

	*body = NULL;
	if (transfer(url, post, ctype, o, &s, NULL, err) < 0) {
		free(s.buf);
		return -1;
	}
	if (s.buf == NULL)
		s.buf = mem_xstrdup("");
	*body = s.buf;
	if (len)
		*len = s.len;
	return 0;
}

int
mem_http_download(const char *url, const char *dest, const struct mem_http_opts *o,
    struct mem_err *err)
{
	struct sink s = { 0 };
	char *tmp = mem_tmp_name(dest);
	int rc;

	rc = transfer(url, NULL, NULL, o, &s, tmp, err);
	if (rc == 0)
		rc = mem_commit_file(tmp, dest, err);
	else
		unlink(tmp);
	free(tmp);
	return rc;
}
