/*
 * objstore.c - mem-store's S3 target through GDAL's /vsis3/.
 *
 * Streams whole files in and out with VSIF*L; GDAL signs the requests,
 * retries and switches to a multipart upload for large objects.  Errors
 * come back with GDAL's message and the object's s3:// URL.
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "objstore.h"

int
mem_objstore_is_url(const char *url)
{
	return url && strncmp(url, "s3://", 5) == 0;
}

int
mem_objstore_configure(const char *endpoint, struct mem_err *err)
{
	const char *host;

	CPLSetConfigOption("AWS_VIRTUAL_HOSTING", "FALSE");
	if (endpoint == NULL)
		return 0;
	if (strncmp(endpoint, "http://", 7) == 0) {
		host = endpoint + 7;
		CPLSetConfigOption("AWS_HTTPS", "NO");
	} else if (strncmp(endpoint, "https://", 8) == 0) {
		host = endpoint + 8;
		CPLSetConfigOption("AWS_HTTPS", "YES");
	} else
		return mem_err_set(err, MEM_EUSAGE,
		    "invalid --endpoint '%s': expected http://HOST[:PORT] or https://HOST[:PORT]",
		    endpoint);
	if (*host == '\0' || (strchr(host, '/') && strchr(host, '/')[1] != '\0'))
		return mem_err_set(err, MEM_EUSAGE, "invalid --endpoint '%s': no path expected",
		    endpoint);
	{
		char *h = mem_xstrdup(host);
		size_t n = strlen(h);

		if (n > 0 && h[n - 1] == '/')
			h[n - 1] = '\0';
		CPLSetConfigOption("AWS_S3_ENDPOINT", h);
		free(h);
	}
	return 0;
}

char *
mem_objstore_path(const char *url, const char *rel)
{
	const char *b = url + 5;	/* after s3:// */
	size_t n = strlen(b);

	while (n > 0 && b[n - 1] == '/')
		n--;
	if (rel == NULL || *rel == '\0')
		return mem_xasprintf("/vsis3/%.*s", (int)n, b);
	return mem_xasprintf("/vsis3/%.*s/%s", (int)n, b, rel);
}

static const char *
gdal_msg(const char *fallback)
{
	const char *m = CPLGetLastErrorMsg();

	return m && *m ? m : fallback;
}

int
mem_objstore_put(const char *local, const char *vsipath, const char *url, struct mem_err *err)
{
	FILE *in = fopen(local, "rb");
	VSILFILE *out;
	char *buf;
	size_t n;
	int rc = 0, bad_read;

	if (in == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot open '%s': %s", local, strerror(errno));
	CPLErrorReset();
	out = VSIFOpenL(vsipath, "wb");
	if (out == NULL) {
		fclose(in);
		return mem_err_set(err, MEM_ETEMP, "cannot upload to '%s': %s", url,
		    gdal_msg("cannot open for writing"));
	}
	buf = mem_xmalloc(1 << 20);
	while ((n = fread(buf, 1, 1 << 20, in)) > 0) {
		if (VSIFWriteL(buf, 1, n, out) != n) {
			rc = -1;
			break;
		}
	}
	bad_read = ferror(in);
	free(buf);
	fclose(in);
	/* the upload completes (or fails) at close */
	if (VSIFCloseL(out) != 0 || rc < 0)
		return mem_err_set(err, MEM_ETEMP, "cannot upload to '%s': %s", url,
		    gdal_msg("the upload failed"));
	if (bad_read)
		return mem_err_set(err, MEM_EITEM, "cannot read '%s'", local);
	return 0;
}

int
mem_objstore_get(const char *vsipath, const char *local, struct mem_err *err)
{
	VSILFILE *in;
	char *buf = NULL;
	size_t n, len = 0;
	int rc;

	CPLErrorReset();
	if ((in = VSIFOpenL(vsipath, "rb")) == NULL)
		return mem_err_set(err, MEM_ETEMP, "cannot read '%s': %s", vsipath,
		    gdal_msg("no such object"));
	for (;;) {
		buf = mem_xrealloc(buf, len + (1 << 20));
		n = VSIFReadL(buf + len, 1, 1 << 20, in);
		len += n;
		if (n < (1 << 20))
			break;
	}
	VSIFCloseL(in);
	rc = mem_write_file_atomic(local, buf, len, err);
	free(buf);
	return rc;
}

int
mem_objstore_exists(const char *vsipath)
{
	VSIStatBufL st;

	return VSIStatExL(vsipath, &st, VSI_STAT_EXISTS_FLAG) == 0;
}

char **
mem_objstore_list(const char *vsidir)
{
	/* other writers may have added objects since GDAL cached a listing */
	VSICurlClearCache();
	return VSIReadDirRecursive(vsidir);
}
