//go:build linux && cgo

package runtime

/*
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Runs before the Go runtime starts its threads: the only moment a Go program is
// single-threaded, which setns into a user or time namespace requires. _WHARF_NSENTER lists
// "fd:cloneflag" pairs, joined in order.
__attribute__((constructor)) static void wharf_nsenter(void) {
	const char *spec = getenv("_WHARF_NSENTER");
	if (spec == NULL || *spec == '\0')
		return;
	char *copy = strdup(spec), *save = NULL;
	if (copy == NULL)
		_exit(1);
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		int fd = -1, flag = 0;
		if (sscanf(tok, "%d:%d", &fd, &flag) != 2) {
			fprintf(stderr, "wharf-runtime nsenter: bad entry %s\n", tok);
			_exit(1);
		}
		if (setns(fd, flag) < 0) {
			fprintf(stderr, "wharf-runtime nsenter: setns(%d, %#x): %m\n", fd, flag);
			_exit(1);
		}
		close(fd);
	}
	free(copy);
	unsetenv("_WHARF_NSENTER");
}
*/
import "C"

// haveNsenter: this binary joins user and time namespaces in a C constructor, before Go starts.
const haveNsenter = true
