#include "relay/send_rate.h"

void send_rate_init(send_rate *s)
{
    s->rate = 0.0;
    s->before_cut = 0.0;
    s->adjusted_ms = 0;
    s->next_ms = 0;
    s->window_start_ms = 0;
    s->window_entries = 0;
    s->last_window_rate = 0.0;
}

/* Entries/s the whole replica sent recently (all pipelines together). */
static double recent_rate(const send_rate *s, int64_t now_ms)
{
    int64_t span = now_ms - s->window_start_ms;
    double current = span > 0 ? (double)s->window_entries * 1000.0 / (double)span : 0.0;
    return current > s->last_window_rate ? current : s->last_window_rate;
}

int send_rate_observe(send_rate *s, size_t sent, size_t throttled, int64_t elapsed_ms,
                      int64_t now_ms)
{
    if (throttled > 0) {
        /* one cut per second: the batches in flight when AWS started
         * throttling all report it, and that is one signal, not several */
        if (s->rate > 0.0 && now_ms - s->adjusted_ms < 1000)
            return 0;
        double achieved = recent_rate(s, now_ms);
        double batch = (double)sent * 1000.0 / (double)(elapsed_ms > 0 ? elapsed_ms : 1);
        if (achieved < batch)
            achieved = batch;
        double base = s->rate > 0.0 ? s->rate : achieved;
        double next = base * 0.5;
        if (next < SEND_RATE_MIN_PER_S)
            next = SEND_RATE_MIN_PER_S;
        if (s->rate <= 0.0)
            s->before_cut = base; /* where this episode of throttling began */
        s->rate = next;
        s->adjusted_ms = now_ms;
        return 1;
    }
    if (s->rate > 0.0 && now_ms - s->adjusted_ms >= 1000) {
        int64_t seconds = (now_ms - s->adjusted_ms) / 1000;
        /* back quickly to half of where throttling began, then probe gently */
        for (int64_t i = 0; i < seconds && s->rate <= SEND_RATE_UNLIMITED_ABOVE; i++)
            s->rate *= s->rate < s->before_cut * 0.5 ? 2.0 : 1.25;
        s->adjusted_ms = now_ms;
        if (s->rate > SEND_RATE_UNLIMITED_ABOVE || s->rate > s->before_cut * 2.0) {
            s->rate = 0.0;
            s->next_ms = 0;
            return -1;
        }
    }
    return 0;
}

int send_rate_batch_limit(const send_rate *s, int batch_size)
{
    if (s->rate <= 0.0)
        return batch_size;
    double half_second = s->rate * 0.5;
    if (half_second < 1.0)
        return 1;
    if (half_second >= (double)batch_size)
        return batch_size;
    return (int)half_second;
}

int64_t send_rate_wait_ms(const send_rate *s, int64_t now_ms)
{
    if (s->rate <= 0.0 || s->next_ms <= now_ms)
        return 0;
    return s->next_ms - now_ms;
}

void send_rate_consume(send_rate *s, size_t entries, int64_t now_ms)
{
    if (now_ms - s->window_start_ms >= 1000) {
        int64_t span = now_ms - s->window_start_ms;
        s->last_window_rate = span < 2000 ? (double)s->window_entries * 1000.0 / (double)span : 0.0;
        s->window_start_ms = now_ms;
        s->window_entries = 0;
    }
    s->window_entries += entries;
    if (s->rate <= 0.0)
        return;
    int64_t start = s->next_ms > now_ms ? s->next_ms : now_ms;
    s->next_ms = start + (int64_t)((double)entries * 1000.0 / s->rate);
}
