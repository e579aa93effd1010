/* A getaddrinfo that hangs until the test lets it go (hang.h). */
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "hang.h"
#include "net/resolve.h"
#include "testutil.h"

static pthread_mutex_t hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static bool hang_released;

static int hang_gai(const char *node, const char *service,
		    const struct addrinfo *hints, struct addrinfo **res)
{
	pthread_mutex_lock(&hang_mu);
	while (!hang_released)
		pthread_cond_wait(&hang_cv, &hang_mu);
	pthread_mutex_unlock(&hang_mu);
	if (node && strcmp(node, "localhost") == 0)
		return getaddrinfo(node, service, hints, res);
	return EAI_AGAIN;
}

void hang_release(void)
{
	pthread_mutex_lock(&hang_mu);
	hang_released = true;
	pthread_cond_broadcast(&hang_cv);
	pthread_mutex_unlock(&hang_mu);
}

void hang_arm(void)
{
	pthread_mutex_lock(&hang_mu);
	hang_released = false;
	pthread_mutex_unlock(&hang_mu);
	ck_assert(ctx__resolve_force(CTX__RESOLVE_THREADS));
	ctx__resolve_set_gai(hang_gai);
}

void hang_disarm(void)
{
	hang_release();
	ctx__resolve_set_gai(NULL);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
}
