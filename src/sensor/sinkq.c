/* sensor/sinkq: hands events to a slow sink (the noise store) on a thread of
 * its own, so the listener's loop never waits for a commit. Two arrays take
 * turns: the loop fills one while the writer drains the other. When both are
 * full the loop waits for the writer (backpressure, never a dropped event). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor/sensor_internal.h"

struct tr_sinkq {
    tr_event_sink sink;
    int (*flush)(void *ctx, tr_error *err);
    void *ctx;
    double flush_seconds;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t more, space;
    tr_event *in, *out;
    size_t in_n, cap;
    bool stopping;
};

static double now_mono(void)
{
    return tr_monotonic();
}

static void *writer(void *arg)
{
    tr_sinkq *q = arg;
    double last_flush = now_mono();
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->in_n == 0 && !q->stopping) {
            /* Woken early only when the array is half full or at the end:
             * a wake-up per event would cost the loop a system call each. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->more, &q->mu, &ts);
        }
        tr_event *batch = q->in;
        size_t n = q->in_n;
        bool stopping = q->stopping;
        q->in = q->out;
        q->out = batch;
        q->in_n = 0;
        pthread_cond_broadcast(&q->space);
        pthread_mutex_unlock(&q->mu);

        tr_error err;
        for (size_t i = 0; i < n; i++) {
            if (q->sink(q->ctx, &batch[i], &err) != 0)
                tr_log(TR_LOG_ERROR, "sensor: %s", err.msg);
            tr_event_clear(&batch[i]);
        }
        if (q->flush && (stopping || now_mono() - last_flush >= q->flush_seconds)) {
            if (q->flush(q->ctx, &err) != 0)
                tr_log(TR_LOG_ERROR, "sensor: %s", err.msg);
            last_flush = now_mono();
        }
        pthread_mutex_lock(&q->mu);
        if (stopping && q->in_n == 0)
            break;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

tr_sinkq *tr_sinkq_start(tr_event_sink sink, int (*flush)(void *ctx, tr_error *err), void *ctx,
                         int flush_seconds, size_t cap, tr_error *err)
{
    tr_sinkq *q = tr_xcalloc(1, sizeof *q);
    q->sink = sink;
    q->flush = flush;
    q->ctx = ctx;
    q->flush_seconds = flush_seconds;
    q->cap = cap ? cap : 1;
    q->in = tr_xcalloc(q->cap, sizeof *q->in);
    q->out = tr_xcalloc(q->cap, sizeof *q->out);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->more, NULL);
    pthread_cond_init(&q->space, NULL);
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        free(q->in);
        free(q->out);
        free(q);
        tr_fail(err, "cannot start the store writer thread");
        return NULL;
    }
    return q;
}

void tr_sinkq_push(tr_sinkq *q, tr_event *e)
{
    pthread_mutex_lock(&q->mu);
    while (q->in_n == q->cap)
        pthread_cond_wait(&q->space, &q->mu);
    /* The contents move: e keeps no pointer, so the caller's clear frees nothing. */
    q->in[q->in_n++] = *e;
    e->payload = NULL;
    e->payload_len = 0;
    e->nfields = 0;
    if (q->in_n == q->cap / 2 || q->in_n == q->cap)
        pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->mu);
}

void tr_sinkq_stop(tr_sinkq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->more);
    pthread_cond_destroy(&q->space);
    free(q->in);
    free(q->out);
    free(q);
}
