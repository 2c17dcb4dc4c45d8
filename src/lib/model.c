/*
 * model.c - the classifier's HDF5 model file (layout in mem-model(5)).
 *
 * Every shape is checked on reading, so that a kernel never sees a layer
 * whose weights do not match its inputs: a broken file is a usage error
 * before any item is read.  HDF5's own error printing is turned off; the
 * message says which object is wrong.
 */
#include "config.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "model.h"

#define MAX_WIDTH 4096
#define MAX_LAYERS 64

void
mem_model_free(struct mem_model *m)
{
	if (m == NULL)
		return;
	for (int i = 0; m->bands && i < m->k.nbands; i++)
		free(m->bands[i]);
	for (int i = 0; m->classes && i < m->k.nclasses; i++)
		free(m->classes[i]);
	for (int l = 0; m->k.layer && l < m->k.nlayers; l++) {
		free(m->k.layer[l].w);
		free(m->k.layer[l].b);
	}
	free(m->bands);
	free(m->classes);
	free(m->k.mean);
	free(m->k.std);
	free(m->k.layer);
	free(m);
}

struct mem_model *
mem_model_new(int nbands, char *const *bands, int nclasses, char *const *classes, int hidden,
    int conv)
{
	struct mem_model *m = mem_xcalloc(1, sizeof *m);
	int nin = nbands;

	m->k.nbands = nbands;
	m->k.nclasses = nclasses;
	m->bands = mem_xcalloc(nbands, sizeof *m->bands);
	m->classes = mem_xcalloc(nclasses, sizeof *m->classes);
	for (int i = 0; i < nbands; i++)
		m->bands[i] = mem_xstrdup(bands[i]);
	for (int i = 0; i < nclasses; i++)
		m->classes[i] = mem_xstrdup(classes[i]);
	m->k.mean = mem_xcalloc(nbands, sizeof *m->k.mean);
	m->k.std = mem_xcalloc(nbands, sizeof *m->k.std);
	m->k.nlayers = hidden > 0 ? 2 : 1;
	m->k.layer = mem_xcalloc(m->k.nlayers, sizeof *m->k.layer);
	for (int l = 0; l < m->k.nlayers; l++) {
		struct mem_kern_layer *L = &m->k.layer[l];
		int last = l == m->k.nlayers - 1;

		L->type = l == 0 && conv ? MEM_KERN_CONV3 : MEM_KERN_DENSE;
		L->act = last ? MEM_KERN_SOFTMAX : MEM_KERN_RELU;
		L->nin = nin;
		L->nout = last ? nclasses : hidden;
		L->w = mem_xcalloc((size_t)L->nout * L->nin * (L->type == MEM_KERN_CONV3 ? 9 : 1),
		    sizeof *L->w);
		L->b = mem_xcalloc(L->nout, sizeof *L->b);
		nin = L->nout;
	}
	return m;
}

/* --- reading ------------------------------------------------------------ */

struct rd {
	hid_t f;
	const char *path;
	struct mem_err *err;
};

static int
bad(struct rd *r, const char *fmt, const char *what)
{
	char buf[256];

	snprintf(buf, sizeof buf, fmt, what);
	return mem_err_set(r->err, MEM_EUSAGE, "model '%s': %s (see mem-model(5))", r->path, buf);
}

/* The dims of a dataset (at most 4); -1 when it is not there. */
static int
dims(hid_t loc, const char *name, hsize_t d[4])
{
	hid_t ds, sp;
	int nd;

	if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
		return -1;
	if ((ds = H5Dopen2(loc, name, H5P_DEFAULT)) < 0)
		return -1;
	sp = H5Dget_space(ds);
	nd = H5Sget_simple_extent_ndims(sp);
	if (nd > 4 || nd < 0)
		nd = -1;
	else
		H5Sget_simple_extent_dims(sp, d, NULL);
	H5Sclose(sp);
	H5Dclose(ds);
	return nd;
}

/* Reads a numeric dataset of n values, converted to type. */
static int
read_num(hid_t loc, const char *name, hid_t type, void *buf)
{
	hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
	herr_t e;

	if (ds < 0)
		return -1;
	e = H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
	H5Dclose(ds);
	return e < 0 ? -1 : 0;
}

/* Reads a 1-d dataset of n strings, fixed or variable length. */
static int
read_strings(hid_t loc, const char *name, int n, char **out)
{
	hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT), ft, mt;
	int rc = -1;

	if (ds < 0)
		return -1;
	ft = H5Dget_type(ds);
	if (H5Tget_class(ft) != H5T_STRING)
		goto done;
	if (H5Tis_variable_str(ft) > 0) {
		char **v = mem_xcalloc(n, sizeof *v);

		mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, H5T_VARIABLE);
		H5Tset_cset(mt, H5Tget_cset(ft));
		if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
			hid_t sp = H5Dget_space(ds);

			for (int i = 0; i < n; i++)
				out[i] = mem_xstrdup(v[i] ? v[i] : "");
			H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
			H5Sclose(sp);
			rc = 0;
		}
		H5Tclose(mt);
		free(v);
	} else {
		size_t sz = H5Tget_size(ft);
		char *buf = mem_xcalloc((size_t)n, sz + 1);

		mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, sz + 1);
		H5Tset_strpad(mt, H5T_STR_NULLTERM);
		H5Tset_cset(mt, H5Tget_cset(ft));
		if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
			for (int i = 0; i < n; i++)
				out[i] = mem_xstrdup(buf + (size_t)i * (sz + 1));
			rc = 0;
		}
		H5Tclose(mt);
		free(buf);
	}
done:
	H5Tclose(ft);
	H5Dclose(ds);
	return rc;
}

/* A string attribute of loc into buf; -1 when missing or not a string. */
static int
read_attr(hid_t loc, const char *name, char *buf, size_t len)
{
	hid_t a, ft, mt;
	int rc = -1;

	if (H5Aexists(loc, name) <= 0 || (a = H5Aopen(loc, name, H5P_DEFAULT)) < 0)
		return -1;
	ft = H5Aget_type(a);
	if (H5Tget_class(ft) == H5T_STRING) {
		mt = H5Tcopy(H5T_C_S1);
		H5Tset_cset(mt, H5Tget_cset(ft));
		if (H5Tis_variable_str(ft) > 0) {
			char *v = NULL;

			H5Tset_size(mt, H5T_VARIABLE);
			if (H5Aread(a, mt, &v) >= 0 && v) {
				snprintf(buf, len, "%s", v);
				H5free_memory(v);
				rc = 0;
			}
		} else {
			size_t sz = H5Tget_size(ft);
			char *v = mem_xcalloc(1, sz + 1);

			H5Tset_size(mt, sz + 1);
			H5Tset_strpad(mt, H5T_STR_NULLTERM);
			if (H5Aread(a, mt, v) >= 0) {
				snprintf(buf, len, "%s", v);
				rc = 0;
			}
			free(v);
		}
		H5Tclose(mt);
	}
	H5Tclose(ft);
	H5Aclose(a);
	return rc;
}

static int
read_layer(struct rd *r, struct mem_kern_layer *L, int l, int nin)
{
	char name[32], s[64];
	hsize_t d[4];
	hid_t g;
	int nd, rc = -1;

	snprintf(name, sizeof name, "layers/%d", l);
	if ((g = H5Gopen2(r->f, name, H5P_DEFAULT)) < 0)
		return bad(r, "cannot open group '/%s'", name);
	if (read_attr(g, "type", s, sizeof s) < 0) {
		bad(r, "'/%s' has no string attribute 'type'", name);
		goto done;
	}
	if (strcmp(s, "dense") == 0)
		L->type = MEM_KERN_DENSE;
	else if (strcmp(s, "conv3x3") == 0)
		L->type = MEM_KERN_CONV3;
	else {
		mem_err_set(r->err, MEM_EUSAGE, "model '%s': '/%s': unknown type '%s' (dense, conv3x3)",
		    r->path, name, s);
		goto done;
	}
	if (read_attr(g, "activation", s, sizeof s) < 0)
		snprintf(s, sizeof s, "linear");
	if (strcmp(s, "relu") == 0)
		L->act = MEM_KERN_RELU;
	else if (strcmp(s, "softmax") == 0)
		L->act = MEM_KERN_SOFTMAX;
	else if (strcmp(s, "linear") == 0)
		L->act = MEM_KERN_LINEAR;
	else {
		mem_err_set(r->err, MEM_EUSAGE,
		    "model '%s': '/%s': unknown activation '%s' (relu, softmax, linear)", r->path, name,
		    s);
		goto done;
	}
	nd = dims(g, "weight", d);
	if (nd != (L->type == MEM_KERN_CONV3 ? 4 : 2) || d[1] != (hsize_t)nin || d[0] < 1 ||
	    d[0] > MAX_WIDTH || (nd == 4 && (d[2] != 3 || d[3] != 3))) {
		snprintf(s, sizeof s, L->type == MEM_KERN_CONV3 ? "[nout][%d][3][3]" : "[nout][%d]",
		    nin);
		mem_err_set(r->err, MEM_EUSAGE,
		    "model '%s': '/%s/weight' must be a %s dataset (see mem-model(5))", r->path, name, s);
		goto done;
	}
	L->nin = nin;
	L->nout = (int)d[0];
	nd = dims(g, "bias", d);
	if (nd != 1 || d[0] != (hsize_t)L->nout) {
		mem_err_set(r->err, MEM_EUSAGE, "model '%s': '/%s/bias' must have %d values", r->path,
		    name, L->nout);
		goto done;
	}
	L->w = mem_xcalloc((size_t)L->nout * nin * (L->type == MEM_KERN_CONV3 ? 9 : 1), sizeof *L->w);
	L->b = mem_xcalloc(L->nout, sizeof *L->b);
	if (read_num(g, "weight", H5T_NATIVE_FLOAT, L->w) < 0 ||
	    read_num(g, "bias", H5T_NATIVE_FLOAT, L->b) < 0) {
		mem_err_set(r->err, MEM_EUSAGE, "model '%s': cannot read '/%s' as numbers", r->path,
		    name);
		goto done;
	}
	rc = 0;
done:
	H5Gclose(g);
	return rc;
}

struct mem_model *
mem_model_load(const char *path, struct mem_err *err)
{
	struct rd r = { -1, path, err };
	struct mem_model *m = mem_xcalloc(1, sizeof *m);
	hsize_t d[4];
	char s[64];
	int nin;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (access(path, R_OK) < 0) {
		mem_err_set(err, MEM_EUSAGE, "cannot open model '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (H5Fis_hdf5(path) <= 0 ||
	    (r.f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
		mem_err_set(err, MEM_EUSAGE, "cannot open model '%s': not an HDF5 file", path);
		goto fail;
	}
	if (read_attr(r.f, "memories_model", s, sizeof s) < 0 || strcmp(s, "classifier") != 0) {
		bad(&r, "%s", "no root attribute memories_model = \"classifier\"");
		goto fail;
	}
	if (dims(r.f, "bands", d) != 1 || d[0] < 1 || d[0] > 32) {
		bad(&r, "%s", "'/bands' must list 1 to 32 band names");
		goto fail;
	}
	m->k.nbands = (int)d[0];
	m->bands = mem_xcalloc(m->k.nbands, sizeof *m->bands);
	if (read_strings(r.f, "bands", m->k.nbands, m->bands) < 0) {
		bad(&r, "%s", "'/bands' must be strings");
		goto fail;
	}
	m->k.mean = mem_xcalloc(m->k.nbands, sizeof *m->k.mean);
	m->k.std = mem_xcalloc(m->k.nbands, sizeof *m->k.std);
	if (dims(r.f, "mean", d) != 1 || d[0] != (hsize_t)m->k.nbands ||
	    dims(r.f, "std", d) != 1 || d[0] != (hsize_t)m->k.nbands ||
	    read_num(r.f, "mean", H5T_NATIVE_DOUBLE, m->k.mean) < 0 ||
	    read_num(r.f, "std", H5T_NATIVE_DOUBLE, m->k.std) < 0) {
		bad(&r, "%s", "'/mean' and '/std' must hold one number per band");
		goto fail;
	}
	for (int i = 0; i < m->k.nbands; i++)
		if (!(m->k.std[i] > 0) || !isfinite(m->k.mean[i]) || !isfinite(m->k.std[i])) {
			bad(&r, "%s", "'/std' must be positive and '/mean' finite");
			goto fail;
		}
	if (dims(r.f, "classes", d) != 1 || d[0] < 2 || d[0] > 255) {
		bad(&r, "%s", "'/classes' must name 2 to 255 classes");
		goto fail;
	}
	m->k.nclasses = (int)d[0];
	m->classes = mem_xcalloc(m->k.nclasses, sizeof *m->classes);
	if (read_strings(r.f, "classes", m->k.nclasses, m->classes) < 0) {
		bad(&r, "%s", "'/classes' must be strings");
		goto fail;
	}
	for (int l = 0; l < MAX_LAYERS; l++) {
		snprintf(s, sizeof s, "layers/%d", l);
		if (H5Lexists(r.f, "layers", H5P_DEFAULT) <= 0 || H5Lexists(r.f, s, H5P_DEFAULT) <= 0)
			break;
		m->k.nlayers++;
	}
	if (m->k.nlayers == 0) {
		bad(&r, "%s", "no layers ('/layers/0', '/layers/1'...)");
		goto fail;
	}
	m->k.layer = mem_xcalloc(m->k.nlayers, sizeof *m->k.layer);
	nin = m->k.nbands;
	for (int l = 0; l < m->k.nlayers; l++) {
		if (read_layer(&r, &m->k.layer[l], l, nin) < 0)
			goto fail;
		nin = m->k.layer[l].nout;
	}
	if (nin != m->k.nclasses) {
		mem_err_set(err, MEM_EUSAGE, "model '%s': the last layer has %d outputs for %d classes",
		    path, nin, m->k.nclasses);
		goto fail;
	}
	H5Fclose(r.f);
	return m;
fail:
	if (r.f >= 0)
		H5Fclose(r.f);
	mem_model_free(m);
	return NULL;
}

/* --- writing ------------------------------------------------------------ */

/*
 * Creation properties without modification times, so that the same
 * model makes the same bytes.  Made once per thread and kept.
 */
static hid_t
ocpl(void)
{
	static _Thread_local hid_t p = -1;

	if (p < 0) {
		p = H5Pcreate(H5P_DATASET_CREATE);
		H5Pset_obj_track_times(p, 0);
	}
	return p;
}

static hid_t
gcpl(void)
{
	static _Thread_local hid_t p = -1;

	if (p < 0) {
		p = H5Pcreate(H5P_GROUP_CREATE);
		H5Pset_obj_track_times(p, 0);
	}
	return p;
}

static int
put_strings(hid_t loc, const char *name, int n, char *const *v)
{
	hsize_t d = (hsize_t)n;
	hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate_simple(1, &d, NULL), ds;
	int rc = -1;

	H5Tset_size(t, H5T_VARIABLE);
	H5Tset_cset(t, H5T_CSET_UTF8);
	ds = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, ocpl(), H5P_DEFAULT);
	if (ds >= 0) {
		rc = H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -1 : 0;
		H5Dclose(ds);
	}
	H5Sclose(sp);
	H5Tclose(t);
	return rc;
}

static int
put_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int nd, const hsize_t *d,
    const void *v)
{
	hid_t sp = H5Screate_simple(nd, d, NULL), ds;
	int rc = -1;

	ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, ocpl(), H5P_DEFAULT);
	if (ds >= 0) {
		rc = H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -1 : 0;
		H5Dclose(ds);
	}
	H5Sclose(sp);
	return rc;
}

static int
put_attr(hid_t loc, const char *name, const char *v)
{
	hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a;
	int rc = -1;

	H5Tset_size(t, strlen(v) + 1);
	H5Tset_strpad(t, H5T_STR_NULLTERM);
	a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
	if (a >= 0) {
		rc = H5Awrite(a, t, v) < 0 ? -1 : 0;
		H5Aclose(a);
	}
	H5Sclose(sp);
	H5Tclose(t);
	return rc;
}

static int
write_all(hid_t f, const struct mem_model *m)
{
	static const char *acts[] = { "linear", "relu", "softmax" };
	hsize_t d[4];
	hid_t g;
	int rc = 0;

	rc |= put_attr(f, "memories_model", "classifier");
	{
		hid_t sp = H5Screate(H5S_SCALAR), a;
		int one = 1;

		a = H5Acreate2(f, "version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
		rc |= a < 0 || H5Awrite(a, H5T_NATIVE_INT, &one) < 0;
		if (a >= 0)
			H5Aclose(a);
		H5Sclose(sp);
	}
	rc |= put_strings(f, "bands", m->k.nbands, m->bands);
	d[0] = (hsize_t)m->k.nbands;
	rc |= put_num(f, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d, m->k.mean);
	rc |= put_num(f, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d, m->k.std);
	rc |= put_strings(f, "classes", m->k.nclasses, m->classes);
	if ((g = H5Gcreate2(f, "layers", H5P_DEFAULT, gcpl(), H5P_DEFAULT)) < 0)
		return -1;
	H5Gclose(g);
	for (int l = 0; l < m->k.nlayers && rc == 0; l++) {
		const struct mem_kern_layer *L = &m->k.layer[l];
		char name[32];
		int conv = L->type == MEM_KERN_CONV3;

		snprintf(name, sizeof name, "layers/%d", l);
		if ((g = H5Gcreate2(f, name, H5P_DEFAULT, gcpl(), H5P_DEFAULT)) < 0)
			return -1;
		rc |= put_attr(g, "type", conv ? "conv3x3" : "dense");
		rc |= put_attr(g, "activation", acts[L->act]);
		d[0] = (hsize_t)L->nout;
		d[1] = (hsize_t)L->nin;
		d[2] = d[3] = 3;
		rc |= put_num(g, "weight", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, conv ? 4 : 2, d, L->w);
		rc |= put_num(g, "bias", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d, L->b);
		H5Gclose(g);
	}
	return rc ? -1 : 0;
}

int
mem_model_save(const struct mem_model *m, const char *path, struct mem_err *err)
{
	char *tmp = mem_tmp_name(path);
	hid_t f;
	int rc;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (f < 0) {
		mem_err_set(err, MEM_EUSAGE, "cannot create model '%s'", path);
		free(tmp);
		return -1;
	}
	rc = write_all(f, m);
	if (H5Fclose(f) < 0)
		rc = -1;
	if (rc < 0) {
		mem_err_set(err, MEM_EITEM, "cannot write model '%s'", path);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	rc = mem_commit_file(tmp, path, err);
	free(tmp);
	return rc;
}
