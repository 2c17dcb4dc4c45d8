/*
 * ledger-probe - drives src/lib/ledger.c for tests/cli/ledger.sh: claims,
 * marks done, reads states and runs the election against a real etcd.
 *
 *   ledger-probe [-t TTL] [-d DEADLINE] URL claim KEY...     won|done|taken per key
 *   ledger-probe ... URL finish KEY...                       claim and mark done
 *   ledger-probe ... URL hold SECONDS KEY...                 claim, keep alive, sleep
 *   ledger-probe ... URL late SECONDS KEY                    claim, sleep, then done:
 *                                                            "done" or "lost"
 *   ledger-probe ... URL state KEY                           free | taken OWNER | done OWNER
 *   ledger-probe ... URL lead [SECONDS]                      leader | follower, then sleep
 * TLS files come from MEM_LEDGER_CACERT, _CERT, _KEY.  Exit 75 when the
 * ledger cannot be reached, 1 when a step failed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ledger.h"

static const char *names[] = { "?", "won", "done", "taken", "free" };

int
main(int argc, char **argv)
{
	struct mem_ledger_opts o;
	struct mem_ledger *l;
	struct mem_err err;
	const char *cmd;
	int i = 1, rc = 0;

	memset(&o, 0, sizeof o);
	while (i + 1 < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-t") == 0)
			o.ttl = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "-d") == 0)
			o.deadline = atof(argv[i + 1]);
		i += 2;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: ledger-probe [-t TTL] [-d DEADLINE] URL CMD [ARGS]\n");
		return 2;
	}
	o.url = argv[i++];
	cmd = argv[i++];
	o.cacert = getenv("MEM_LEDGER_CACERT");
	o.cert = getenv("MEM_LEDGER_CERT");
	o.key = getenv("MEM_LEDGER_KEY");
	curl_global_init(CURL_GLOBAL_ALL);
	mem_err_clear(&err);
	if ((l = mem_ledger_open(&o, &err)) == NULL) {
		fprintf(stderr, "ledger-probe: %s\n", err.msg);
		return err.status == MEM_ETEMP ? 75 : 2;
	}
	if (strcmp(cmd, "lead") == 0) {
		int r = mem_ledger_lead(l, &err);

		if (r < 0)
			rc = 1;
		else
			printf("%s\n", r ? "leader" : "follower");
		fflush(stdout);
		if (i < argc)
			sleep((unsigned)atoi(argv[i]));
	} else if (strcmp(cmd, "state") == 0 && i < argc) {
		char *owner;
		int st = mem_ledger_state(l, argv[i], &owner, &err);

		if (st < 0)
			rc = 1;
		else
			printf("%s%s%s\n", names[st], owner ? " " : "", owner ? owner : "");
		free(owner);
	} else if (strcmp(cmd, "late") == 0 && i + 1 < argc) {
		int st = mem_ledger_claim(l, argv[i + 1], &err);

		printf("%s\n", st > 0 ? names[st] : "error");
		fflush(stdout);
		sleep((unsigned)atoi(argv[i]));
		if (st == MEM_LEDGER_WON) {
			mem_err_clear(&err);
			printf("%s\n", mem_ledger_done(l, argv[i + 1], &err) == 0 ? "done" : "lost");
		}
	} else {
		int hold = strcmp(cmd, "hold") == 0 ? atoi(argv[i++]) : -1;

		for (; i < argc && rc == 0; i++) {
			int st = mem_ledger_claim(l, argv[i], &err);

			if (st < 0) {
				rc = 1;
				break;
			}
			if (strcmp(cmd, "finish") == 0 && st == MEM_LEDGER_WON &&
			    mem_ledger_done(l, argv[i], &err) < 0) {
				rc = 1;
				break;
			}
			printf("%s %s\n", argv[i], names[st]);
		}
		fflush(stdout);
		if (hold > 0)
			sleep((unsigned)hold);
	}
	if (rc)
		fprintf(stderr, "ledger-probe: %s\n", err.msg);
	mem_ledger_close(l);
	curl_global_cleanup();
	return rc && err.status == MEM_ETEMP ? 75 : rc;
}
