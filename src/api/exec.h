/* `kiln exec` through the daemon: a Unix socket (DATA/run/exec.sock, root only) that takes an
 * ExecInstance request, signed and authenticated exactly as an API request, with the caller's
 * stdin, stdout and stderr, and runs the command in the caller's instance.
 *
 * The wire, over SOCK_SEQPACKET (one message each):
 *   client: the request: "Name: value\n" header lines (Content-Type, Host, X-Amz-Date,
 *           Authorization, as the client signed them for POST /), "\n", then the form body
 *           (Action=ExecInstance, InstanceId, Command.1 ... Command.N), with three descriptors
 *           (SCM_RIGHTS): the command's stdin, stdout and stderr.
 *   client: "signal N\n", any number, at any time: SIGINT, SIGTERM or SIGHUP for the command.
 *   daemon: "status N\n" when the command has ended (as from a shell: 128 + signal when killed),
 *           or "error Code: message\n" when it did not run (EC2's codes).
 * The connection closing makes the daemon send SIGHUP to the command, as a closed terminal.
 *
 * The same from anywhere the API is reachable, on the API's own listener: the signed request
 * for POST / with "Connection: Upgrade" and "Upgrade: kiln-exec/1"; a refusal is the EC2 error
 * as for any request; else "101 Switching Protocols", and then frames both ways
 * (exec_frame.h): the client's stdin and signals, the command's stdout and stderr, and its exit
 * status last. No descriptor crosses: the daemon relays through pipes. */
#ifndef KILN_API_EXEC_H
#define KILN_API_EXEC_H

#include "api/client.h"
#include "util/kerr.h"

#define API_EXEC_SOCKET      "exec.sock" /* in DATA/run */
#define API_EXEC_REQUEST_MAX ((size_t)128 << 10)
#define API_EXEC_UPGRADE     "kiln-exec/1"

struct cloud;
struct api_exec_server;

/* Listen on path (replacing a stale socket), mode 0600, with a thread that accepts. */
int api_exec_start(struct cloud *cloud, const char *path, struct api_exec_server **out,
                   struct kerr **err) __attribute__((warn_unused_result));
/* Stop accepting (and refuse new upgrades); commands still running get SIGHUP and a few
 * seconds to end; join the socket's threads and remove it. The API server's upgraded
 * connections end on their own threads: stop the API server after this, then api_exec_stop. */
void api_exec_shutdown(struct api_exec_server *s);
/* api_exec_shutdown if not done yet, and free s. NULL is fine. */
void api_exec_stop(struct api_exec_server *s);

struct api_http_request;
struct api_http_response;
/* The API server's handler for a request that asks for the upgrade: checks it as the Unix
 * socket does and answers the EC2 error, or 101 with the relay of the command's stdio. */
void api_exec_http(struct api_exec_server *s, const struct api_http_request *req,
                   struct api_http_response *resp, const char *request_id);

/* The client: run argv in instance id through the daemon at path, with this process's stdin,
 * stdout and stderr; SIGINT, SIGTERM and SIGHUP that this process receives meanwhile go to the
 * command (they stay blocked after a 0: the caller exits with the status). 0 with *exit_status the
 * command's; -1 with err ("Code: message" for the daemon's refusals). */
int api_exec_run(struct api_client *c, const char *path, const char *id, char *const argv[],
                 int *exit_status, struct kerr **err) __attribute__((warn_unused_result));
/* The same through the API's listener (the client's endpoint, http:// only): the command's
 * output is relayed to this process's stdout and stderr, stdin to it. */
int api_exec_run_remote(struct api_client *c, const char *id, char *const argv[], int *exit_status,
                        struct kerr **err) __attribute__((warn_unused_result));

#endif
