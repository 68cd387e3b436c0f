//go:build linux && cgo

package runtime

/*
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
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

	// Creating a container in an existing user namespace: become its root, create the other
	// namespaces now (owned by it), and fork, so that the child is in the new pid namespace.
	// The parent reports the child's pid on the sync socket and exits; the child goes on to
	// start Go as the container's init.
	const char *unsh = getenv("_WHARF_UNSHARE"), *sync = getenv("_WHARF_FORK");
	if (unsh == NULL || sync == NULL)
		return;
	int flags = atoi(unsh), syncfd = atoi(sync);
	unsetenv("_WHARF_UNSHARE");
	unsetenv("_WHARF_FORK");
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		fprintf(stderr, "wharf-runtime nsenter: become root of the user namespace: %m\n");
		_exit(1);
	}
	if (flags != 0 && unshare(flags) < 0) {
		fprintf(stderr, "wharf-runtime nsenter: unshare(%#x): %m\n", flags);
		_exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "wharf-runtime nsenter: fork: %m\n");
		_exit(1);
	}
	if (pid == 0)
		return;
	char msg[64];
	int n = snprintf(msg, sizeof msg, "{\"type\":\"pid\",\"pid\":%d}\n", (int)pid);
	if (write(syncfd, msg, n) != n)
		_exit(1);
	_exit(0);
}
*/
import "C"

// haveNsenter: this binary joins user and time namespaces in a C constructor, before Go starts.
const haveNsenter = true
