/*
 * labcmd: how a served emulated command of a lab host starts (see lab/freebsd/commandd.py for why).
 *
 * A served command's file is a Python launcher whose first line is `#!/usr/libexec/lab/bin/labcmd PACKAGE MODULE`,
 * so the kernel runs this program as `labcmd "PACKAGE MODULE" SCRIPT ARGS...`. It hands its standard streams, its
 * working directory, umask, ignored signals, arguments and environment to the lab's resident command server over
 * /.kernel/commands.sock, forwards the signals it receives to the command's process, and ends as the command
 * ended: the same exit status, or the same signal. It stays the process the caller started (its pid is the
 * command's pid to the shell: $!, wait, kill), so nothing a caller sees changes but the start-up time.
 *
 * Where the server cannot serve (not root; a controlling terminal, which the server's children lack; no socket:
 * a jail's root, an early boot; a closed standard stream; the server says so), it runs the launcher under the
 * lab's Python as the shebang of any other command would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PYTHON "/usr/libexec/lab/bin/python3"
#define SOCKET_PATH "/.kernel/commands.sock"

extern char **environ;

static int server = -1;
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};

static void run_in_python(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 1, sizeof(char *));
	if (args == NULL)
		_exit(71);
	args[0] = PYTHON;
	args[1] = "-IS";
	for (int i = 2; i < argc; i++)
		args[i] = argv[i];
	args[argc] = NULL;
	if (server >= 0)
		close(server);
	execv(PYTHON, args);
	fprintf(stderr, "labcmd: %s: %s\n", PYTHON, strerror(errno));
	_exit(127);
}

struct buffer {
	char *data;
	size_t length, size;
};

static void append(struct buffer *buffer, const char *text, size_t length)
{
	if (buffer->length + length + 1 > buffer->size) {
		size_t size = (buffer->length + length + 1) * 2;
		char *data = realloc(buffer->data, size);
		if (data == NULL)
			_exit(71);
		buffer->data = data;
		buffer->size = size;
	}
	memcpy(buffer->data + buffer->length, text, length);
	buffer->length += length;
	buffer->data[buffer->length++] = '\0';
}

static void append_text(struct buffer *buffer, const char *text)
{
	append(buffer, text, strlen(text));
}

static void append_number(struct buffer *buffer, unsigned long number)
{
	char text[32];
	snprintf(text, sizeof(text), "%lu", number);
	append_text(buffer, text);
}

static int write_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t written = write(fd, data, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return -1;
		data += written;
		length -= (size_t)written;
	}
	return 0;
}

static void forward(int signo)
{
	unsigned char byte = (unsigned char)signo;
	int saved = errno;
	if (write(server, &byte, 1) < 0) {
		/* the server is gone: the reply loop sees it */
	}
	errno = saved;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		run_in_python(argc, argv);
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			run_in_python(argc, argv);
	if (geteuid() != 0)
		run_in_python(argc, argv);
	/* The server's children have no controlling terminal: a command that may prompt on /dev/tty runs here. */
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty >= 0) {
		close(tty);
		run_in_python(argc, argv);
	}
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		run_in_python(argc, argv);
	server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	strncpy(address.sun_path, SOCKET_PATH, sizeof(address.sun_path) - 1);
	if (server < 0 || connect(server, (struct sockaddr *)&address, sizeof(address)) < 0) {
		close(cwd);
		run_in_python(argc, argv);
	}

	/* The request: PACKAGE MODULE, umask, ignored signals (a bit per number), the arguments from SCRIPT on,
	 * then the environment, each counted and NUL-terminated. */
	struct buffer request = {0};
	mode_t mask = umask(0);
	umask(mask);
	uint64_t ignored = 0;
	for (int signo = 1; signo < 64; signo++) {
		struct sigaction action;
		if (sigaction(signo, NULL, &action) == 0 && action.sa_handler == SIG_IGN)
			ignored |= (uint64_t)1 << signo;
	}
	append_text(&request, argv[1]);
	append_number(&request, mask);
	append_number(&request, (unsigned long)ignored);
	append_number(&request, (unsigned long)(argc - 2));
	for (int i = 2; i < argc; i++)
		append_text(&request, argv[i]);
	size_t count = 0;
	for (char **entry = environ; *entry; entry++)
		count++;
	append_number(&request, count);
	for (char **entry = environ; *entry; entry++)
		append_text(&request, *entry);

	uint64_t length = request.length;
	int fds[4] = {0, 1, 2, cwd};
	char control[CMSG_SPACE(sizeof(fds))];
	memset(control, 0, sizeof(control));
	struct iovec vector = {.iov_base = &length, .iov_len = sizeof(length)};
	struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control,
				 .msg_controllen = sizeof(control)};
	struct cmsghdr *header = CMSG_FIRSTHDR(&message);
	header->cmsg_level = SOL_SOCKET;
	header->cmsg_type = SCM_RIGHTS;
	header->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(header), fds, sizeof(fds));
	ssize_t sent;
	do
		sent = sendmsg(server, &message, 0);
	while (sent < 0 && errno == EINTR);
	if (sent != (ssize_t)sizeof(length) || write_all(server, request.data, request.length) < 0) {
		close(cwd);
		close(server);
		server = -1;
		run_in_python(argc, argv);
	}
	close(cwd);

	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		if (ignored & ((uint64_t)1 << forwarded[i]))
			continue;
		struct sigaction action = {.sa_handler = forward, .sa_flags = SA_RESTART};
		sigemptyset(&action.sa_mask);
		sigaction(forwarded[i], &action, NULL);
	}

	/* The reply, one line: "exit N", "signal N", or "python" (run it here after all: nothing ran). */
	char reply[64];
	size_t got = 0;
	while (got < sizeof(reply) - 1) {
		ssize_t n = read(server, reply + got, sizeof(reply) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(reply, '\n', got))
			break;
	}
	reply[got] = '\0';
	int number;
	if (sscanf(reply, "exit %d", &number) == 1)
		_exit(number);
	if (sscanf(reply, "signal %d", &number) == 1) {
		signal(number, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, number);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(number);
		_exit(128 + number);
	}
	if (strncmp(reply, "python\n", 7) == 0) {
		for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			if (!(ignored & ((uint64_t)1 << forwarded[i])))
				signal(forwarded[i], SIG_DFL);
		run_in_python(argc, argv);
	}
	fprintf(stderr, "labcmd: the lab's command server ended before %s did\n", argv[2]);
	_exit(70);
}
