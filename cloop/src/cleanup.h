/* Resources released when their variable leaves scope (the cleanup
 * attribute of GCC and Clang), after nbdkit's common/include/cleanup.h: a
 * function's early returns cannot forget one. Shared with initrd/stick,
 * so it depends on nothing else. */
#ifndef HC_CLEANUP_H
#define HC_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void hc_cleanup_free(void *p)
{
	free(*(void **)p);
}

static inline void hc_cleanup_close(const int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void hc_cleanup_unlock(pthread_mutex_t **m)
{
	pthread_mutex_unlock(*m);
}

/* free()d at scope end: initialise it (NULL or an allocation). */
#define CLEANUP_FREE __attribute__((cleanup(hc_cleanup_free)))
/* close()d at scope end unless negative. */
#define CLEANUP_CLOSE __attribute__((cleanup(hc_cleanup_close)))

#define HC_CONCAT_(a, b) a##b
#define HC_CONCAT(a, b)	 HC_CONCAT_(a, b)
/* Locks MUTEX until the end of the enclosing scope. */
#define HC_LOCK_SCOPE(mutex)                                                                       \
	pthread_mutex_t *HC_CONCAT(hc_scope_lock_, __LINE__)                                       \
	    __attribute__((cleanup(hc_cleanup_unlock))) = (pthread_mutex_lock(mutex), (mutex))

#endif
