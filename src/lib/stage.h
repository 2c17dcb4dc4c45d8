/*
 * stage.h - the stages of mem-infer and the chain that -s options build.
 *
 * A stage spec is NAME[:KEY=VALUE[,KEY=VALUE]...], or expr:OUT=EXPRESSION.
 * A value may itself hold commas (classes=3,8,9,10): a comma-separated
 * piece without "=" continues the value before it.  A stage may read the
 * outputs of the stages before it (mask=cloudmask, a name in an
 * expression); a built-in stage named that way but not given with -s is
 * added before it with its defaults, computed and not written.
 */
#ifndef MEM_STAGE_H
#define MEM_STAGE_H

#include "kern.h"
#include "memories.h"

struct mem_expr;

enum mem_stage_kind {
	MEM_STAGE_ND, /* (a - b) / (a + b) */
	MEM_STAGE_EVI,
	MEM_STAGE_SAVI,
	MEM_STAGE_CLOUDMASK,
	MEM_STAGE_EXPR,
	MEM_STAGE_ZONAL,  /* statistics of a stage or band over polygons: a GeoPackage */
	MEM_STAGE_DIFF,	  /* change: an index after minus before (dndvi) */
	MEM_STAGE_CHANGE, /* change: the thresholded difference, and its polygons */
	MEM_STAGE_LLM,	  /* a hosted language model's answer on the item's summary */
	MEM_STAGE_CLASSIFY, /* a per-pixel network (mem-model(5)): a UInt8 class band */
};

struct mem_model;

/* cloudmask: what the band holds; AUTO: QA_PIXEL for a Landsat item, else SCL */
enum { MEM_CLOUD_AUTO, MEM_CLOUD_SCL, MEM_CLOUD_QA };

/* QA_PIXEL's default: dilated cloud, cirrus, cloud, cloud shadow (bits 1-4) */
#define MEM_CLOUD_QA_BITS 0x1eu

#define MEM_ZONAL_MAXP 16

/* zonal: which statistics, in the order of the GeoPackage's columns */
enum { MEM_ZONAL_COUNT = 1, MEM_ZONAL_MEAN = 2, MEM_ZONAL_STD = 4, MEM_ZONAL_MIN = 8,
	MEM_ZONAL_MAX = 16 };

struct mem_stage {
	enum mem_stage_kind kind;
	char *spec;	      /* as given; NULL for an implied stage */
	char *name;	      /* the output: asset key and file stem */
	const char *bands[3]; /* input bands by common name (indices, cloudmask) */
	int nbands;
	int write;		    /* 1 when asked for with -s */
	int mask;		    /* index in the chain of the mask stage, or -1 */
	double L;		    /* savi */
	unsigned long long classes; /* cloudmask: bit k for class k */
	int dilate;		    /* cloudmask: pixels */
	char *band;		    /* cloudmask: the band, or NULL: scl, or qa_pixel for Landsat */
	int source;		    /* cloudmask: MEM_CLOUD_* */
	struct mem_kern_qa qa;	    /* cloudmask from QA_PIXEL: bits and confidences */
	struct mem_expr *expr;	    /* expr: the compiled program */
	int *refs; /* expr: per name, the chain index of a stage, or -1 for a band */
	/* zonal */
	char *zones;	 /* the polygons' file */
	char *layer;	 /* its layer, or NULL for the first */
	char *of;	 /* the stage or band measured */
	int of_stage;	 /* its chain index, or -1 for a band */
	unsigned stats;	 /* MEM_ZONAL_* */
	double pct[MEM_ZONAL_MAXP]; /* percentiles asked for, 0-100 */
	int npct;
	/* change (diff and change), and zonal's of */
	double threshold; /* change: d <= threshold when negative, d >= threshold otherwise */
	int diff;	  /* change: the chain index of its diff stage */
	/* diff: mask is a cloudmask stage, computed on both dates */
	char *index;	  /* diff: the index compared (ndvi, nbr...) */
	/* llm */
	char *provider, *model;
	char *prompt;	/* the template's text (the built-in one when not given) */
	int scope_run;	/* 1: one request for the whole run */
	/* classify */
	char *model_path;
	struct mem_model *clf; /* loaded when the chain is parsed */
	char model_sum[65];    /* its SHA-256: part of the result's id */
	int prob;	       /* 1: NAME_prob.tif too, a float32 band per class */
};

struct mem_chain {
	struct mem_stage *st;
	size_t n;
	int halo; /* rows of context a strip needs (the largest dilation) */
	int pairs; /* a change stage: items are paired by cell, before and after */
	int llm;   /* the chain index of the llm stage, or -1 */
};

/*
 * Builds the chain from the -s specs (NULL-terminated), in order, adding
 * implied stages.  Returns 0, or -1 with err (MEM_EUSAGE) naming the spec
 * and, for an expression, the column: "expr: column 7: expected ')'".
 * Release with mem_chain_release().
 */
int mem_chain_parse(struct mem_chain *c, char *const *specs, struct mem_err *err);
void mem_chain_release(struct mem_chain *c);

/* The stages with their parameters and outputs, for --list-stages. */
const char *mem_stage_help(void);

#endif
