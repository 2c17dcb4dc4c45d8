/*
 * llm.c - the llm stage: summaries, prompts, requests, answers and their
 * cache.
 *
 * Both API shapes take the same body, {"model", "messages": [{"role":
 * "user", "content"}], "stream": false}; they differ in the path
 * (/chat/completions or /chat) and where the answer is in the response
 * (choices[0].message.content, or message.content[].text).  The key is
 * read from the environment at the moment of the request, put in one
 * header line and wiped after; no message, item or cache file holds it.
 */
#include "config.h"

#include <cpl_conv.h>
#include <ctype.h>
#include <gdal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "http.h"
#include "item.h"
#include "llm.h"
#include "sha256.h"

static const struct provider {
	const char *name, *base, *key;
	int cohere;
} providers[] = {
	{ "deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", 0 },
	{ "mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", 0 },
	{ "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", 0 },
	{ "cohere", "https://api.cohere.com/v2", "CO_API_KEY", 1 },
};

static const struct provider *
find_provider(const char *name)
{
	for (size_t i = 0; i < sizeof providers / sizeof *providers; i++)
		if (strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}

/* Statistics of the first band of a raster asset; NULL when it cannot be read. */
static json_t *
raster_stats(const char *href)
{
	double mn, mx, mean, sd;
	json_t *j = NULL;
	GDALDatasetH ds;
	const char *vp;

	/* no .aux.xml beside results: statistics are for the summary only */
	CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
	ds = GDALOpen(href, GA_ReadOnly);
	if (ds && GDALComputeRasterStatistics(GDALGetRasterBand(ds, 1), FALSE, &mn, &mx, &mean, &sd,
	    NULL, NULL) == CE_None) {
		j = json_object();
		json_object_set_new(j, "min", json_real(mn));
		json_object_set_new(j, "max", json_real(mx));
		json_object_set_new(j, "mean", json_real(mean));
		json_object_set_new(j, "std", json_real(sd));
		vp = GDALGetMetadataItem(GDALGetRasterBand(ds, 1), "STATISTICS_VALID_PERCENT", NULL);
		if (vp)
			json_object_set_new(j, "valid_percent", json_real(atof(vp)));
	}
	if (ds)
		GDALClose(ds);
	CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", NULL);
	return j;
}

json_t *
mem_llm_summary(const json_t *item)
{
	json_t *s = json_object(), *outs = json_object(), *props = json_object_get(item,
	    "properties"), *a, *v;
	const char *key;

	json_object_set_new(s, "id", json_string(mem_item_id(item)));
	if ((v = json_object_get(props, "datetime")))
		json_object_set(s, "datetime", v);
	if ((v = json_object_get(props, "mem:grid")))
		json_object_set(s, "grid", v);
	if ((v = json_object_get(item, "bbox")))
		json_object_set(s, "bbox", v);
	json_object_foreach(json_object_get(item, "assets"), key, a) {
		const char *type = json_string_value(json_object_get(a, "type"));
		json_t *st;

		if (type && strncmp(type, "image/tiff", 10) == 0 &&
		    (st = raster_stats(mem_asset_href(a))) != NULL)
			json_object_set_new(outs, key, st);
	}
	json_object_set_new(s, "outputs", outs);
	if ((v = json_object_get(props, "mem:zonal")))
		json_object_set(s, "zonal", v);
	if ((v = json_object_get(props, "mem:change")))
		json_object_set(s, "change", v);
	return s;
}

/* The prompt: the template with {{summary}} replaced, or the summary after it. */
static char *
render(const char *tpl, const char *summary)
{
	const char *mark = "{{summary}}", *p = tpl, *q;
	size_t n = 0, cap = strlen(tpl) + strlen(summary) + 4;
	char *out = mem_xmalloc(cap);
	int used = 0;

	while ((q = strstr(p, mark)) != NULL) {
		size_t k = (size_t)(q - p), ls = strlen(summary);

		if (n + k + ls + 1 > cap)
			out = mem_xrealloc(out, cap = 2 * (n + k + ls + 1));
		memcpy(out + n, p, k);
		memcpy(out + n + k, summary, ls);
		n += k + ls;
		p = q + strlen(mark);
		used = 1;
	}
	out[n] = '\0';
	if (used) {
		char *r = mem_xasprintf("%s%s", out, p);

		free(out);
		return r;
	}
	free(out);
	return mem_xasprintf("%s\n\n%s", tpl, summary);
}

/* The answer's text in a chat response; NULL when there is none. */
static char *
answer_of(const json_t *resp, int cohere)
{
	const json_t *content;
	json_t *part;
	size_t i;
	char *out = NULL;

	if (cohere)
		content = json_object_get(json_object_get(resp, "message"), "content");
	else
		content = json_object_get(json_object_get(json_array_get(json_object_get(resp,
		    "choices"), 0), "message"), "content");
	if (json_is_string(content))
		return mem_xstrdup(json_string_value(content));
	/* an array of parts (Cohere; Mistral's reasoning models): the text ones */
	json_array_foreach(content, i, part) {
		const char *t = json_string_value(json_object_get(part, "text"));
		const char *type = json_string_value(json_object_get(part, "type"));
		char *n;

		if (t == NULL || (type && strcmp(type, "text") != 0))
			continue;
		n = mem_xasprintf("%s%s", out ? out : "", t);
		free(out);
		out = n;
	}
	return out;
}

/* The key's variable: the provider's, or NAME_API_KEY for another OpenAI-compatible one. */
static char *
key_var(const char *provider)
{
	const struct provider *p = find_provider(provider);
	char *v;

	if (p)
		return mem_xstrdup(p->key);
	v = mem_xasprintf("%s_API_KEY", provider);
	for (char *c = v; *c; c++)
		*c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
	return v;
}

static void
wipe(char *s)
{
	if (s) {
		volatile char *p = s;

		while (*p)
			*p++ = 0;
	}
}

json_t *
mem_llm_ask(const struct mem_stage *s, struct mem_llm_opts *o, const json_t *summary,
    struct mem_err *err)
{
	const struct provider *p = find_provider(s->provider);
	char *sum = json_dumps(summary, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
	char *prompt = render(s->prompt, sum), *all, *cdir, *cpath, *name, *body = NULL;
	char *url = NULL, *kv = NULL, *auth = NULL, *text;
	char phash[65], khash[65];
	json_t *res = json_object(), *req = NULL, *msgs, *m, *cached, *resp;
	const char *key, *base;
	struct mem_http_opts ho;
	const char *headers[2] = { NULL, NULL };
	struct mem_err e;

	mem_sha256_hex(s->prompt, strlen(s->prompt), phash);
	all = mem_xasprintf("%s\n%s\n%s\n%s", s->provider, s->model, s->prompt, sum);
	mem_sha256_hex(all, strlen(all), khash);
	free(all);
	json_object_set_new(res, "provider", json_string(s->provider));
	json_object_set_new(res, "model", json_string(s->model));
	json_object_set_new(res, "prompt_sha256", json_string(phash));
	json_object_set_new(res, "scope", json_string(s->scope_run ? "run" : "tile"));
	cdir = mem_path_join(o->workdir, "llm");
	name = mem_xasprintf("%s.json", khash);
	cpath = mem_path_join(cdir, name);
	free(name);

	/* a rerun: the answer paid for before */
	if ((cached = json_load_file(cpath, 0, NULL)) != NULL &&
	    json_is_string(json_object_get(cached, "answer"))) {
		json_object_set(res, "answer", json_object_get(cached, "answer"));
		json_decref(cached);
		goto done;
	}
	json_decref(cached);
	if (o->max_requests >= 0 && o->requests >= o->max_requests) {
		json_object_set_new(res, "answer", json_null());
		json_object_set_new(res, "skipped", json_string("--max-requests reached"));
		o->skipped++;
		goto done;
	}
	base = o->endpoint ? o->endpoint : p ? p->base : NULL;
	if (base == NULL) {
		mem_err_set(err, MEM_EUSAGE,
		    "llm: provider '%s' is not known: give its OpenAI-compatible --llm-endpoint",
		    s->provider);
		json_decref(res);
		res = NULL;
		goto done;
	}
	kv = key_var(s->provider);
	key = getenv(kv);
	if ((key == NULL || *key == '\0') && p) {
		mem_err_set(err, MEM_EUSAGE, "llm: %s is not set (the key for %s)", kv, s->provider);
		json_decref(res);
		res = NULL;
		goto done;
	}
	if (key && *key) {
		auth = mem_xasprintf("Authorization: Bearer %s", key);
		headers[0] = auth;
	}
	url = mem_xasprintf("%s%s%s", base, base[0] && base[strlen(base) - 1] == '/' ? "" : "/",
	    p && p->cohere ? "chat" : "chat/completions");
	req = json_object();
	msgs = json_array();
	m = json_object();
	json_object_set_new(req, "model", json_string(s->model));
	json_object_set_new(m, "role", json_string("user"));
	json_object_set_new(m, "content", json_string(prompt));
	json_array_append_new(msgs, m);
	json_object_set_new(req, "messages", msgs);
	json_object_set_new(req, "stream", json_false());
	text = json_dumps(req, JSON_COMPACT);
	memset(&ho, 0, sizeof ho);
	ho.timeout = o->timeout > 0 ? o->timeout : 120;
	ho.retries = 3;
	ho.headers = headers;
	o->requests++;
	mem_err_clear(&e);
	if (mem_http_post(url, text, &ho, &body, NULL, &e) < 0) {
		free(text);
		json_object_set_new(res, "answer", json_null());
		json_object_set_new(res, "error", json_string(e.msg));
		o->failed++;
		o->last = e;
		mem_err_prefix(&o->last, "llm %s/%s", s->provider, s->model);
		goto done;
	}
	free(text);
	resp = json_loads(body, 0, NULL);
	text = resp ? answer_of(resp, p && p->cohere) : NULL;
	json_decref(resp);
	if (text == NULL) {
		json_object_set_new(res, "answer", json_null());
		json_object_set_new(res, "error", json_string("no answer in the response"));
		o->failed++;
		mem_err_set(&o->last, MEM_EITEM, "llm %s/%s: no answer in the response from '%s'",
		    s->provider, s->model, url);
		goto done;
	}
	json_object_set_new(res, "answer", json_string(text));
	/* cached: what was asked (by hash) and the answer; never the key */
	{
		json_t *c = json_object();
		char *ct;
		struct mem_err ce;

		json_object_set_new(c, "provider", json_string(s->provider));
		json_object_set_new(c, "model", json_string(s->model));
		json_object_set_new(c, "prompt_sha256", json_string(phash));
		json_object_set_new(c, "answer", json_string(text));
		ct = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
		if (mem_mkdir_p(cdir, &ce) == 0)
			mem_write_file_atomic(cpath, ct, strlen(ct), &ce);
		free(ct);
		json_decref(c);
	}
	free(text);
done:
	wipe(auth);
	free(auth);
	free(kv);
	free(url);
	free(body);
	json_decref(req);
	free(prompt);
	free(sum);
	free(cdir);
	free(cpath);
	return res;
}
