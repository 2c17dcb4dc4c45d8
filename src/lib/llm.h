/*
 * llm.h - asking a hosted language model about results.
 *
 * The llm stage sends a compact JSON summary of a result item (or of a
 * whole run) inside a prompt to a chat API and keeps the answer.  Two
 * request shapes: OpenAI-compatible chat completions (DeepSeek, Mistral,
 * OpenAI, any server that speaks them) and Cohere's v2 chat.  Keys come
 * from the environment and go only into the Authorization header.  Answers
 * are cached in WORKDIR/llm/ by a hash of provider, model, prompt and
 * summary, so a rerun pays nothing.
 */
#ifndef MEM_LLM_H
#define MEM_LLM_H

#include <jansson.h>

#include "memories.h"
#include "stage.h"

struct mem_llm_opts {
	const char *endpoint; /* base URL; NULL: the provider's */
	long timeout;	      /* seconds per request; 0 = 120 */
	long max_requests;    /* requests the run may make; < 0: no limit */
	const char *workdir;
	/* what happened, for the caller's messages and exit status */
	long requests;	      /* requests made (a retry is not another request) */
	long skipped;	      /* answers not asked for: the budget was spent */
	long failed;	      /* answers that failed */
	struct mem_err last;  /* the last failure */
};

/* Returns a new compact summary of a result item: its outputs' statistics, mem:zonal, mem:change. */
json_t *mem_llm_summary(const json_t *item);

/*
 * Asks the stage's model about summary and returns a new mem:llm object
 * (provider, model, prompt_sha256, answer).  When the budget is spent or
 * the request fails the object has "answer": null and "skipped" or
 * "error", and o->skipped or o->failed (with o->last) counts it: results
 * are never lost to a model's failure.  Returns NULL only for a usage
 * error (a missing key), with err.
 */
json_t *mem_llm_ask(const struct mem_stage *s, struct mem_llm_opts *o, const json_t *summary,
    struct mem_err *err);

#endif
